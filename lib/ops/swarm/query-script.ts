/**
 * The swarm state query: ONE script per poll, whatever the number of services. The manager reduces the state
 * with docker's own Go templates and awk (no jq/python on the host), gzips and base64-encodes it, and prints it
 * in pages that fit SSM's 24,000-character stdout cap. A large snapshot stays in a private file on the manager
 * for the follow-up page calls, so all pages come from the same instant.
 *
 * Besides counts, the snapshot carries what "converged" needs (design.md decision 14): the manager's clock, each
 * service's spec version, update state and stability window, and for each task whether it runs the service's
 * current task spec. That comparison is done on the manager (awk) over a fingerprint of the task template, so
 * the specs themselves never travel.
 *
 * verify's later looks wait on the manager first and answer "same" when nothing changed, or the difference from
 * the snapshot the operator holds (design.md decisions 19 and 21).
 */
import { script, sh } from './script';

/** Characters of payload per page: well under SSM's 24,000 so the header and stray output still fit. */
export const PAGE_CHARS = 20000;
export const QUERY_MAGIC = 'EC2SWARM-Q4';
export const PAGE_MAGIC = 'EC2SWARM-P1';
export const STATE_MAGIC = 'EC2SWARM-STATE';
/** The state a manager reports when the swarm has no leader (fewer than a majority of the managers reachable). */
export const NO_QUORUM_STATE = 'no-quorum';
/** Snapshots live here between page calls (and for deltas); older than 10 minutes they are removed by a later query. */
export const SNAPSHOT_DIR = '${EC2SWARM_RUN_DIR:-/run/ec2-swarm}';
export const SNAPSHOT_ID = /^q\.[A-Za-z0-9]{8,16}$/;

/**
 * A task template's fingerprint: the fields a deploy changes (image, command, env, mounts, configs, secrets,
 * constraints, networks, force-update counter). Fields the engine fills with defaults when a service is inspected
 * (`docker service inspect` inserts them, a task shows them raw) are left out, so a current task matches.
 */
const FINGERPRINT =
  '{{json .ForceUpdate}}{{json .Networks}}{{if .Placement}}{{json .Placement.Constraints}}{{end}}' +
  '{{if .ContainerSpec}}{{with .ContainerSpec}}{{json .Image}}{{json .Command}}{{json .Args}}{{json .Env}}{{json .Labels}}' +
  '{{json .Dir}}{{json .User}}{{json .Mounts}}{{json .Configs}}{{json .Secrets}}{{end}}{{end}}';

// Tab-separated fields; free text goes through `json` so it can hold no tab or newline.
const NODE_T =
  '{{.ID}}\t{{.Spec.Role}}\t{{.Spec.Availability}}\t{{.Status.State}}\t' +
  '{{if .ManagerStatus}}{{.ManagerStatus.Leader}}{{else}}false{{end}}\t{{json .Status.Addr}}\t{{json .Description.Hostname}}\t' +
  // Managers: Raft reachability (reachable, unreachable, unknown); the node's instance (engine label set at join).
  '{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{else}}-{{end}}\t{{json (index .Description.Engine.Labels "ec2-swarm.instance-id")}}';
/** The last field (the fingerprint) is consumed by awk on the manager and never printed. */
const SERVICE_T =
  '{{.ID}}\t{{json .Spec.Name}}\t' +
  '{{if .Spec.Mode.Global}}global{{else if .Spec.Mode.ReplicatedJob}}replicated-job{{else if .Spec.Mode.GlobalJob}}global-job{{else}}replicated{{end}}\t' +
  '{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else if .Spec.Mode.ReplicatedJob}}{{.Spec.Mode.ReplicatedJob.TotalCompletions}}{{else}}-{{end}}\t' +
  '{{if .UpdateStatus}}{{json .UpdateStatus.State}}\t{{json .UpdateStatus.Message}}{{else}}""\t""{{end}}\t' +
  '{{json .Spec.TaskTemplate.ContainerSpec.Image}}\t{{.Version.Index}}\t' +
  '{{if .Spec.UpdateConfig}}{{printf "%d" .Spec.UpdateConfig.Monitor}}{{else}}0{{end}}\t{{.UpdatedAt.UnixNano}}\t' +
  '{{if .UpdateStatus}}{{if .UpdateStatus.StartedAt}}{{.UpdateStatus.StartedAt.UnixNano}}{{else}}0{{end}}{{else}}0{{end}}\t' +
  `{{with .Spec.TaskTemplate}}${FINGERPRINT}{{end}}`;
