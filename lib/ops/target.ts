/**
 * Where ops send their API calls: AWS (default) or the lab's local SSM endpoint. Same code path for both;
 * the lab only changes the endpoint and uses dummy credentials. Loads no SDK.
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { isAbsolute, join, resolve, dirname } from 'node:path';
import { SwarmError } from '../errors';

export type TargetKind = 'aws' | 'lab';

/** How to build an AWS SDK client. */
export interface AwsConnection {
  readonly region: string;
  /** Custom endpoint (the lab); absent → the SDK's regional endpoint. */
  readonly endpoint?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly maxAttempts?: number;
}

import { defaultLabDir, LAB_OPERATOR_CREDENTIALS } from '../lab-location';

/** What `ec2-swarm lab up` writes to `<lab dir>/state.json` (docs/contracts.md). */
export interface LabState {
  readonly ssmEndpoint: string;
  readonly region: string;
  readonly outputsFile: string;
  /** The lab's S3 stand-in for the staging bucket (lib/lab/s3/), when it runs one. */
  readonly s3Endpoint?: string;
}

export interface TargetOptions {
  readonly target?: string;
  /** --region */
  readonly region?: string;
  /** --outputs */
  readonly outputsFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Skip the lab endpoint's TCP probe (tests). */
  readonly probe?: (endpoint: string) => Promise<boolean>;
}

export interface ResolvedTarget {
  readonly kind: TargetKind;
  /** Region the caller asked for (--region, or the lab's); the outputs file may supply one later. */
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentials?: AwsConnection['credentials'];
  /** Outputs file to read (--outputs, or the lab's). */
  readonly outputsFile?: string;
  /** The lab's S3 endpoint; on the lab target, no staging bucket is used without it (never real S3). */
  readonly s3Endpoint?: string;
}

/** Lab credentials: the operator's key the lab issues and verifies signatures with (lib/lab-location.ts). */
export const LAB_CREDENTIALS = LAB_OPERATOR_CREDENTIALS;

const LAB_NOT_RUNNING = 'lab is not running: run `ec2-swarm lab up`';

export function labDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return defaultLabDir(env, cwd);
}

/** Reads and checks `<lab dir>/state.json`; environment error when the lab is not up. */
export function readLabState(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LabState {
  const file = join(labDir(env, cwd), 'state.json');
  if (!existsSync(file)) throw SwarmError.environment('LAB_NOT_RUNNING', `${LAB_NOT_RUNNING} (no ${file})`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw SwarmError.environment('LAB_STATE_INVALID', `${file} is not valid JSON (${(e as Error).message}): run \`ec2-swarm lab down\` then \`ec2-swarm lab up\``, e);
  }
  const s = raw as Partial<Record<keyof LabState, unknown>>;
  for (const key of ['ssmEndpoint', 'region', 'outputsFile'] as const) {
    if (typeof s?.[key] !== 'string' || (s[key] as string).length === 0) {
      throw SwarmError.environment('LAB_STATE_INVALID', `${file} has no "${key}": run \`ec2-swarm lab down\` then \`ec2-swarm lab up\``);
    }
  }
  let url: URL;
  try {
    url = new URL(s.ssmEndpoint as string);
  } catch (e) {
    throw SwarmError.environment('LAB_STATE_INVALID', `${file}: ssmEndpoint "${String(s.ssmEndpoint)}" is not a URL`, e);
  }
  if (!isLoopback(url.hostname)) {
    // The lab lives on this machine; anything else is a misconfiguration we refuse to send requests to.
    throw SwarmError.environment('LAB_STATE_INVALID', `${file}: ssmEndpoint ${url.origin} is not a loopback address`);
  }
  const outputsFile = s.outputsFile as string;
  let s3Endpoint: string | undefined;
  if (s.s3Endpoint !== undefined) {
    let s3: URL | undefined;
    try {
      s3 = new URL(String(s.s3Endpoint));
    } catch {
      s3 = undefined;
    }
    if (!s3 || !isLoopback(s3.hostname)) throw SwarmError.environment('LAB_STATE_INVALID', `${file}: s3Endpoint is not a loopback URL`);
    s3Endpoint = s3.toString().replace(/\/$/, '');
  }
  return {
    ...(s3Endpoint ? { s3Endpoint } : {}),
    ssmEndpoint: url.toString().replace(/\/$/, ''),
    region: s.region as string,
    outputsFile: isAbsolute(outputsFile) ? outputsFile : resolve(dirname(file), outputsFile),
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** True when something accepts TCP connections at the endpoint within 2 s. */
export function probeEndpoint(endpoint: string): Promise<boolean> {
  const url = new URL(endpoint);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((done) => {
    const sock = netConnect({ host, port });
    const finish = (ok: boolean) => {
      sock.destroy();
      done(ok);
    };
    sock.setTimeout(2000, () => finish(false));
    sock.once('connect', () => finish(true));
    sock.once('error', () => finish(false));
  });
}

export async function resolveTarget(opts: TargetOptions = {}): Promise<ResolvedTarget> {
  const env = opts.env ?? process.env;
  const kind = opts.target ?? 'aws';
  if (kind !== 'aws' && kind !== 'lab') {
    throw SwarmError.user('TARGET_INVALID', `--target must be aws or lab (got "${kind}")`);
  }
  if (kind === 'aws') {
    return { kind, region: opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION, outputsFile: opts.outputsFile };
  }
  const state = readLabState(env, opts.cwd);
  const up = await (opts.probe ?? probeEndpoint)(state.ssmEndpoint);
  if (!up) throw SwarmError.environment('LAB_NOT_RUNNING', `${LAB_NOT_RUNNING} (nothing answers at ${state.ssmEndpoint})`);
  return {
    kind,
    region: opts.region ?? state.region,
    endpoint: state.ssmEndpoint,
    credentials: LAB_CREDENTIALS,
    outputsFile: opts.outputsFile ?? state.outputsFile,
    ...(state.s3Endpoint ? { s3Endpoint: state.s3Endpoint } : {}),
  };
}
