/**
 * The fake cloud's Parameter Store: an HTTP endpoint on 127.0.0.1 that speaks SSM's JSON protocol (POST /,
 * `X-Amz-Target: AmazonSSM.<Action>`, `Content-Type: application/x-amz-json-1.1`) as the node scripts call it with
 * `curl --aws-sigv4` (AWS_ENDPOINT_URL_SSM points them here). The store is the lab's (lib/lab/ssm/parameter-store.ts:
 * versions, ParameterAlreadyExists, InvalidParameters, SecureStrings). Every request must be signed (SigV4, checked
 * as AWS does by the lab's own verifier, lib/lab/sigv4.ts) with the instance-role keys of a node of this cloud; errors are the service's
 * `{"__type", "message"}` with HTTP 400. The request log keeps caller, action and names, never a value.
 * Faults: `fail(actions, code, count)` makes the next `count` calls of those actions answer error `code`.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ParameterStore } from '../../../lib/lab/ssm/parameter-store';
import { SsmServiceError } from '../../../lib/lab/ssm/errors';
import { SigV4Error, verifySigV4 } from '../../../lib/lab/sigv4';
import { awsJsonAuthError } from '../../../lib/lab/sigv4-errors';

/** A node's instance-role credentials and the region its requests are scoped to. */
export interface SigningKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly region: string;
}

export interface SsmRequest {
  /** The node whose keys signed it ('' when no key matched). */
  readonly node: string;
  readonly action: string;
  /** The parameter names it named (Name or Names). */
  readonly names: string[];
  readonly withDecryption?: boolean;
  readonly status: number;
  readonly error?: string;
}

export interface StoredParameter {
  Name: string;
  Type: string;
  Value: string;
  Version: number;
}

const JSON_11 = 'application/x-amz-json-1.1';
const ACTIONS = new Set(['PutParameter', 'GetParameter', 'GetParameters']);

export class FakeParameterStore {
  static async start(): Promise<FakeParameterStore> {
    const s = new FakeParameterStore();
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', resolve);
    });
    s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  url = '';
  readonly requests: SsmRequest[] = [];
  /** The KeyId of every PutParameter, by parameter name (null: none given). */
  readonly keyIds: Record<string, Array<string | null>> = {};
  private readonly store = new ParameterStore('eu-west-1');
  private readonly keys = new Map<string, SigningKey & { node: string }>();
  private readonly faults: Array<{ actions: string[]; code: string; count: number }> = [];
  private readonly server = http.createServer((req, res) => this.serve(req, res));

  /** A node's instance-role credentials: requests signed with them are that node's. */
  register(node: string, key: SigningKey): void {
    this.keys.set(key.accessKeyId, { ...key, node });
  }

  /** Store a parameter directly, as an earlier boot would have. */
  put(name: string, type: 'String' | 'SecureString', value: string): void {
    this.store.putParameter({ Name: name, Type: type, Value: value, Overwrite: true });
  }

  /** Every parameter, decrypted, by name. */
  parameters(): Record<string, StoredParameter> {
    return Object.fromEntries(
      this.store.names().map((n) => {
        const p = this.store.getParameter({ Name: n, WithDecryption: true }).Parameter;
        return [n, { Name: p.Name, Type: p.Type, Value: p.Value, Version: p.Version }];
      }),
    );
  }

  fail(actions: string[], code: string, count: number): void {
    this.faults.push({ actions, code, count });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void (async () => {
      const body = Buffer.concat(chunks);
      let node = '';
      let action = '';
      let input: Record<string, unknown> = {};
      const reply = (status: number, value: unknown, error?: string): void => {
        const names = Array.isArray(input.Names) ? input.Names.map(String) : typeof input.Name === 'string' ? [input.Name] : [];
        this.requests.push({
          node,
          action,
          names,
          ...(typeof input.WithDecryption === 'boolean' ? { withDecryption: input.WithDecryption } : {}),
          status,
          ...(error ? { error } : {}),
        });
        const text = JSON.stringify(value);
        res.writeHead(status, { 'content-type': JSON_11, 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': 'fake' });
        res.end(text);
      };
      // Server-side errors are 5xx, as AWS answers them; everything else the client got wrong is 400.
      const status = (code: string): number => (code === 'InternalServerError' ? 500 : code === 'ServiceUnavailable' ? 503 : 400);
      const fail = (code: string, message?: string): void => reply(status(code), message ? { __type: code, message } : { __type: code }, code);
      try {
        const target = req.headers['x-amz-target'];
        action = typeof target === 'string' ? target.replace(/^AmazonSSM\./, '') : '';
        node = (await verifySigV4({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }, { service: 'ssm', region: 'eu-west-1', keys: (id) => this.keys.get(id) })).node;
        if (req.method !== 'POST' || req.url !== '/') return fail('UnknownOperationException', `POST / only (got ${req.method} ${req.url})`);
        if (req.headers['content-type'] !== JSON_11) return fail('SerializationException', `Content-Type must be ${JSON_11}`);
        if (typeof target !== 'string' || !target.startsWith('AmazonSSM.') || !ACTIONS.has(action)) {
          return fail('UnknownOperationException', `the fake Parameter Store implements ${[...ACTIONS].join(', ')} (got ${String(target)})`);
        }
        input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        const fault = this.faults.find((f) => f.count > 0 && f.actions.includes(action));
        if (fault) {
          fault.count -= 1;
          return fail(fault.code, fault.code === 'ThrottlingException' ? 'Rate exceeded' : 'injected fault');
        }
        if (action === 'PutParameter') {
          const name = String(input.Name);
          (this.keyIds[name] ??= []).push(typeof input.KeyId === 'string' ? input.KeyId : null);
          return reply(200, this.store.putParameter(input));
        }
        return reply(200, action === 'GetParameter' ? this.store.getParameter(input) : this.store.getParameters(input));
      } catch (e) {
        if (e instanceof SigV4Error) {
          const a = awsJsonAuthError(e, 'ssm');
          return fail(a.code, a.message);
        }
        if (e instanceof SsmServiceError) return fail(e.type, e.message || undefined);
        return fail('SerializationException', (e as Error).message);
      }
    })());
  }
}
