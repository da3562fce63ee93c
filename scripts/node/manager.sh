#!/bin/bash
# shellcheck disable=SC2015 # A && B || die: B failing should die too
# ec2-swarm manager. Exactly one swarm, ever: the manager that creates init-lock (create-if-absent) may run
# `swarm init`, and only while no cluster-id is recorded or no recorded manager answers; every other manager joins
# with the manager token through manager-addresses. Then it publishes its view of the managers and starts the
# reconciler. Exit 0 only when this node is a manager of the cluster's swarm: the exit code becomes the signal.
# `manager.sh --rotate-tokens` (ops, through SSM on a healthy manager): rotate both join tokens and publish them.
# Nothing is printed: the new tokens reach only Parameter Store.
# shellcheck source-path=SCRIPTDIR source=common.sh
case $0 in */*) . "${0%/*}/common.sh" ;; *) . ./common.sh ;; esac

: "${SWARM_LEADER_TRIES:=8}"
need SWARM_LEADER_TRIES '^[1-9][0-9]?$'
has_leader() { timeout 30 docker node ls -q >/dev/null 2>&1; }

# publish_token ROLE NAME: `join-token -q` prints only the token; it is captured, never echoed.
publish_token() {
  local token
  token=$(timeout 30 docker swarm join-token -q "$1") || die "could not read the $1 join token"
  is "$token" "$RE_TOKEN" || die "the $1 join token has an unexpected format"
  retry 5 put_param "$2" SecureString "$token" || die "could not write $2"
}
case "${1:-}" in
  '') ;;
  --rotate-tokens)
    load_swarm_env
    load_instance_facts
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    [ "$(swarm_info '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ] || die "this node is not a swarm manager"
    retry 5 get_param "$P_CLUSTER_ID" recorded || die "could not read $P_CLUSTER_ID"
    [ "$(swarm_info '{{.Swarm.Cluster.ID}}')" = "$recorded" ] || die "this node does not manage the cluster's swarm $recorded"
    # Done means observed: each token changed, and its parameter, read back, holds the swarm's current one.
    # Tokens stay in shell variables (`[` is a builtin: no argv), never in output.
    for role in worker manager; do
      old=$(timeout 30 docker swarm join-token -q "$role") || die "could not read the $role join token"
      timeout 60 docker swarm join-token --rotate -q "$role" >/dev/null || die "rotating the $role token failed"
      param=$P_WORKER_TOKEN
      [ "$role" = manager ] && param=$P_MANAGER_TOKEN
      publish_token "$role" "$param"
      new=$(timeout 30 docker swarm join-token -q "$role") || die "could not read the new $role join token"
      [ "$new" != "$old" ] || die "the $role join token did not change"
      retry 5 get_param "$param" published || die "could not read back $param"
      [ "$published" = "$new" ] || die "$param does not hold the swarm's current $role token"
      log "$role join token rotated; $param holds the new one"
    done
    old='' new='' published=''
    exit 0
    ;;
  *) echo "usage: manager.sh [--rotate-tokens]" >&2; exit 2 ;;
esac

prepare_node manager

init_swarm() {
  log "initialising the swarm, advertising $PRIVATE_IP, overlay pool $SWARM_ADDR_POOL/$SWARM_ADDR_POOL_MASK"
  [ "$state" = inactive ] || timeout 60 docker swarm leave --force >/dev/null 2>&1 || true
  # stdout names the join command with its token: discard it.
  timeout 120 docker swarm init --advertise-addr "$PRIVATE_IP" --default-addr-pool "$SWARM_ADDR_POOL" \
    --default-addr-pool-mask-length "$SWARM_ADDR_POOL_MASK" >/dev/null || die "docker swarm init failed"
  INITIALISED=1
}

# elect: 0 when this instance holds init-lock (created it now, or at an earlier boot).
elect() {
  local rc=0 holder
  put_new "$P_LOCK" "$INSTANCE_ID" || rc=$?
  [ "$rc" -eq 0 ] && { log "won the init lock"; return 0; }
  [ "$rc" -eq 2 ] || die "could not take part in the election (writing $P_LOCK failed)"
  retry 5 get_param "$P_LOCK" holder || die "could not read $P_LOCK"
  [ "$holder" = "$INSTANCE_ID" ] && { log "holding the init lock since an earlier boot"; return 0; }
  log "the init lock is held by $holder: joining as a manager"
  return 1
}

INITIALISED=0 recorded=''
state=$(node_state)
# The engine label is set before the election (a manager that cannot be labelled never holds init-lock) and so
# before init or join: managers see it at join.
wait "$LABEL_JOB" || die "the engine label is not set"
if [ "$state" = active ]; then
  [ "$(swarm_info '{{.Swarm.ControlAvailable}}')" = true ] ||
    die "this node is a worker of another swarm; refusing to initialise (run 'docker swarm leave' first)"
  log "already a swarm manager"
  # At a boot during a lost majority there is no leader to answer (tokens, node list): keep the reconciler
  # running (it acts only once this node leads) and say why, instead of dying without it.
  if ! retry "$SWARM_LEADER_TRIES" has_leader; then
    . "$SWARM_HOME/reconcile.sh" --functions
    start_reconciler
    die "the swarm has no leader: fewer than a majority of its managers are up (README runbook: a majority of managers is lost)"
  fi
elif [ "$state" != inactive ] && [ "$state" != pending ]; then
  die "unexpected swarm state '$state' (expected inactive, pending or active)"
else
  # cluster-id is read alongside the election, not after it: it decides only for the winner, and only a lock holder's
  # swarm can be recorded, so the value is the one a read after winning would see. One round trip off the way to init.
  { rc=0; get_param "$P_CLUSTER_ID" recorded || rc=$?; printf '%s %s\n' "$rc" "$recorded" >"$WORK/cluster-id"; } &
  reader=$!
  if elect; then
    wait "$reader" || true
    read -r rc recorded <"$WORK/cluster-id" || die "could not read $P_CLUSTER_ID: refusing to initialise without knowing whether a swarm exists"
    if [ "$rc" -eq 2 ]; then
      init_swarm
    elif [ "$rc" -ne 0 ]; then
      die "could not read $P_CLUSTER_ID: refusing to initialise without knowing whether a swarm exists"
    else
      # A swarm was recorded: join it if any recorded manager answers; initialise only when none does.
      fetch_join manager || die "swarm $recorded is recorded but its manager token or addresses are not: $WHY"
      rc=0
      join_any "$ADDRS" "$TOKEN" || rc=$?
      case "$rc" in
        0) ;;
        1) die "a recorded manager of swarm $recorded answered but refused this node: $WHY" ;;
        *) log "no recorded manager of swarm $recorded answers ($ADDRS): starting a new swarm"; init_swarm ;;
      esac
    fi
  else
    wait "$reader" || true
    join_loop manager
  fi
fi

# One `docker info` for the state, the role and the cluster id: each call is a CLI start on the way to publication.
v=$(swarm_info '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Cluster.ID}}') &&
  [[ $v =~ ^active\ true\ ([a-z0-9]{10,40})$ ]] || die "this node is not a manager of the swarm after init/join"
cluster=${BASH_REMATCH[1]}

. "$SWARM_HOME/reconcile.sh" --functions
if [ "$INITIALISED" = 1 ]; then
  # A new swarm: what the workers wait for (worker token, addresses) and the record that it exists (cluster-id),
  # each its own request at once, then the manager token. Its only manager is this node, at the address it
  # advertised (no `docker node ls`/`inspect` on the way; the leader's reconciler republishes the list every pass).
  publish_token worker "$P_WORKER_TOKEN" & p1=$!
  publish_addresses "$PRIVATE_IP:2377" new & p2=$!
  retry 5 put_param "$P_CLUSTER_ID" String "$cluster" & p3=$!
  wait "$p1" || die "could not publish the worker token"
  wait "$p2" || die "could not publish $P_ADDRS"
  wait "$p3" || die "could not record $P_CLUSTER_ID"
  publish_token manager "$P_MANAGER_TOKEN"
else
  # cluster-id: written once by the initialising manager; every other manager checks it belongs to that swarm.
  rc=0
  put_new "$P_CLUSTER_ID" "$cluster" || rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || die "could not record $P_CLUSTER_ID"
  retry 5 get_param "$P_CLUSTER_ID" recorded || die "could not read $P_CLUSTER_ID"
  [ "$recorded" = "$cluster" ] || die "this node manages swarm $cluster, but the cluster's swarm is $recorded"
  # Tokens: re-published by a manager that was already in the swarm (repairs a lost write). A manager that just
  # joined used the current manager token: nothing to publish.
  if [ "$state" = active ]; then
    publish_token worker "$P_WORKER_TOKEN"
    publish_token manager "$P_MANAGER_TOKEN"
  fi
  publish_addresses "$(manager_addresses)" || die "could not publish $P_ADDRS"
fi
start_reconciler
log "manager ready"
