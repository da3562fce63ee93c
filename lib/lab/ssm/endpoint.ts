/**
 * The lab controller's SSM endpoint: the AWS JSON 1.1 protocol (POST /, `X-Amz-Target: AmazonSSM.<Action>`,
 * `Content-Type: application/x-amz-json-1.1`) on node:http, so the real @aws-sdk/client-ssm and the real AWS CLI
 * (`--endpoint-url`, or through the gateway's TLS) work against the lab unchanged.
 *
 * Listens on 127.0.0.1:<port> (the operator: ops CLI, tests) and on a unix socket (the hosts, through the gateway,
 * which adds `x-lab-source-ip`; that header is trusted ONLY on the socket). Also takes the cfn-signal stand-in's
 * reports at POST /lab/signal.
 *
 * Like the real service: every request must be SigV4-signed with a key the lab issued (the operator's lab key, or
 * an instance's role credentials from the lab IMDS) and the signature is verified (../sigv4.ts); a bad one gets the
 * service's error (InvalidSignatureException, UnrecognizedClientException, … : ../sigv4-errors.ts). Errors are
 * HTTP 400 `{"__type": "<Code>", "message": "…"}`; every response has x-amzn-RequestId. The Query services
 * (EC2, Auto Scaling) on the same listeners verify the same way and answer in their XML.
 *
 * Where this sits in the lab (the agreed architecture; hosts = engineer D1, lab cloud = D2, integration after):
 * - Lab dir `$EC2_SWARM_LAB_DIR` or `<repo>/.lab`; everything the lab creates is recorded there so `down` can undo
 *   it after a crash. A lab id/prefix (default `e2s`, tests e.g. `e2t`) is in every namespace/interface/cgroup name.
 * - Network: hub netns `<pfx>-hub` with bridge br0 = 192.168.<net>.1/24 (net default 240) AND 169.254.169.254/32;
 *   one netns per host `<pfx>-h<i>`, eth0 (veth into br0) = 192.168.<net>.(10+i)/24, a link-scope route to
 *   169.254.169.254, NO default route. The machine's own namespace is never touched.
 * - The gateway (cloud/gateway.ts, cloud/gateway-main.ts) runs in the hub netns: IMDSv2 on 169.254.169.254:80 (+ POST
 *   /lab/signal from the cfn-signal stand-in) and HTTPS on 192.168.<net>.1:443 for `ssm.<region>.amazonaws.com`
 *   (lab CA from tls.ts), proxying to this controller's unix socket `<labdir>/cloud.sock` with `x-lab-source-ip`.
 * - Each host: a holder process (nsenter --net + unshare --mount --uts) with private /run, /etc/docker,
 *   /var/lib/docker, /opt (so /opt/aws/bin/cfn-signal is per host), /tmp, and an /etc/hosts mapping
 *   `ssm.<region>.amazonaws.com` → 192.168.<net>.1; dockerd already running ("an AMI with Docker baked in").
 * - Commands run in a host with `nsenter --target <holderPid> --net --mount --uts -- <argv>`: the Run Command
 *   executor is `spawnExecutor((id) => ['nsenter', '--target', pid, '--net', '--mount', '--uts', '--'])`.
 * - The controller (this endpoint + parameter store + Run Command + signal recorder) is a detached Node process
 *   started by `lab up` with a PID file, serving 127.0.0.1:<port> and `<labdir>/cloud.sock`.
 *   `<labdir>/state.json` = { ssmEndpoint: "http://127.0.0.1:<port>", region, outputsFile, hosts: [...] }.
 * - Instance ids look real: `i-` + 17 hex digits, derived from the lab id and host index.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { LabInstance, normalizeIp } from '../imds/imds';
import { ParameterStore } from './parameter-store';
import { parseSignal, SignalRecord, SignalRecorder } from '../cloudformation/signals';
import { SsmServiceError } from './errors';
import { Caller, CommandExecutor, RunCommandService } from './run-command';
import { LabKey, labKeys } from '../credentials';
import { SigV4Error, verifySigV4 } from '../sigv4';
import { awsJsonAuthError, queryAuthError } from '../sigv4-errors';
import { EC2_VERSION } from '../ec2/query-api';
import { ASG_NAMESPACE, ASG_VERSION } from '../autoscaling/query-api';
import { QueryError, renderAsgError, renderEc2Error } from '../cloud/query-protocol';

export const SOURCE_IP_HEADER = 'x-lab-source-ip';
const JSON_11 = 'application/x-amz-json-1.1';
const MAX_BODY = 1024 * 1024;

export interface LabCloudOptions {
  readonly region: string;
  /** The host table, or a function returning the current one (the lab EC2 launches and terminates). */
  readonly instances: readonly LabInstance[] | (() => readonly LabInstance[]);
  /** Runs Run Command scripts on an instance (the lab wires it to the host's namespaces). */
  readonly executor: CommandExecutor;
  /** TCP listener for the operator. @default { host: '127.0.0.1', port: 0 } (any free port) */
  readonly tcp?: { readonly host?: string; readonly port?: number } | false;
  /** Unix socket for the gateway (hosts). Created 0600; a stale socket at the path is replaced. */
  readonly socketPath?: string;
  /** JSON lines: every SendCommand's parameters (never parameter-store values). */
  readonly commandLog?: string;
  /** JSON lines: every request's action, caller and outcome (names only, never values). */
  readonly requestLog?: string;
  /** Where signals are recorded (`<labdir>/signals.json`). @default - signals are refused */
  readonly signalsFile?: string;
  /** @default 300 */
  readonly invisibleForMs?: number;
  readonly isOnline?: (instanceId: string) => boolean | Promise<boolean>;
  /**
   * Called before every SSM action; throw `new SsmServiceError('AccessDeniedException', …)` to refuse
   * (e.g. to mimic the IAM policies: workers read only the worker token and the manager address).
   */
  readonly authorize?: (caller: Caller, action: string, input: Record<string, unknown>) => void;
  /**
   * Query-protocol services (EC2, Auto Scaling: a urlencoded POST / with Action and Version) served on the same
   * listeners (cloud/aws-query.ts). @default - such requests are refused
   */
  /**
   * The secret of an access key id, for verifying signatures. @default the lab's own keys (../credentials.ts): the
   * operator's and the role credentials of the instances in `instances`
   */
  readonly keys?: (accessKeyId: string) => LabKey | undefined;
  readonly queryApi?: (params: ReadonlyMap<string, string>, caller: Caller) => { status: number; body: string; requestId: string; service: string; action: string; error?: string };
}

