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
 */
import { script, sh } from './script';

/** Characters of payload per page: well under SSM's 24,000 so the header and stray output still fit. */
export const PAGE_CHARS = 20000;
export const QUERY_MAGIC = 'EC2SWARM-Q3';
export const PAGE_MAGIC = 'EC2SWARM-P1';
export const STATE_MAGIC = 'EC2SWARM-STATE';
/** The state a manager reports when the swarm has no leader (fewer than a majority of the managers reachable). */
export const NO_QUORUM_STATE = 'no-quorum';
/** Snapshots live here between page calls; older than 10 minutes they are removed by the next query. */
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

/** awk: services without their fingerprint; tasks with 1/0 for "fingerprint equals its service's". */
const SERVICES_AWK = `awk '{ sub(/\\t[^\\t]*$/, ""); print }'`;
const TASKS_AWK =
  `awk 'FNR == NR { v = $0; sub(/^.*\\t/, "", v); fp[$1] = v; next }` +
  ` { v = $0; sub(/^.*\\t/, "", v); sub(/\\t[^\\t]*$/, ""); split($0, f, "\\t"); print $0 "\\t" (f[1] in fp && fp[f[1]] == v ? 1 : 0) }'`;

/** A state fingerprint: 32 hex digits (md5 of the cheap listing, see WATCH_FINGERPRINT). */
export const FINGERPRINT_RE = /^[0-9a-f]{32}$/;
/** Service ids as Docker makes them (25 lowercase alphanumerics); stand-ins use shorter ones. */
const SERVICE_ID_RE = /^[A-Za-z0-9]{1,64}$/;
/** Pause between two looks at the state while the manager waits (design.md decision 19). */
export const WATCH_STEP_MS = 200;
/** At most this many services have their update state looked at on each step. */
export const MAX_WATCHED_UPDATES = 200;

/**
 * The long poll (design.md decision 19): before taking the snapshot, the manager waits until the state differs
 * from the one the operator last judged (`since`, the fingerprint that came with that snapshot), or until
 * `wakeAtMs` (manager clock: the next instant a time rule of convergence.ts can flip, e.g. the end of a stability
 * window), or `maxWaitMs` after it started, whichever is first.
 */
export interface WatchOptions {
  /** The fingerprint of the snapshot already judged; absent: answer at once (with a fingerprint). */
  readonly since?: string;
  /** Manager clock, ms since the epoch. */
  readonly wakeAtMs?: number;
  /** The longest wait on the manager, ms (at most --timeout's remainder). */
  readonly maxWaitMs: number;
  /** Services in a rolling update: their update state ends without any task changing, so it is looked at too. */
  readonly updatingServiceIds?: readonly string[];
}

/**
 * The fingerprint: what changes whenever a judgement of convergence.ts can change other than by time — tasks
 * (id, node, desired state, state, error), nodes (status, availability, manager status), services (mode, replicas,
 * image) and the update state of the services in an update — read with three cheap list calls, never inspecting
 * every task. Relative times ("2 seconds ago") are cut off. A change it misses (e.g. a spec change that moves no
 * task) is seen at the next wake-up or after maxWaitMs: slower, never wrong, since every answer is a full snapshot.
 */
const WATCH_FINGERPRINT = [
  'fingerprint() {',
  '  {',
  "    timeout 10 docker node ls --format '{{.ID}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'",
  `    timeout 10 docker service ls --format '{{.ID}} {{.Mode}} {{.Replicas}} {{.Image}}' | tee "$EC2SWARM_TMP/wsvc"`,
  // CurrentState is "Running 2 seconds ago": only its first word is kept (after a tab, as the last field).
  `    cut -d' ' -f1 "$EC2SWARM_TMP/wsvc" | xargs -r timeout 10 docker service ps --no-trunc --no-resolve --format '{{.ID}} {{.Node}} {{.DesiredState}} {{.Error}}\t{{.CurrentState}}' \\`,
  `      | awk -F'\\t' '{ s = $NF; sub(/ .*/, "", s); sub(/\\t[^\\t]*$/, ""); print $0 " " s }'`,
  '    if [ "${#updating[@]}" -gt 0 ]; then',
  `      timeout 10 docker service inspect --format '{{.ID}} {{.Version.Index}}{{if .UpdateStatus}} {{.UpdateStatus.State}}{{end}}' "\${updating[@]}" || true`,
  '    fi',
  '  } 2>/dev/null | md5sum | cut -c1-32',
  '}',
].join('\n');

