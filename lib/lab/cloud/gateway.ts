/**
 * The lab gateway: one process inside the hub network namespace, the only thing hosts can reach besides each other.
 *
 * - IMDSv2 on 169.254.169.254:80 for every host (answers by the caller's source IP), plus POST /lab/signal from the
 *   cfn-signal stand-in, forwarded to the controller.
 * - HTTPS on <hub ip>:443 with the lab certificate for `ssm.<region>.amazonaws.com` (and the other AWS names the lab
 *   serves), proxying every request to the controller's unix socket (S3's names: the lab S3's socket) with `x-lab-source-ip` set to the caller's address (any such header from the caller
 *   is dropped: identity comes from the network, as on EC2).
 *
 * Listen addresses are configuration, so tests run it on 127.0.0.x ports without namespaces.
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, IncomingMessage, request, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { AddressInfo } from 'node:net';
import { z } from 'zod';
import { createImdsHandler, LabInstance, normalizeIp } from '../imds/imds';
import { isS3Host } from '../s3/endpoint';
import { closeServer, listen, SOURCE_IP_HEADER } from '../ssm/endpoint';

const address = z.strictObject({ host: z.string().min(1), port: z.number().int().min(0).max(65535) });

export const gatewayConfigSchema = z.strictObject({
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { message: 'must be a region such as us-east-1' }),
  /** The host table: instance id and bridge address of every host. */
  instances: z.array(
    z.strictObject({
      instanceId: z.string().regex(/^i-[0-9a-f]{17}$/, { message: 'must look like i-0123456789abcdef0' }),
      privateIp: z.string().min(1),
      hostname: z.string().optional(),
      availabilityZone: z.string().optional(),
      role: z.string().optional(),
      instanceType: z.string().optional(),
    }),
  ),
  /**
   * The lab EC2's table (`<labdir>/instances.json`, written by the controller): when set, IMDS answers from it
   * (instances come and go; tags; the Auto Scaling target lifecycle state) and `instances` is only the start.
   */
  instancesFile: z.string().min(1).optional(),
  /** The controller's unix socket (`<labdir>/cloud.sock`). */
  controllerSocket: z.string().min(1),
  /** The lab S3's unix socket (`<labdir>/s3.sock`): requests for `s3.<region>.amazonaws.com` and `<bucket>.s3…` go there. */
  s3Socket: z.string().min(1).optional(),
  /** Where IMDS (and /lab/signal) listens. In the lab: 169.254.169.254:80. */
  imds: address,
  /** Where the SSM HTTPS front listens. In the lab: <hub ip>:443. */
  https: address.extend({ certFile: z.string().min(1), keyFile: z.string().min(1) }),
  roleName: z.string().regex(/^[\w+=,.@-]{1,64}$/).optional(),
  /** Upper bound for one proxied request. @default 120000 */
  upstreamTimeoutMs: z.number().int().min(1000).max(3_600_000).optional(),
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/** Parses the gateway's JSON config; the error names every bad field. */
export function parseGatewayConfig(input: unknown, source = 'gateway config'): GatewayConfig {
  const r = gatewayConfigSchema.safeParse(input);
  if (!r.success) throw new Error(`Invalid ${source}:\n${z.prettifyError(r.error)}`);
  return r.data;
}

export interface Gateway {
  readonly imdsPort: number;
  readonly httpsPort: number;
  close(): Promise<void>;
}

/** Forwards one request to the controller's (or the lab S3's) unix socket, asserting the caller's IP. */
function proxy(cfg: GatewayConfig, req: IncomingMessage, res: ServerResponse, sourceIp: string): void {
  const headers = { ...req.headers };
  delete headers[SOURCE_IP_HEADER];
  headers[SOURCE_IP_HEADER] = sourceIp;
  const socketPath = cfg.s3Socket && isS3Host(req.headers.host, cfg.region) ? cfg.s3Socket : cfg.controllerSocket;
  const up = request({ socketPath, method: req.method, path: req.url, headers, timeout: cfg.upstreamTimeoutMs ?? 120_000 }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.pipe(res);
  });
  const failed = (why: string): void => {
    if (res.headersSent) return void res.destroy();
    const body = JSON.stringify({ __type: 'ServiceUnavailable', message: `lab gateway: the controller did not answer (${why})` });
    res.writeHead(503, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  up.on('timeout', () => up.destroy(new Error('timeout')));
  up.on('error', (e) => failed(e.message));
  req.pipe(up);
}

export async function startGateway(cfg: GatewayConfig): Promise<Gateway> {
  const fixed: LabInstance[] = cfg.instances;
  let cache: { mtimeMs: number; rows: LabInstance[] } | undefined;
  const current = (): readonly LabInstance[] => {
    if (!cfg.instancesFile) return fixed;
    try {
      const st = statSync(cfg.instancesFile);
      if (!cache || cache.mtimeMs !== st.mtimeMs) {
        const rows = (JSON.parse(readFileSync(cfg.instancesFile, 'utf8')) as { instances: (LabInstance & { state?: string })[] }).instances;
        // A terminated instance's address may be reused by nothing, but it no longer answers as that instance.
        cache = { mtimeMs: st.mtimeMs, rows: rows.filter((r) => r.state !== 'terminated') };
      }
      return cache.rows;
    } catch {
      return cache?.rows ?? fixed;
    }
  };
  const imds = createImdsHandler({ region: cfg.region, instances: cfg.instancesFile ? current : fixed, roleName: cfg.roleName });

  const imdsServer: Server = createHttpServer((req, res) => {
    const ip = normalizeIp(req.socket.remoteAddress);
    if (new URL(req.url ?? '/', 'http://x').pathname === '/lab/signal') return proxy(cfg, req, res, ip);
    imds(req, res, ip);
  });
  // Tokens are short strings; a slow or idle client must not pin a connection forever.
  imdsServer.requestTimeout = 30_000;

  const httpsServer = createHttpsServer({ cert: readFileSync(cfg.https.certFile), key: readFileSync(cfg.https.keyFile) }, (req, res) =>
    proxy(cfg, req, res, normalizeIp(req.socket.remoteAddress)),
  );
  httpsServer.requestTimeout = (cfg.upstreamTimeoutMs ?? 120_000) + 5_000;

  await listen(imdsServer, cfg.imds);
  try {
    await listen(httpsServer, cfg.https);
  } catch (e) {
    await closeServer(imdsServer);
    throw e;
  }
  return {
    imdsPort: (imdsServer.address() as AddressInfo).port,
    httpsPort: (httpsServer.address() as AddressInfo).port,
    close: async () => {
      await Promise.all([closeServer(imdsServer), closeServer(httpsServer)]);
    },
  };
}