export interface LabCloud {
  /** `http://127.0.0.1:<port>` (when TCP is on). */
  readonly endpoint?: string;
  readonly port?: number;
  readonly socketPath?: string;
  readonly store: ParameterStore;
  readonly runCommand: RunCommandService;
  readonly signals?: SignalRecorder;
  close(): Promise<void>;
}

type Handler = (input: Record<string, unknown>, caller: Caller) => unknown;

export async function startLabCloud(opts: LabCloudOptions): Promise<LabCloud> {
  const store = new ParameterStore(opts.region);
  const runCommand = new RunCommandService({
    instances: opts.instances,
    executor: opts.executor,
    region: opts.region,
    commandLog: opts.commandLog,
    invisibleForMs: opts.invisibleForMs,
    isOnline: opts.isOnline,
  });
  const signals = opts.signalsFile ? new SignalRecorder(opts.signalsFile) : undefined;
  const table = (): readonly LabInstance[] => (typeof opts.instances === 'function' ? opts.instances() : opts.instances);
  const keys = opts.keys ?? labKeys(() => table().map((i) => i.instanceId));

  const actions: Record<string, Handler> = {
    PutParameter: (i) => store.putParameter(i),
    GetParameter: (i) => store.getParameter(i),
    GetParameters: (i) => store.getParameters(i),
    GetParametersByPath: (i) => store.getParametersByPath(i),
    DeleteParameter: (i) => store.deleteParameter(i),
    DeleteParameters: (i) => store.deleteParameters(i),
    DescribeInstanceInformation: (i) => runCommand.describeInstanceInformation(i),
    SendCommand: (i, c) => runCommand.sendCommand(i, c),
    GetCommandInvocation: (i) => runCommand.getCommandInvocation(i),
    ListCommandInvocations: (i) => runCommand.listCommandInvocations(i),
    ListCommands: (i) => runCommand.listCommands(i),
    CancelCommand: (i) => runCommand.cancelCommand(i),
  };

  const logRequest = (entry: Record<string, unknown>): void => {
    if (!opts.requestLog) return;
    try {
      appendFileSync(opts.requestLog, JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n');
    } catch {
      /* diagnostics only */
    }
  };

  const handle = (via: 'tcp' | 'unix') => async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomUUID();
    const asserted = req.headers[SOURCE_IP_HEADER];
    const sourceIp = via === 'unix' ? (typeof asserted === 'string' ? asserted : undefined) : normalizeIp(req.socket.remoteAddress);
    const inst = via === 'unix' ? runCommand.instanceByIp(sourceIp) : undefined;
    const caller: Caller = { via, ...(sourceIp ? { sourceIp } : {}), ...(inst ? { instanceId: inst.instanceId } : {}) };
    let action = '';
    const reply = (status: number, body: unknown, type = JSON_11): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': requestId });
      res.end(text);
    };
    const fail = (e: unknown): void => {
      const err = e instanceof SsmServiceError ? e : new SsmServiceError('InternalServerError', 'The lab SSM endpoint failed: ' + (e as Error)?.message, 500);
      logRequest({ via, sourceIp, instanceId: caller.instanceId, action, status: err.statusCode, error: err.type });
      if (err.type !== 'InternalServerError') res.setHeader('x-amzn-errortype', `${err.type}:`);
      reply(err.statusCode, err.toJSON());
    };
    try {
      const body = await readBody(req);
      const path = new URL(req.url ?? '/', 'http://lab').pathname;
      if (path === '/lab/signal') {
        action = 'lab:Signal';
        if (req.method !== 'POST') throw new SsmServiceError('MethodNotAllowed', 'POST a signal', 405);
        if (!signals) throw new SsmServiceError('ServiceUnavailable', 'this lab cloud records no signals', 503);
        const rec: SignalRecord = parseSignal(parseForm(req, body), { instanceId: caller.instanceId, sourceIp });
        signals.record(rec);
        logRequest({ via, sourceIp, instanceId: caller.instanceId, action, status: 200, stack: rec.stack, resource: rec.resource, signal: rec.status });
        return reply(200, { ok: true, status: rec.status }, 'application/json');
      }
      if (opts.queryApi && req.method === 'POST' && path === '/' && String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
        const params = new Map(new URLSearchParams(body.toString('utf8')));
        const version = params.get('Version');
        const service = version === EC2_VERSION ? 'ec2' : version === ASG_VERSION ? 'autoscaling' : 'unknown';
        try {
          // An unknown Version is refused by queryApi (InvalidAction) whoever signed it: nothing to verify against.
          if (service !== 'unknown') await verifySigV4({ method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body }, { service, region: opts.region, keys });
        } catch (e) {
          if (!(e instanceof SigV4Error)) throw e;
          const a = queryAuthError(e, service);
          const err = new QueryError(a.code, a.message, a.status);
          const text = service === 'autoscaling' ? renderAsgError(err, requestId, ASG_NAMESPACE) : renderEc2Error(err, requestId);
          action = `${service}:${params.get('Action') ?? ''}`;
          logRequest({ via, sourceIp, instanceId: caller.instanceId, action, status: a.status, error: a.code });
          res.writeHead(a.status, { 'content-type': 'text/xml;charset=UTF-8', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': requestId });
          return void res.end(text);
        }
        const a = opts.queryApi(params, caller);
        action = `${a.service}:${a.action}`;
        logRequest({ via, sourceIp, instanceId: caller.instanceId, action, status: a.status, ...(a.error ? { error: a.error } : {}) });
        res.writeHead(a.status, { 'content-type': 'text/xml;charset=UTF-8', 'content-length': Buffer.byteLength(a.body), 'x-amzn-requestid': a.requestId });
        return void res.end(a.body);
      }
      if (req.method !== 'POST' || path !== '/') throw new SsmServiceError('UnknownOperationException', `The lab SSM endpoint takes POST / (got ${req.method} ${path})`, 404);
      const target = req.headers['x-amz-target'];
      const m = typeof target === 'string' ? /^AmazonSSM\.([A-Za-z]+)$/.exec(target) : null;
      if (!m) throw new SsmServiceError('UnknownOperationException', `X-Amz-Target must be AmazonSSM.<Action> (got ${String(target ?? 'nothing')})`);
      action = m[1];
      try {
        await verifySigV4({ method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body }, { service: 'ssm', region: opts.region, keys });
      } catch (e) {
        if (!(e instanceof SigV4Error)) throw e;
        const a = awsJsonAuthError(e, 'ssm');
        throw new SsmServiceError(a.code, a.message, a.status);
      }
      const handler = actions[action];
      if (!handler) {
        throw new SsmServiceError('UnknownOperationException', `The lab SSM endpoint does not implement ${action}; it implements ${Object.keys(actions).join(', ')}`);
      }
      let input: unknown;
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      } catch {
        throw new SsmServiceError('SerializationException', 'Start of structure or map found where not expected.');
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new SsmServiceError('SerializationException', 'The request body must be a JSON object.');
      const i = input as Record<string, unknown>;
      opts.authorize?.(caller, action, i);
      const out = await handler(i, caller);
      logRequest({ via, sourceIp, instanceId: caller.instanceId, action, status: 200, ...(typeof i.Name === 'string' ? { name: i.Name } : {}) });
      reply(200, out);
    } catch (e) {
      fail(e);
    }
  };

  const { servers, port } = await serveEndpoint(handle, opts);
  if (opts.requestLog) mkdirSync(dirname(opts.requestLog), { recursive: true });

  return {
    ...(port !== undefined ? { endpoint: `http://127.0.0.1:${port}`, port } : {}),
    ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
    store,
    runCommand,
    ...(signals ? { signals } : {}),
    close: async () => {
      runCommand.close();
      await Promise.all(servers.map((s) => closeServer(s)));
    },
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new SsmServiceError('RequestEntityTooLarge', `request body larger than ${MAX_BODY} bytes`, 413));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Signals arrive as a urlencoded form (curl --data-urlencode, no JSON escaping in shell) or as JSON. */
function parseForm(req: IncomingMessage, body: Buffer): Record<string, string | undefined> {
  const text = body.toString('utf8');
  if (String(req.headers['content-type'] ?? '').startsWith('application/json')) {
    const o = JSON.parse(text) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === undefined || v === null ? undefined : String(v)]));
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/**
 * An endpoint's listeners: loopback TCP for the operator (unless `tcp` is false) and, when asked, a unix socket
 * only root may use (the gateway's way in for the hosts). `handle(via)` answers requests that came that way.
 */
export async function serveEndpoint(
  handle: (via: 'tcp' | 'unix') => (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  opts: { readonly tcp?: { readonly host?: string; readonly port?: number } | false; readonly socketPath?: string },
): Promise<{ servers: Server[]; port?: number }> {
  const servers: Server[] = [];
  let port: number | undefined;
  if (opts.tcp !== false) {
    const s = createServer((q, r) => void handle('tcp')(q, r));
    await listen(s, { host: opts.tcp?.host ?? '127.0.0.1', port: opts.tcp?.port ?? 0 });
    port = (s.address() as AddressInfo).port;
    servers.push(s);
  }
  if (opts.socketPath) {
    mkdirSync(dirname(opts.socketPath), { recursive: true });
    removeStaleSocket(opts.socketPath);
    const s = createServer((q, r) => void handle('unix')(q, r));
    await listen(s, { path: opts.socketPath });
    chmodSync(opts.socketPath, 0o600);
    servers.push(s);
  }
  return { servers, ...(port !== undefined ? { port } : {}) };
}

export function listen(s: Server, where: { host?: string; port?: number; path?: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    const done = (): void => {
      s.off('error', reject);
      resolve();
    };
    if (where.path) s.listen(where.path, done);
    else s.listen(where.port ?? 0, where.host, done);
  });
}

export function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections?.();
  });
}

/** Replaces a socket left by a crashed controller; refuses to delete anything that is not a socket. */
export function removeStaleSocket(path: string): void {
  try {
    const st = lstatSync(path);
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
