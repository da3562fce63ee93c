/**
 * Client side of the state query: one runner call per poll, plus follow-up page calls only when the
 * compressed state exceeds one page (hundreds of services with long names).
 */
import { gunzipSync } from 'node:zlib';
import { SwarmError, isSwarmError } from '../../errors';
import type { OpsContext } from '../types';
import { failed, managerIds, runOnManager } from './manager';
import { FINGERPRINT_RE, NO_QUORUM_STATE, PAGE_CHARS, PAGE_MAGIC, QUERY_MAGIC, SNAPSHOT_ID, STATE_MAGIC, type WatchOptions, buildPageScript, buildQueryScript } from './query-script';
import { SnapshotParseError, parseSnapshot, type SwarmSnapshot } from './snapshot';

export type QueryResult =
  | {
      readonly active: true;
      readonly snapshot: SwarmSnapshot;
      readonly managerId: string;
      readonly calls: number;
      /** With `watch`: the fingerprint of the state the manager saw just before the snapshot (pass it as `since`). */
      readonly fingerprint?: string;
    }
  | { readonly active: false; readonly state: string; readonly managerId: string; readonly calls: number };

export interface QueryOptions {
  /** Characters per page. @default PAGE_CHARS */
  readonly pageChars?: number;
  /** Wait on the manager for a change first (the long poll, design.md decision 19). */
  readonly watch?: WatchOptions;
  /** When the first call is expected to answer if nothing changes, ms after it is sent (a hint to the runner). */
  readonly resultExpectedAfterMs?: number;
}

const lastGood = new WeakMap<OpsContext, string>();

/** Upper bound on page calls: 200 pages of 20,000 characters is far beyond any real swarm. */
const MAX_PAGES = 200;

function splitHeader(stdout: string): [string, string] {
  const nl = stdout.indexOf('\n');
  return nl < 0 ? [stdout.trim(), ''] : [stdout.slice(0, nl).trim(), stdout.slice(nl + 1)];
}

function bad(message: string, cause?: unknown): SwarmError {
  return SwarmError.environment('QUERY_OUTPUT_INVALID', `swarm state query: ${message}`, cause);
}

/**
 * The state from the first manager that has it: one that is not (or no longer) in the swarm, has no leader, fails
 * or cannot be reached makes way for the next (issue 7: ops work through any healthy manager). When none has it,
 * the most telling answer: no quorum, else another inactive state, else the last transport error.
 */
export async function querySwarm(ctx: OpsContext, options: number | QueryOptions = {}): Promise<QueryResult> {
  const opts: QueryOptions = typeof options === 'number' ? { pageChars: options } : options;
  const all = await managerIds(ctx);
  if (all.length <= 1) return queryOne(ctx, opts, all[0]);
  // The manager that last had the state is asked first (verify polls many times).
  const good = lastGood.get(ctx);
  const ids = good && all.includes(good) ? [good, ...all.filter((id) => id !== good)] : all;
  let inactive: Extract<QueryResult, { active: false }> | undefined;
  let lastError: unknown;
  let online: ReadonlySet<string> | undefined;
  for (const id of ids) {
    // Once a manager has answered without the state, managers whose SSM agent is not Online are not waited for:
    // a swarm without quorum would otherwise cost the whole --timeout before saying so.
    if (inactive && ctx.cloud.listOnlineManagerInstanceIds) {
      online ??= new Set(await ctx.cloud.listOnlineManagerInstanceIds().catch((): string[] => ids.slice()));
      if (!online.has(id)) continue;
    }
    try {
      const r = await queryOne(ctx, opts, id);
      if (r.active) {
        lastGood.set(ctx, r.managerId);
        return r;
      }
      if (!inactive || (r.state === NO_QUORUM_STATE && inactive.state !== NO_QUORUM_STATE)) inactive = r;
    } catch (e) {
      if (!isSwarmError(e) || e.fault !== 'environment') throw e;
      lastError = e;
    }
  }
  if (inactive) return inactive;
  throw lastError;
}