function watchLoop(w: WatchOptions): string[] {
  if (w.since !== undefined && !FINGERPRINT_RE.test(w.since)) throw new Error(`not a state fingerprint: ${w.since}`);
  if (w.wakeAtMs !== undefined && !(Number.isSafeInteger(w.wakeAtMs) && w.wakeAtMs > 0)) throw new Error(`bad wake-up time: ${w.wakeAtMs}`);
  if (!Number.isSafeInteger(w.maxWaitMs) || w.maxWaitMs < 0) throw new Error(`bad wait bound: ${w.maxWaitMs}`);
  const ids = (w.updatingServiceIds ?? []).slice(0, MAX_WATCHED_UPDATES);
  for (const id of ids) if (!SERVICE_ID_RE.test(id)) throw new Error(`not a service id: ${id}`);
  return [
    `since=${sh`${w.since ?? ''}`}`,
    `max_wait_ms=${sh`${w.maxWaitMs}`}`,
    `wake_ms=${sh`${w.wakeAtMs ?? 0}`}`,
    `updating=(${sh`${ids}`})`,
    WATCH_FINGERPRINT,
    'now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }',
    'end_ms=$(( $(now_ms) + max_wait_ms ))',
    'if [ "$wake_ms" -gt 0 ] && [ "$wake_ms" -lt "$end_ms" ]; then end_ms=$wake_ms; fi',
    // Also bounded by a count of steps, should the clock stand still or jump back.
    `steps=$(( max_wait_ms / ${WATCH_STEP_MS} + 1 ))`,
    'while :; do',
    '  fp=$(fingerprint) || fp=unavailable',
    '  [ "$fp" = "$since" ] || break',
    '  left=$(( end_ms - $(now_ms) ))',
    '  steps=$(( steps - 1 ))',
    '  if [ "$left" -le 0 ] || [ "$steps" -lt 0 ]; then break; fi',
    `  [ "$left" -le ${WATCH_STEP_MS} ] || left=${WATCH_STEP_MS}`,
    // Up to the wake-up exactly, so a stability window ending between two looks costs nothing.
    '  sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"',
    'done',
  ];
}

/**
 * The state query. With `watch`, the manager first waits for a change (watchLoop) and the header carries the
 * fingerprint of the state it saw before the snapshot (so a change in between only makes the next wait end at once).
 */
export function buildQueryScript(pageChars = PAGE_CHARS, watch?: WatchOptions): string {
  const fpWord = watch ? ' $fp' : '';
  return script(
    ...(watch ? watchLoop(watch) : []),
    `state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null) || { echo '${STATE_MAGIC} no-docker'; exit 0; }`,
    `if [ "$state" != "active true" ]; then echo "${STATE_MAGIC} $state"; exit 0; fi`,
    // A manager without a leader still says "active true"; its manager API refuses (or hangs: bounded) instead.
    `if ! timeout 60 docker node ls -q > /dev/null 2> "$EC2SWARM_TMP/err"; then`,
    `  if grep -q 'does not have a leader' "$EC2SWARM_TMP/err"; then echo "${STATE_MAGIC} ${NO_QUORUM_STATE}"; exit 0; fi`,
    `  cat "$EC2SWARM_TMP/err" >&2; echo 'docker node ls failed or did not answer within 60 s' >&2; exit 1`,
    'fi',
    `out="$EC2SWARM_TMP/out"`,
    `docker service ls -q > "$EC2SWARM_TMP/ids"`,
    `xargs -r docker service inspect --format ${sh`${SERVICE_T}`} < "$EC2SWARM_TMP/ids" > "$EC2SWARM_TMP/svc"`,
    `: > "$EC2SWARM_TMP/tasks"`,
    `if [ -s "$EC2SWARM_TMP/ids" ]; then`,
    `  xargs docker service ps --no-trunc --format '{{.ID}} {{.Name}} {{.DesiredState}} {{.CurrentState}}' < "$EC2SWARM_TMP/ids" | ${SELECT_TASKS} \\`,
    `    | xargs -r docker inspect --type task --format ${sh`${TASK_T}`} > "$EC2SWARM_TMP/tasks"`,
    `fi`,
    '{',
    // The manager's clock, read after the tasks: a task's age is never overstated.
    `  echo '#now'`,
    `  date +%s%N`,
    `  echo '#nodes'`,
    `  docker node ls -q | xargs -r docker node inspect --format ${sh`${NODE_T}`}`,
    `  echo '#services'`,
    `  ${SERVICES_AWK} "$EC2SWARM_TMP/svc"`,
    `  echo '#replicas'`,
    `  docker service ls --format ${sh`${REPLICAS_T}`}`,
    `  echo '#tasks'`,
    `  ${TASKS_AWK} "$EC2SWARM_TMP/svc" "$EC2SWARM_TMP/tasks"`,
    `  echo '#end'`,
    `} | gzip -c | base64 -w0 > "$out"`,
    `total=$(wc -c < "$out")`,
    `if [ "$total" -le ${pageChars} ]; then echo "${QUERY_MAGIC} - $total${fpWord}"; cat "$out"; echo; exit 0; fi`,
    // Too big for one page: keep the snapshot for the page calls (same instant for every page).
    `dir="${SNAPSHOT_DIR}"`,
    'mkdir -p "$dir" && chmod 700 "$dir"',
    `find "$dir" -maxdepth 1 -name 'q.*' -mmin +10 -delete 2>/dev/null || true`,
    'snap=$(mktemp "$dir/q.XXXXXXXXXX")',
    'mv -f "$out" "$snap"',
    `echo "${QUERY_MAGIC} \${snap##*/} $total${fpWord}"`,
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
