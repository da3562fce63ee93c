/**
 * Client side of the state query: one runner call per poll, plus follow-up page calls only when the
 * compressed state exceeds one page (hundreds of services with long names).
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { SwarmError, isSwarmError } from '../../errors';
import type { OpsContext } from '../types';
import { failed, MANAGER_DELIVERY_BOUND_S, managerOrder, preferManager, runOnManager } from './manager';
import { FINGERPRINT_RE, NO_QUORUM_STATE, PAGE_CHARS, PAGE_MAGIC, QUERY_MAGIC, SAME_WORD, SNAPSHOT_ID, STATE_MAGIC, type WatchOptions, buildPageScript, buildQueryScript } from './query-script';
import { EdScriptError, applyEdScript } from './ed-script';
import { SnapshotParseError, parseSnapshot, type SwarmSnapshot } from './snapshot';

/** A snapshot as the operator holds it: parsed, and the text it came as (what the next answer may be a delta from). */
export interface HeldSnapshot {
  readonly snapshot: SwarmSnapshot;
  readonly text: string;
  /** md5 of `text` (UTF-8), as the manager computed it. */
  readonly md5: string;
}

export type QueryResult =
  | {
      readonly active: true;
      readonly snapshot: SwarmSnapshot;
      /** The snapshot with its text (pass it as `previous` with the next watch query). */
      readonly held: HeldSnapshot;
      readonly managerId: string;
      readonly calls: number;
      /** With `watch`: the fingerprint of the state the snapshot shows (pass it as `since`). */
      readonly fingerprint?: string;
      /**
       * The manager answered "same" (design.md decision 21): nothing changed since the snapshot passed as `previous`;
       * `snapshot` is that one at the manager's time of the answer.
       */
      readonly unchanged?: true;
      /** With `watch`: what the manager's last look at the state took, and its clock when it answered (ms). */
      readonly timing?: { readonly fingerprintMs: number; readonly answeredAtMs: number };
    }
  | { readonly active: false; readonly state: string; readonly managerId: string; readonly calls: number };

export interface QueryOptions {
  /** Characters per page. @default PAGE_CHARS */
  readonly pageChars?: number;
  /** Wait on the manager for a change first (the long poll, design.md decision 19). */
  readonly watch?: WatchOptions;
  /** The snapshot the operator holds, whose fingerprint is `watch.since`: what a "same" answer refers to. */
  readonly previous?: HeldSnapshot;
  /** When the first call is expected to answer if nothing changes, ms after it is sent (a hint to the runner). */
  readonly resultExpectedAfterMs?: number;
}

/** Upper bound on page calls: 200 pages of 20,000 characters is far beyond any real swarm. */
const MAX_PAGES = 200;

function splitHeader(stdout: string): [string, string] {
  const nl = stdout.indexOf('\n');
  return nl < 0 ? [stdout.trim(), ''] : [stdout.slice(0, nl).trim(), stdout.slice(nl + 1)];
}

