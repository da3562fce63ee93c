/**
 * The lab's instance metadata service, IMDSv2 only (like an instance launched with HttpTokens=required, which is
 * what Amazon Linux 2023 defaults to): `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`
 * (1-21600) returns a token; every GET needs `X-aws-ec2-metadata-token`, else 401. One process answers for every
 * host: the caller's SOURCE IP says which instance is asking, as the hypervisor does on EC2.
 *
 * Serves what the node scripts and botocore's instance-metadata credential provider read: instance-id,
 * local-ipv4, hostname, placement/region, placement/availability-zone, iam/security-credentials/[<role>]
 * (dummy keys, Expiration far ahead) and dynamic/instance-identity/document.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { instanceRoleCredentials } from '../credentials';

/** One lab host as the cloud sees it. The host table is shared by IMDS, the gateway and the SSM endpoint. */
export interface LabInstance {
  /** `i-` + 17 hex digits. */
  readonly instanceId: string;
  /** The host's address on the lab bridge: the source IP its requests arrive from. */
  readonly privateIp: string;
  /** @default ip-<a-b-c-d>.<region>.compute.internal, like EC2's resource-name-less default */
  readonly hostname?: string;
  /** @default <region>a */
  readonly availabilityZone?: string;
  /** 'manager' | 'worker' (informational: the lab answers DescribeInstanceInformation with it as a tag-like name). */
  readonly role?: string;
  /** @default t3.small */
  readonly instanceType?: string;
  /** IMDS `instance-life-cycle`: `spot`, else `on-demand`. */
  readonly instanceLifecycle?: 'spot';
  /** The instance's tags (IMDS `tags/instance/<key>`, SSM `tag:<key>` filters). */
  readonly tags?: Readonly<Record<string, string>>;
  /** IMDS `autoscaling/target-lifecycle-state`, for members of an Auto Scaling group. */
  readonly targetLifecycleState?: string;
}

export interface ImdsOptions {
  readonly region: string;
  /** The host table, or a function returning the current one (instances come and go with the lab's EC2). */
  readonly instances: readonly LabInstance[] | (() => readonly LabInstance[]);
  /** Name of the instance profile's role. @default ec2-swarm-lab-node */
  readonly roleName?: string;
  readonly now?: () => number;
}

export const IMDS_MAX_TTL_SECONDS = 21600;
const INSTANCE_ID = /^i-[0-9a-f]{17}$/;

export function defaultHostname(ip: string, region: string): string {
  return `ip-${ip.replace(/\./g, '-')}.${region === 'us-east-1' ? 'ec2' : `${region}.compute`}.internal`;
}

/** Node reports IPv4 peers on dual-stack sockets as `::ffff:a.b.c.d`. */
export function normalizeIp(ip: string | undefined): string {
  return (ip ?? '').replace(/^::ffff:/, '');
}

/** Checks a host table: well-formed ids, unique ids and IPs. Throws Error naming the entry. */
export function validateInstances(instances: readonly LabInstance[]): void {
  const ids = new Set<string>();
  const ips = new Set<string>();
  instances.forEach((i, n) => {
    if (!INSTANCE_ID.test(i.instanceId)) throw new Error(`instances[${n}].instanceId must look like i-0123456789abcdef0 (got ${i.instanceId})`);
    if (ids.has(i.instanceId)) throw new Error(`instances[${n}].instanceId ${i.instanceId} is listed twice`);
    if (ips.has(i.privateIp)) throw new Error(`instances[${n}].privateIp ${i.privateIp} is listed twice`);
    ids.add(i.instanceId);
    ips.add(i.privateIp);
  });
}

export type ImdsHandler = (req: IncomingMessage, res: ServerResponse, sourceIp: string) => void;