// ServiceStatus (the engine's desired count, global services included) is only in the list API: `service ls`.
const REPLICAS_T = '{{json .Name}}\t{{json .Replicas}}';
/** The last field (the fingerprint) becomes 1 (current spec) or 0 on the manager. */
const TASK_T =
  '{{.ServiceID}}\t{{.Slot}}\t{{.NodeID}}\t{{.DesiredState}}\t{{.Status.State}}\t{{.Status.Timestamp.UnixNano}}\t{{json .Status.Err}}\t' +
  `{{.CreatedAt.UnixNano}}\t{{with .Spec}}${FINGERPRINT}{{end}}`;

/**
 * Which tasks are inspected (`docker service ps` lists a slot's tasks newest first): every task not desired shut
 * down, the newest task of each slot (a short service shows its latest error), and the newest few of a slot that
 * failed, were rejected or exited (a crash loop shows as several in a row). Old tasks shut down by an update cost
 * nothing.
 */
const SELECT_TASKS =
  `awk '{ n = ++seen[$2] } ($3 != "Shutdown" && $3 != "Remove") || n == 1 || (n <= 5 && ($4 == "Failed" || $4 == "Rejected" || $4 == "Complete")) { print $1 }'`;

/** awk: a Go UnixNano cut to whole milliseconds (what the operator reads, convergence.ts judges in ms; fewer digits to ship). */
const MS_AWK = 'function ms(x) { return length(x) > 6 ? substr(x, 1, length(x) - 6) "000000" : x }';
/**
 * awk: services numbered 1…S in place of their 25-character ids (tasks refer to the number: the ids never travel),
 * without their fingerprint, times in ms.
 */
const SERVICES_AWK =
  `awk 'BEGIN { FS = OFS = "\\t" } ${MS_AWK}` +
  ` { $1 = NR; $9 = ms($9); $10 = ms($10); $11 = ms($11); out = $1; for (i = 2; i < NF; i++) out = out OFS $i; print out }'`;
/** awk: the engine's replica counts, only for services whose desired count is not in their spec (global, jobs). */
const REPLICAS_AWK = `awk 'BEGIN { FS = "\\t" } FNR == NR { mode[$2] = $3; next } ($1 in mode) && mode[$1] != "replicated"'`;
/** awk: tasks with their service's number, times in ms, and 1/0 for "fingerprint equals its service's". */
const TASKS_AWK =
  `awk 'BEGIN { FS = OFS = "\\t" } ${MS_AWK} FNR == NR { n[$1] = FNR; fp[$1] = $NF; next }` +
  ` { cur = ($1 in fp && fp[$1] == $NF) ? 1 : 0; $1 = ($1 in n) ? n[$1] : "-"; $6 = ms($6); $8 = ms($8); $NF = cur; print }'`;

/** A state fingerprint: 32 hex digits (md5 of the cheap listing, see WATCH_FINGERPRINT). */
export const FINGERPRINT_RE = /^[0-9a-f]{32}$/;
/** Pause between two looks at the state while the manager waits (design.md decision 19). */
export const WATCH_STEP_MS = 200;
/** The first word after QUERY_MAGIC when the manager answers "nothing changed" (design.md decision 21). */
export const SAME_WORD = 'same';

/**
 * The long poll (design.md decisions 19 and 21): before taking the snapshot, the manager waits until the state
 * differs from the one the operator last judged (`since`, the fingerprint that came with that snapshot), or until
 * `wakeAtMs` (manager clock: the next instant a time rule of convergence.ts can flip, e.g. the end of a stability
 * window), or `maxWaitMs` after it started, whichever is first. Unchanged at the wake-up it answers "same at T"
 * (a few bytes) instead of a snapshot: the operator judges the snapshot it holds at the manager's time T.
 */
export interface WatchOptions {
  /** The fingerprint of the snapshot already judged; absent: answer at once (with a fingerprint). */
  readonly since?: string;
  /** Manager clock, ms since the epoch. */
  readonly wakeAtMs?: number;
  /** The longest wait on the manager, ms (at most --timeout's remainder). */
  readonly maxWaitMs: number;
  /** md5 of the snapshot text the operator holds: the manager may answer with the difference to it (`diff -e`). */
  readonly base?: string;
}