/** A Go UnixNano as printed by `date +%s%N` → ms. */
function nanosToMs(text: string): number {
  return Number(BigInt(text) / 1000000n);
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
  // The manager that last had the state is asked first (verify polls many times).
  const ids = await managerOrder(ctx);
  if (ids.length <= 1) return queryOne(ctx, opts, ids[0]);
  let inactive: Extract<QueryResult, { active: false }> | undefined;
  let lastError: unknown;
  let online: ReadonlySet<string> | undefined;
  for (const [i, id] of ids.entries()) {
    // Once a manager has answered without the state, managers whose SSM agent is not Online are not waited for:
    // a swarm without quorum would otherwise cost the whole --timeout before saying so.
    if (inactive && ctx.cloud.listOnlineManagerInstanceIds) {
      online ??= new Set(await ctx.cloud.listOnlineManagerInstanceIds().catch((): string[] => ids.slice()));
      if (!online.has(id)) continue;
    }
    try {
      // Every manager but the last gets the delivery bound: a stopped one is left within seconds (decision 23).
      const r = await queryOne(ctx, opts, id, i < ids.length - 1);
      if (r.active) {
        preferManager(ctx, r.managerId);
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

async function queryOne(ctx: OpsContext, opts: QueryOptions, only: string | undefined, bounded = false): Promise<QueryResult> {
  const pageChars = opts.pageChars ?? PAGE_CHARS;
  const options = { label: 'swarm state', timeoutSeconds: 300, ...(opts.resultExpectedAfterMs !== undefined ? { resultExpectedAfterMs: opts.resultExpectedAfterMs } : {}) };
  const first = await runOnManager(ctx, buildQueryScript(pageChars, opts.watch), bounded ? { ...options, deliveryBoundSeconds: MANAGER_DELIVERY_BOUND_S } : options, only);
  const managerId = first.instanceId;
  if (first.exitCode !== 0) throw failed('swarm state query', first, 'environment');
  const [header, rest] = splitHeader(first.stdout);
  const words = header.split(' ');
  if (words[0] === STATE_MAGIC) return { active: false, state: words.slice(1).join(' ') || 'unknown', managerId, calls: 1 };
  if (words[0] !== QUERY_MAGIC || words.length !== (words[1] === SAME_WORD ? 6 : 8)) throw bad(`unexpected output ${JSON.stringify(header.slice(0, 80))}`);
  const [, snapId, totalText, fpText, fpMsText, endText, md5, baseMd5] = words;
  // A fingerprint the manager could not take ("-") is no fingerprint: the next query answers at once.
  const fingerprint = FINGERPRINT_RE.test(fpText) ? fpText : undefined;
  if (!/^\d+$/.test(fpMsText) || !/^\d+$/.test(endText)) throw bad(`bad timing in ${JSON.stringify(header.slice(0, 120))}`);
  const timing = { fingerprintMs: Number(fpMsText), answeredAtMs: nanosToMs(endText) };
  if (snapId === SAME_WORD) {
    // Only an answer to the question asked: the fingerprint the operator holds, with the snapshot it belongs to.
    const since = opts.watch?.since;
    if (!opts.previous || since === undefined || fpText !== since || !/^\d+$/.test(totalText)) throw bad(`unexpected answer ${JSON.stringify(header.slice(0, 120))}`);
    const atMs = nanosToMs(totalText);
    const snapshot = { ...opts.previous.snapshot, nowMs: Math.max(atMs, opts.previous.snapshot.nowMs) };
    return { active: true, snapshot, held: { ...opts.previous, snapshot }, managerId, calls: 1, fingerprint: since, unchanged: true, timing };
  }
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
  if (!FINGERPRINT_RE.test(md5) || !(baseMd5 === '-' || FINGERPRINT_RE.test(baseMd5))) throw bad(`bad digests in ${JSON.stringify(header.slice(0, 160))}`);
  let text: string;
  try {
    const raw = gunzipSync(Buffer.from(payload, 'base64')).toString('utf8');
    if (baseMd5 === '-') text = raw;
    else {
      // A delta from the text the operator holds: only for the one it said it holds.
      if (!opts.previous || opts.previous.md5 !== baseMd5) throw bad(`a difference from a snapshot not held (${baseMd5})`);
      const lines = opts.previous.text.split('\n');
      lines.pop();
      text = `${applyEdScript(lines, raw).join('\n')}\n`;
    }
  } catch (e) {
    if (e instanceof SwarmError) throw e;
    throw bad(e instanceof EdScriptError ? `bad difference (${e.message})` : `cannot decode (${(e as Error).message})`, e);
  }
  // The text as the manager had it, or nothing: a cut, a bad delta or a corrupted payload never passes for a state.
  if (createHash('md5').update(text, 'utf8').digest('hex') !== md5) throw bad(`the snapshot text does not match its digest ${md5}`);
  try {
    const snapshot = parseSnapshot(text);
    return { active: true, snapshot, held: { snapshot, text, md5 }, managerId, calls, ...(fingerprint ? { fingerprint } : {}), ...(opts.watch ? { timing } : {}) };
  } catch (e) {
    throw bad(e instanceof SnapshotParseError ? e.message : `cannot parse (${(e as Error).message})`, e);
  }
}

/** The swarm state, or a cluster error when the manager is not an active swarm manager. */
export async function requireSwarm(ctx: OpsContext): Promise<SwarmSnapshot> {
  return (await watchSwarm(ctx, {})).snapshot;
}

/** As requireSwarm, with the query's options (the long poll): the snapshot, its fingerprint, whether it is the previous one. */
export async function watchSwarm(ctx: OpsContext, options: QueryOptions): Promise<Extract<QueryResult, { active: true }>> {
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
  return r;
}