export function createImdsHandler(opts: ImdsOptions): ImdsHandler {
  const fixed = typeof opts.instances === 'function' ? undefined : opts.instances;
  if (fixed) validateInstances(fixed);
  const now = opts.now ?? Date.now;
  const roleName = opts.roleName ?? 'ec2-swarm-lab-node';
  const table = (): readonly LabInstance[] => fixed ?? (opts.instances as () => readonly LabInstance[])();
  // token → expiry and the IP it was issued to (a token is only good on the instance that asked for it).
  const tokens = new Map<string, { expires: number; ip: string }>();
  const started = new Date(now()).toISOString().replace(/\.\d{3}Z$/, 'Z');

  const send = (res: ServerResponse, status: number, body: string, type = 'text/plain'): void => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), server: 'EC2ws' });
    res.end(body);
  };

  return (req, res, sourceIp) => {
    const url = new URL(req.url ?? '/', 'http://169.254.169.254');
    const path = url.pathname;
    // Drain any body so keep-alive connections stay usable.
    req.resume();

    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return send(res, 405, 'Method Not Allowed');
      // The real service refuses tokens to anything that looks like a proxied request.
      if (req.headers['x-forwarded-for'] !== undefined) return send(res, 403, 'Forbidden');
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > IMDS_MAX_TTL_SECONDS) return send(res, 400, 'Bad Request');
      for (const [t, v] of tokens) if (v.expires <= now()) tokens.delete(t);
      const token = randomBytes(42).toString('base64url');
      tokens.set(token, { expires: now() + ttl * 1000, ip: sourceIp });
      res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl));
      return send(res, 200, token);
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Method Not Allowed');
    const token = req.headers['x-aws-ec2-metadata-token'];
    const known = typeof token === 'string' ? tokens.get(token) : undefined;
    if (!known || known.expires <= now() || known.ip !== sourceIp) return send(res, 401, 'Unauthorized');

    const inst = table().find((i) => i.privateIp === sourceIp);
    if (!inst) return send(res, 404, `Not Found (lab: no instance has source IP ${sourceIp})`);
    const az = inst.availabilityZone ?? `${opts.region}a`;
    const hostname = inst.hostname ?? defaultHostname(inst.privateIp, opts.region);
    const mac = macFor(inst.instanceId);
    const imageId = 'ami-0123456789abcdef0';
    const instanceType = inst.instanceType ?? 't3.small';

    const role = instanceRoleCredentials(inst.instanceId);
    const md: Record<string, string> = {
      '': 'ami-id\nhostname\niam/\ninstance-id\ninstance-life-cycle\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nplacement/',
      'ami-id': imageId,
      hostname,
      'local-hostname': hostname,
      'instance-id': inst.instanceId,
      'instance-type': instanceType,
      'instance-life-cycle': inst.instanceLifecycle ?? 'on-demand',
      'local-ipv4': inst.privateIp,
      mac,
      'placement/': 'availability-zone\nregion',
      'placement/region': opts.region,
      'placement/availability-zone': az,
      'iam/': 'info\nsecurity-credentials/',
      'iam/info': JSON.stringify(
        {
          Code: 'Success',
          LastUpdated: started,
          InstanceProfileArn: `arn:aws:iam::123456789012:instance-profile/${roleName}`,
          InstanceProfileId: 'AIPA' + hex(inst.instanceId, 16).toUpperCase(),
        },
        null,
        2,
      ),
      'iam/security-credentials/': roleName,
      [`iam/security-credentials/${roleName}`]: JSON.stringify(
        {
          Code: 'Success',
          LastUpdated: started,
          Type: 'AWS-HMAC',
          // The keys the lab's endpoints verify signatures with (../credentials.ts).
          AccessKeyId: role.accessKeyId,
          SecretAccessKey: role.secretAccessKey,
          Token: role.sessionToken,
          // Far ahead, so botocore never refreshes during a lab run.
          Expiration: new Date(now() + 6 * 3600 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
        null,
        2,
      ),
    };
    // Tags in metadata (launch templates with InstanceMetadataTags enabled) and the Auto Scaling target state.
    const tagKeys = Object.keys(inst.tags ?? {}).filter((k) => !k.includes('/'));
    if (tagKeys.length > 0) {
      md['tags/'] = 'instance';
      md['tags/instance'] = tagKeys.join('\n');
      for (const k of tagKeys) md[`tags/instance/${k}`] = inst.tags![k];
      md[''] += '\ntags/';
    }
    if (inst.targetLifecycleState) {
      md['autoscaling/'] = 'target-lifecycle-state';
      md['autoscaling/target-lifecycle-state'] = inst.targetLifecycleState;
      md[''] = `autoscaling/\n${md['']}`;
    }
    md['iam/security-credentials'] = md['iam/security-credentials/'];
    md.placement = md['placement/'];
    md.iam = md['iam/'];

    if (path.startsWith('/latest/meta-data/') || path === '/latest/meta-data') {
      const key = path.replace(/^\/latest\/meta-data\/?/, '');
      const value = md[key];
      if (value === undefined) return send(res, 404, 'Not Found');
      return send(res, 200, value);
    }
    if (path === '/latest/dynamic/instance-identity/document') {
      const doc = {
        accountId: '123456789012',
        architecture: 'x86_64',
        availabilityZone: az,
        imageId,
        instanceId: inst.instanceId,
        instanceType,
        pendingTime: started,
        privateIp: inst.privateIp,
        region: opts.region,
        version: '2017-09-30',
      };
      return send(res, 200, JSON.stringify(doc, null, 2));
    }
    if (path === '/latest' || path === '/latest/') return send(res, 200, 'dynamic\nmeta-data\nuser-data');
    return send(res, 404, 'Not Found');
  };
}

function hex(seed: string, n: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, n);
}

function macFor(instanceId: string): string {
  const h = hex(`mac:${instanceId}`, 10);
  return `02:${h.match(/../g)!.join(':')}`;
}