/**
 * The fingerprint: everything a judgement of convergence.ts reads that can change other than by time — tasks (id,
 * node, desired state, state, error), nodes (status, availability, manager status), services (mode, replicas,
 * image, and the version of the service object, which moves with every write of it: spec, update state, update
 * message) — read with four list calls, never inspecting a task. Relative times ("2 seconds ago") are cut off.
 * Task states only move forward and a task never comes back, so the same fingerprint later means every field the
 * judgement reads is the same: that is what makes the "same" answer true (decision 21). Any failed call makes the
 * whole fingerprint fail (no fingerprint of a partial listing).
 */
const WATCH_FINGERPRINT = [
  // The four calls run side by side (the services' two need the service list first): one look costs about two calls.
  'fingerprint() {',
  '  local d="$EC2SWARM_TMP" ok=0 p1 p3 p4',
  "  timeout 10 docker node ls --format '{{.ID}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' > \"$d/f1\" 2>/dev/null & p1=$!",
  `  if ! timeout 10 docker service ls --format '{{.ID}} {{.Mode}} {{.Replicas}} {{.Image}}' > "$d/wsvc" 2>/dev/null; then wait "$p1" || true; return 1; fi`,
  `  { cut -d' ' -f1 "$d/wsvc" | xargs -r timeout 10 docker service inspect --format '{{.ID}} {{.Version.Index}}{{if .UpdateStatus}} {{.UpdateStatus.State}} {{json .UpdateStatus.Message}}{{end}}'; } > "$d/f3" 2>/dev/null & p3=$!`,
  // CurrentState is "Running 2 seconds ago": only its first word is kept (after a tab, as the last field).
  `  { cut -d' ' -f1 "$d/wsvc" | xargs -r timeout 10 docker service ps --no-trunc --no-resolve --format '{{.ID}} {{.Node}} {{.DesiredState}} {{.Error}}\t{{.CurrentState}}' \\`,
  `      | awk -F'\\t' '{ s = $NF; sub(/ .*/, "", s); sub(/\\t[^\\t]*$/, ""); print $0 " " s }'; } > "$d/f4" 2>/dev/null & p4=$!`,
  '  wait "$p1" || ok=1',
  '  wait "$p3" || ok=1',
  '  wait "$p4" || ok=1',
  '  [ "$ok" = 0 ] || return 1',
  '  cat "$d/f1" "$d/wsvc" "$d/f3" "$d/f4" | md5sum | cut -c1-32',
  '}',
  // One look: the fingerprint and the manager clock just before it (ns), and what it cost (ms).
  'look() {',
  '  local t1',
  '  fp_at=$(date +%s%N)',
  '  fp=$(fingerprint) || fp=unavailable',
  '  t1=$(date +%s%N)',
  '  fp_ms=$(( (t1 - fp_at) / 1000000 ))',
  '}',
].join('\n');

function watchLoop(w: WatchOptions): string[] {
  if (w.since !== undefined && !FINGERPRINT_RE.test(w.since)) throw new Error(`not a state fingerprint: ${w.since}`);
  if (w.wakeAtMs !== undefined && !(Number.isSafeInteger(w.wakeAtMs) && w.wakeAtMs > 0)) throw new Error(`bad wake-up time: ${w.wakeAtMs}`);
  if (!Number.isSafeInteger(w.maxWaitMs) || w.maxWaitMs < 0) throw new Error(`bad wait bound: ${w.maxWaitMs}`);
  if (w.base !== undefined && !FINGERPRINT_RE.test(w.base)) throw new Error(`not a snapshot digest: ${w.base}`);
  return [
    `base_md5=${sh`${w.base ?? ''}`}`,
    `since=${sh`${w.since ?? ''}`}`,
    `max_wait_ms=${sh`${w.maxWaitMs}`}`,
    `wake_ms=${sh`${w.wakeAtMs ?? 0}`}`,
    WATCH_FINGERPRINT,
    'now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }',
    'end_ms=$(( $(now_ms) + max_wait_ms ))',
    'if [ "$wake_ms" -gt 0 ] && [ "$wake_ms" -lt "$end_ms" ]; then end_ms=$wake_ms; fi',
    // Also bounded by a count of steps, should the clock stand still or jump back.
    `steps=$(( max_wait_ms / ${WATCH_STEP_MS} + 1 ))`,
    'while :; do',
    '  look',
    '  if [ -z "$since" ] || [ "$fp" != "$since" ]; then break; fi',
    // Unchanged at the wake-up: "same" at the instant the last look began (never before the wake-up).
    '  if [ "$wake_ms" -gt 0 ] && [ $((fp_at / 1000000)) -ge "$wake_ms" ]; then',
    `    echo "${QUERY_MAGIC} ${SAME_WORD} $fp_at $fp $fp_ms $(date +%s%N)"; exit 0`,
    '  fi',
    // At the bound a snapshot (usually a few bytes of difference): what "same" relies on is looked at afresh.
    '  steps=$(( steps - 1 ))',
    '  if [ $((fp_at / 1000000)) -ge "$end_ms" ] || [ "$steps" -lt 0 ]; then break; fi',
    '  left=$(( end_ms - $(now_ms) ))',
    `  [ "$left" -le ${WATCH_STEP_MS} ] || left=${WATCH_STEP_MS}`,
    '  [ "$left" -ge 0 ] || left=0',
    // Up to the wake-up exactly, so a stability window ending between two looks costs nothing.
    '  sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"',
    'done',
  ];
}

