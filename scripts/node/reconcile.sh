#!/bin/bash
# shellcheck disable=SC2015 # A && B || die: B failing should die too
# ec2-swarm reconciler (managers; acts only on the leader). One pass: observe (swarm nodes + Auto Scaling + EC2),
# decide (a pure function of the two observations), act (idempotent docker/aws calls). Usage:
#   reconcile.sh --once | --loop (every SWARM_RECONCILE_S) | --decide NODES.tsv INSTANCES.tsv (decide only)
# Sourced with --functions by manager.sh for manager_addresses, publish_addresses and start_reconciler.
# Observations (tab-separated, one line per node / per instance; "-" when not known):
#   nodes:     node-id role status availability reachability leader manager-addr instance-id running-tasks
#   instances: instance-id group lifecycle-state ec2-state (ec2-state only for Down nodes; "gone" = not found)
# Actions: drain NODE | demote NODE | complete INSTANCE GROUP | rm NODE | publish ADDRS | wait NODE REASON

# decide NODES INSTANCES: see docs/round2-contracts.md. Never touches a node without an instance label, never removes
# a node that is not Down, and changes the managers only while the reachable ones keep a majority.
decide() {
  awk -F '\t' -v OFS='\t' '
    FNR == NR { n++; id[n] = $1; role[n] = $2; st[n] = $3; av[n] = $4; reach[n] = $5; addr[n] = $7; inst[n] = $8; tasks[n] = $9; next }
    { grp[$1] = $2; lc[$1] = $3; ec2[$1] = $4 }
    END {
      for (i = 1; i <= n; i++) {
        if (role[i] == "manager") { N++; if (reach[i] == "reachable") { R++; pub[++p] = addr[i] } }
        if (st[i] == "ready" && inst[i] ~ /^i-/) live[inst[i]]++
      }
      for (i = 1; i <= n; i++) {
        x = inst[i]
        if (x !~ /^i-[0-9a-f]+$/) continue
        if (lc[x] == "Terminating:Wait") {
          if (st[i] != "down" && av[i] != "drain") { print "drain", id[i]; continue }
          if (role[i] == "manager") {
            up = (reach[i] == "reachable")
            # A demotion needs a majority now and leaves one among the managers that remain.
            if (2 * R > N && 2 * (R - up) > N - 1) { print "demote", id[i]; N--; R -= up }
            else print "wait", id[i], "demoting this terminating manager would lose quorum"
            continue
          }
          if (st[i] == "down" || tasks[i] == "0") print "complete", x, grp[x]
          else print "wait", id[i], "drained; " tasks[i] " task(s) still running"
          continue
        }
        # Prune: Down, and its instance is gone (or another live node carries its identity: a rejoin).
        if (st[i] == "down" && (ec2[x] == "terminated" || ec2[x] == "gone" || (x in live))) {
          if (role[i] != "manager") { print "rm", id[i]; continue }
          up = (reach[i] == "reachable")
          if (2 * R > N && 2 * (R - up) > N - 1) { print "demote", id[i]; N--; R -= up }
          else print "wait", id[i], "removing this Down manager would lose quorum"
        }
      }
      for (i = 2; i <= p; i++) for (j = i; j > 1 && pub[j - 1] > pub[j]; j--) { t = pub[j]; pub[j] = pub[j - 1]; pub[j - 1] = t }
      s = ""
      for (i = 1; i <= p; i++) s = s (i > 1 ? "," : "") pub[i]
      if (s != "") print "publish", s
    }' "$1" "$2"
}
if [ "${1:-}" = --decide ]; then
  [ $# -eq 3 ] && [ -r "$2" ] && [ -r "$3" ] || { echo "usage: reconcile.sh --decide NODES INSTANCES" >&2; exit 2; }
  decide "$2" "$3"
  exit
fi

if [ "${1:-}" != --functions ]; then
  case "${1:-}" in --once | --loop | --stop) ;; *) echo "usage: reconcile.sh --once | --loop | --stop | --decide NODES INSTANCES" >&2; exit 2 ;; esac
  # shellcheck source-path=SCRIPTDIR source=common.sh
  case $0 in */*) . "${0%/*}/common.sh" ;; *) . ./common.sh ;; esac
  load_swarm_env
  [ "$1" = --stop ] || load_instance_facts
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi

dk() { timeout 30 docker "$@"; }
RE_NODE='^[a-z0-9]{25}$'
# manager_addresses: the reachable managers' addresses, sorted, comma-separated.
manager_addresses() {
  local ids
  ids=$(dk node ls -q --filter role=manager) || return 1
  # shellcheck disable=SC2086 # ids are words
  dk node inspect $ids --format '{{with .ManagerStatus}}{{.Reachability}} {{.Addr}}{{end}}' |
    awk '$1 == "reachable" { print $2 }' | sort | awk '{ s = s (NR > 1 ? "," : "") $0 } END { print s }'
}
# publish_addresses LIST [new]: writes manager-addresses only when it changed ("new": a swarm just initialised, any
# older list is stale: no read first). Managers that join concurrently can overwrite each other's additions; the
# leader's reconciler republishes from the swarm every pass, which repairs it.
publish_addresses() {
  local current=''
  is "$1" "$RE_ADDRS" || { log "not publishing an invalid manager list '$1'"; return 1; }
  [ "${2:-}" = new ] || get_param "$P_ADDRS" current || true
  [ "$current" = "$1" ] && return 0
  put_param "$P_ADDRS" String "$1" && log "manager-addresses: $1"
}
start_reconciler() {
  local unit=ec2-swarm-reconciler.service pidf=$RUN_DIR/ec2-swarm-reconciler.pid pid
  if systemd_is_init; then
    (umask 022 && printf '%s\n' '[Unit]' 'Description=ec2-swarm reconciler' 'Wants=docker.service' 'After=docker.service' \
      '[Service]' "ExecStart=/bin/bash $SWARM_HOME/reconcile.sh --loop" 'Restart=always' 'RestartSec=10' \
      '[Install]' 'WantedBy=multi-user.target' >"${SWARM_SYSTEMD_DIR:-/etc/systemd/system}/$unit") &&
      systemctl daemon-reload >&2 && systemctl enable "$unit" >&2 && systemctl restart "$unit" >&2 ||
      { log "WARNING: could not start $unit"; return 0; }
  else
    pid=$(cat "$pidf" 2>/dev/null) || true
    if is "$pid" '^[1-9][0-9]{0,9}$' && grep -qa reconcile.sh "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" || true; fi
    /bin/bash "$SWARM_HOME/reconcile.sh" --loop </dev/null >>"$SWARM_HOME/reconciler.log" 2>&1 &
    echo "$!" >"$pidf"
  fi
  log "reconciler started"
}
# stop_reconciler: before a teardown's leave. The swarm goes away on purpose: a pass still running must not republish
# manager-addresses after the teardown deleted it (docs/design.md, teardown). The per-boot hook starts it again.
stop_reconciler() {
  local pidf=$RUN_DIR/ec2-swarm-reconciler.pid pid
  if systemd_is_init; then
    systemctl stop ec2-swarm-reconciler.service >&2 || { log "could not stop ec2-swarm-reconciler.service"; return 1; }
  else
    pid=$(cat "$pidf" 2>/dev/null) || true
    if is "$pid" '^[1-9][0-9]{0,9}$' && grep -qa reconcile.sh "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" || { log "could not stop the reconciler (PID $pid)"; return 1; }
    fi
    rm -f "$pidf"
  fi
  log "reconciler stopped"
}
[ "${1:-}" = --functions ] && return 0

# observe: $WORK/nodes.tsv and $WORK/instances.tsv. 10 when this node is not the leader; 1 when an observation failed.
observe() {
  local ids line f tasks self
  self=$(swarm_info '{{.Swarm.NodeID}}') && [ -n "$self" ] || { log "docker info did not answer"; return 1; }
  [ "$(swarm_info '{{.Swarm.ControlAvailable}}')" = true ] || return 10
  ids=$(dk node ls -q) || { log "docker node ls failed"; return 1; }
  # shellcheck disable=SC2086
  dk node inspect $ids --format '{{.ID}}{{"\t"}}{{.Spec.Role}}{{"\t"}}{{.Status.State}}{{"\t"}}{{.Spec.Availability}}{{"\t"}}{{with .ManagerStatus}}{{.Reachability}}{{"\t"}}{{.Leader}}{{"\t"}}{{.Addr}}{{else}}-{{"\t"}}-{{"\t"}}-{{end}}{{"\t"}}{{index .Description.Engine.Labels "ec2-swarm.instance-id"}}' >"$WORK/raw" || { log "docker node inspect failed"; return 1; }
  awk -F '\t' -v s="$self" '$1 == s && $6 == "true" { ok = 1 } END { exit !ok }' "$WORK/raw" || return 10
  : >"$WORK/nodes.tsv"
  while IFS= read -r line; do
    IFS=$'\t' read -ra f <<<"$line"
    tasks=-
    if [ "${f[2]}" = ready ] && [ "${f[3]}" = drain ] && is "${f[0]}" "$RE_NODE"; then
      tasks=$(dk node ps "${f[0]}" --format '{{.CurrentState}}' | grep -c '^Running') || true
    fi
    printf '%s\t%s\n' "$line" "${tasks:-?}" >>"$WORK/nodes.tsv"
  done <"$WORK/raw"
  observe_instances
}
observe_instances() {
  local -a all=() down=()
  local i x g l
  mapfile -t all < <(awk -F '\t' '$8 ~ /^i-[0-9a-f]+$/ { print $8 }' "$WORK/nodes.tsv" | sort -u)
  mapfile -t down < <(awk -F '\t' '$3 == "down" && $8 ~ /^i-[0-9a-f]+$/ { print $8 }' "$WORK/nodes.tsv" | sort -u)
  declare -A GRP=() LC=() ST=()
  for ((i = 0; i < ${#all[@]}; i += 50)); do
    [ -n "$SWARM_MANAGER_GROUP$SWARM_WORKER_GROUP" ] || break
    aws_call autoscaling describe-auto-scaling-instances --instance-ids "${all[@]:i:50}" --output text \
      --query 'AutoScalingInstances[].[InstanceId,AutoScalingGroupName,LifecycleState]' >"$WORK/asg" 2>"$WORK/err" ||
      { log "describe-auto-scaling-instances failed: $(redact <"$WORK/err")"; return 1; }
    while IFS=$'\t' read -r x g l; do
      [ "$g" = "$SWARM_MANAGER_GROUP" ] || [ "$g" = "$SWARM_WORKER_GROUP" ] || continue
      GRP[$x]=$g LC[$x]=$l
    done <"$WORK/asg"
  done
  for x in "${down[@]}"; do
    if ST[$x]=$(aws_call ec2 describe-instances --instance-ids "$x" --query 'Reservations[].Instances[].State.Name' \
      --output text 2>"$WORK/err"); then
      is "${ST[$x]}" '^[a-z-]+$' || ST[$x]='?'
    elif grep -q InvalidInstanceID.NotFound "$WORK/err"; then ST[$x]=gone
    else ST[$x]='?'; log "describe-instances $x failed: $(redact <"$WORK/err")"
    fi
  done
  : >"$WORK/instances.tsv"
  for x in "${all[@]}"; do printf '%s\t%s\t%s\t%s\n' "$x" "${GRP[$x]:--}" "${LC[$x]:--}" "${ST[$x]:--}" >>"$WORK/instances.tsv"; done
}
# act: run each decided action; a failure is logged and retried at the next pass (every action is idempotent).
act() {
  local verb a b
  while IFS=$'\t' read -r verb a b; do
    case "$verb" in
      drain) is "$a" "$RE_NODE" && dk node update --availability drain "$a" >/dev/null && log "drained $a: its instance is terminating" ;;
      demote) is "$a" "$RE_NODE" && dk node demote "$a" >/dev/null && log "demoted $a" ;;
      rm) is "$a" "$RE_NODE" && dk node rm "$a" >/dev/null && log "removed $a: Down and its instance is gone" ;;
      complete)
        is "$a" "$RE_INSTANCE" && is "$b" "$RE_GROUP" && aws_call autoscaling complete-lifecycle-action \
          --lifecycle-hook-name "$SWARM_LIFECYCLE_HOOK" --auto-scaling-group-name "$b" --instance-id "$a" \
          --lifecycle-action-result CONTINUE >/dev/null && log "completed the lifecycle action of $a (drained)" ;;
      publish) publish_addresses "$a" ;;
      wait) log "waiting on $a: $b" ;;
      *) false ;;
    esac || log "WARNING: $verb $a $b failed"
  done
}
# refresh_ecr_auth: ECR tokens last 12 h, and a task started later pulls with the token in its service's spec.
# Every SWARM_ECR_REFRESH_S (6 h) the leader gives the services whose image is in the cluster's registry a fresh
# one from the credential helper; a change of the pull credentials alone restarts no running task (swarmkit).
ECR_REFRESHED=''
refresh_ecr_auth() {
  local name image n=0
  ecr_helper_ready || return 0
  [ -z "$ECR_REFRESHED" ] || [ $((SECONDS - ECR_REFRESHED)) -ge "${SWARM_ECR_REFRESH_S:-21600}" ] || return 0
  dk service ls --format '{{.Name}} {{.Image}}' >"$WORK/images" || return 1
  while read -r name image; do
    [[ "$image" == "$SWARM_ECR_REGISTRY/"* ]] && is "$name" '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' || continue
    if dk service update --detach --quiet --with-registry-auth "$name" >/dev/null 2>"$WORK/err"; then n=$((n + 1))
    else log "WARNING: refreshing the ECR credentials of $name failed: $(redact <"$WORK/err")"
    fi
  done <"$WORK/images"
  ECR_REFRESHED=$SECONDS
  log "ECR pull credentials refreshed for $n service(s)"
}
# pass: 0 done (or not the leader: nothing to do here), 3 the swarm or AWS did not answer.
pass() {
  local rc=0
  observe || rc=$?
  [ "$rc" -eq 10 ] && return 0
  [ "$rc" -eq 0 ] || return 3
  decide "$WORK/nodes.tsv" "$WORK/instances.tsv" >"$WORK/actions" && act <"$WORK/actions"
  refresh_ecr_auth || log "WARNING: could not list the services to refresh their ECR credentials"
}

[ "$1" = --stop ] && { stop_reconciler; exit; }
[ "$1" = --once ] && { pass; exit; }
log "reconciler running every ${SWARM_RECONCILE_S}s"
while :; do
  pass || true
  sleep "$SWARM_RECONCILE_S"
done