async function queryOne(ctx: OpsContext, opts: QueryOptions, only: string | undefined): Promise<QueryResult> {
  const pageChars = opts.pageChars ?? PAGE_CHARS;
  const first = await runOnManager(
    ctx,
    buildQueryScript(pageChars, opts.watch),
    { label: 'swarm state', timeoutSeconds: 300, ...(opts.resultExpectedAfterMs !== undefined ? { resultExpectedAfterMs: opts.resultExpectedAfterMs } : {}) },
    only,
  );
  const managerId = first.instanceId;
  if (first.exitCode !== 0) throw failed('swarm state query', first, 'environment');
  const [header, rest] = splitHeader(first.stdout);
  const words = header.split(' ');
  if (words[0] === STATE_MAGIC) return { active: false, state: words.slice(1).join(' ') || 'unknown', managerId, calls: 1 };
  if (words[0] !== QUERY_MAGIC || words.length < 3 || words.length > 4) throw bad(`unexpected output ${JSON.stringify(header.slice(0, 80))}`);
  const [, snapId, totalText, fpText] = words;
  // A fingerprint the manager could not take ("unavailable") is no fingerprint: the next query answers at once.
  const fingerprint = fpText !== undefined && FINGERPRINT_RE.test(fpText) ? fpText : undefined;
  const total = Number(totalText);
  if (!Number.isSafeInteger(total) || total < 0) throw bad(`bad length ${JSON.stringify(totalText)}`);
  let payload = rest.replace(/\s+$/, '');
  let calls = 1;
  if (snapId !== '-') {
    if (!SNAPSHOT_ID.test(snapId)) throw bad(`bad snapshot id ${JSON.stringify(snapId)}`);
    while (payload.length < total) {
      if (calls > MAX_PAGES) throw bad(`more than ${MAX_PAGES} pages`);
      const page = await runOnManager(ctx, buildPageScript(snapId, payload.length, pageChars), { label: 'swarm state (page)' }, managerId);
      calls++;
      if (page.exitCode !== 0) throw failed('swarm state query (page)', page, 'environment');
      const [pageHeader, chunk] = splitHeader(page.stdout);
      if (pageHeader !== `${PAGE_MAGIC} ${total}`) throw bad(`unexpected page header ${JSON.stringify(pageHeader.slice(0, 80))}`);
      const text = chunk.replace(/\s+$/, '');
      const expected = Math.min(pageChars, total - payload.length);
      // A short page means the transport cut it: refuse rather than decode a partial state.
      if (text.length !== expected) throw bad(`page at ${payload.length} has ${text.length} characters, expected ${expected}`);
      payload += text;
    }
  }
  if (payload.length !== total) throw bad(`got ${payload.length} of ${total} characters (output cut?)`);
  try {
    const snapshot = parseSnapshot(gunzipSync(Buffer.from(payload, 'base64')).toString('utf8'));
    return { active: true, snapshot, managerId, calls, ...(fingerprint ? { fingerprint } : {}) };
  } catch (e) {
    throw bad(e instanceof SnapshotParseError ? e.message : `cannot decode (${(e as Error).message})`, e);
  }
}

/** The swarm state, or a cluster error when the manager is not an active swarm manager. */
export async function requireSwarm(ctx: OpsContext): Promise<SwarmSnapshot> {
  return (await watchSwarm(ctx, {})).snapshot;
}

/** As requireSwarm, with the query's options (the long poll) and the fingerprint that came with the snapshot. */
export async function watchSwarm(ctx: OpsContext, options: QueryOptions): Promise<{ snapshot: SwarmSnapshot; fingerprint?: string }> {
  const r = await querySwarm(ctx, options);
  if (!r.active && r.state === NO_QUORUM_STATE) {
    throw SwarmError.cluster(
      'NO_QUORUM',
      `manager ${r.managerId}: the swarm has no leader — fewer than a majority of its managers are reachable, so nothing can change ` +
        '(running services keep running). Bring the lost managers back, or follow the README runbook "a majority of managers is lost".',
    );
  }
  if (!r.active) {
    throw SwarmError.cluster('NOT_A_SWARM_MANAGER', `manager ${r.managerId} is not an active swarm manager (state: ${r.state})`);
  }
  return { snapshot: r.snapshot, ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}) };
}