/** The snapshot, as plain text (sections #now, #nodes, #services, #replicas, #tasks, #end) in "$EC2SWARM_TMP/plain". */
const TAKE_SNAPSHOT = [
  'take_snapshot() {',
  `  docker service ls -q > "$EC2SWARM_TMP/ids"`,
  `  xargs -r docker service inspect --format ${sh`${SERVICE_T}`} < "$EC2SWARM_TMP/ids" > "$EC2SWARM_TMP/svc"`,
  `  : > "$EC2SWARM_TMP/tasks"`,
  `  if [ -s "$EC2SWARM_TMP/ids" ]; then`,
  `    xargs docker service ps --no-trunc --format '{{.ID}} {{.Name}} {{.DesiredState}} {{.CurrentState}}' < "$EC2SWARM_TMP/ids" | ${SELECT_TASKS} \\`,
  `      | xargs -r docker inspect --type task --format ${sh`${TASK_T}`} > "$EC2SWARM_TMP/tasks"`,
  `  fi`,
  '  {',
  // The manager's clock, read after the tasks: a task's age is never overstated.
  `    echo '#now'`,
  `    date +%s%N`,
  `    echo '#nodes'`,
  `    docker node ls -q | xargs -r docker node inspect --format ${sh`${NODE_T}`}`,
  `    echo '#services'`,
  `    ${SERVICES_AWK} "$EC2SWARM_TMP/svc"`,
  `    echo '#replicas'`,
  `    docker service ls --format ${sh`${REPLICAS_T}`} | ${REPLICAS_AWK} "$EC2SWARM_TMP/svc" -`,
  `    echo '#tasks'`,
  `    ${TASKS_AWK} "$EC2SWARM_TMP/svc" "$EC2SWARM_TMP/tasks"`,
  `    echo '#end'`,
  `  } > "$EC2SWARM_TMP/plain"`,
  '}',
].join('\n');

/**
 * Watch queries keep each snapshot's text on the manager (private, removed after 10 minutes or when the operator
 * moved on to a newer one) and, when the operator holds one (`base`), answer with `diff -e` from it if that is
 * shorter: a look at a large swarm where one task changed ships that task's line (decision 21). No line of the
 * state is ever a lone "." (ed's end of text); should one be, the whole text is sent.
 */
const DELTA = [
  'mkdir -p "$dir" && chmod 700 "$dir"',
  `find "$dir" -maxdepth 1 -name 'b.*' -mmin +10 -delete 2>/dev/null || true`,
  'if [ -n "$base_md5" ] && [ -f "$dir/b.$base_md5" ] && command -v diff > /dev/null && ! grep -qx "[.]" "$plain"; then',
  '  rc=0',
  '  diff -e "$dir/b.$base_md5" "$plain" > "$EC2SWARM_TMP/delta" || rc=$?',
  '  if [ "$rc" -le 1 ] && [ "$(wc -c < "$EC2SWARM_TMP/delta")" -lt "$(wc -c < "$plain")" ]; then payload="$EC2SWARM_TMP/delta"; base=$base_md5; fi',
  '  [ "$base_md5" = "$md5" ] || rm -f "$dir/b.$base_md5"',
  'fi',
  'cp "$plain" "$dir/b.$md5"',
];

/**
 * The state query. With `watch`, the manager first waits for a change (watchLoop); the snapshot then comes with the
 * fingerprint of the look just before it. Should the state move while the snapshot is taken, the next wait ends at
 * once (the state no longer has that fingerprint, and tasks never go back), so a "same" only ever follows a
 * snapshot that shows the state it names.
 *
 * Header words: magic, snapshot id (`-` when it fits one page), base64 length, fingerprint (`-`: none), ms the last
 * fingerprint took, manager clock (ns) at the answer, md5 of the snapshot text, and the md5 of the text the payload
 * is a `diff -e` from (`-`: the payload is the text itself). A "same" answer: magic, `same`, the instant (ns), fingerprint,
 * ms it took, manager clock at the answer.
 */
export function buildQueryScript(pageChars = PAGE_CHARS, watch?: WatchOptions): string {
  return script(
    ...(watch ? watchLoop(watch) : ['fp=-', 'fp_ms=0']),
    `state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null) || { echo '${STATE_MAGIC} no-docker'; exit 0; }`,
    `if [ "$state" != "active true" ]; then echo "${STATE_MAGIC} $state"; exit 0; fi`,
    // A manager without a leader still says "active true"; its manager API refuses (or hangs: bounded) instead.
    `if ! timeout 60 docker node ls -q > /dev/null 2> "$EC2SWARM_TMP/err"; then`,
    `  if grep -q 'does not have a leader' "$EC2SWARM_TMP/err"; then echo "${STATE_MAGIC} ${NO_QUORUM_STATE}"; exit 0; fi`,
    `  cat "$EC2SWARM_TMP/err" >&2; echo 'docker node ls failed or did not answer within 60 s' >&2; exit 1`,
    'fi',
    TAKE_SNAPSHOT,
    'take_snapshot',
    '[ "$fp" != unavailable ] || fp=-',
    `plain="$EC2SWARM_TMP/plain"`,
    'md5=$(md5sum < "$plain" | cut -c1-32)',
    'payload=$plain',
    'base=-',
    `dir="${SNAPSHOT_DIR}"`,
    ...(watch ? DELTA : []),
    `out="$EC2SWARM_TMP/out"`,
    `gzip -c "$payload" | base64 -w0 > "$out"`,
    `total=$(wc -c < "$out")`,
    `if [ "$total" -le ${pageChars} ]; then echo "${QUERY_MAGIC} - $total $fp $fp_ms $(date +%s%N) $md5 $base"; cat "$out"; echo; exit 0; fi`,
    // Too big for one page: keep the snapshot for the page calls (same instant for every page).
    'mkdir -p "$dir" && chmod 700 "$dir"',
    `find "$dir" -maxdepth 1 -name 'q.*' -mmin +10 -delete 2>/dev/null || true`,
    'snap=$(mktemp "$dir/q.XXXXXXXXXX")',
    'mv -f "$out" "$snap"',
    `echo "${QUERY_MAGIC} \${snap##*/} $total $fp $fp_ms $(date +%s%N) $md5 $base"`,
    `head -c ${pageChars} "$snap"; echo`,
  );
}

/** A follow-up page of a snapshot; the last page removes the snapshot. */
export function buildPageScript(snapshotId: string, offset: number, pageChars = PAGE_CHARS): string {
  if (!SNAPSHOT_ID.test(snapshotId)) throw new Error(`not a snapshot id: ${snapshotId}`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`bad page offset: ${offset}`);
  return script(
    `snap="${SNAPSHOT_DIR}"/${sh`${snapshotId}`}`,
    `[ -f "$snap" ] || { echo "snapshot ${snapshotId} is gone" >&2; exit 4; }`,
    `total=$(wc -c < "$snap")`,
    `echo "${PAGE_MAGIC} $total"`,
    // dd, not `tail | head`: under pipefail, head closing the pipe early would fail the page with SIGPIPE.
    `dd if="$snap" iflag=skip_bytes,count_bytes skip=${offset} count=${pageChars} status=none; echo`,
    `if [ $((${offset} + ${pageChars})) -ge "$total" ]; then rm -f "$snap"; fi`,
  );
}
