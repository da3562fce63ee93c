#!/bin/bash
# ec2-swarm worker: wait for the worker token and manager-addresses in SSM (backoff, bounded by SWARM_JOIN_TIMEOUT_S),
# then join through the Docker Engine API (token in a 0600 file, never argv), trying each manager address in order.
# Already in this swarm → success. Exit 0 only when this node is an active member: the exit code becomes the signal.
# A plain stop keeps the membership; the node leaves only when its group terminates it (reconcile.sh drains it).
# shellcheck source-path=SCRIPTDIR source=common.sh
case $0 in */*) . "${0%/*}/common.sh" ;; *) . ./common.sh ;; esac

prepare_node worker
state=$(node_state)
# The engine label is set before the join: managers see it at join.
wait "$LABEL_JOB" || die "the engine label is not set"
if [ "$state" = active ]; then
  fetch_join worker || true # the addresses tell which swarm this node should be in
  [ -n "${ADDRS:-}" ] || retry 5 get_param "$P_ADDRS" ADDRS || die "could not read $P_ADDRS"
  is "$ADDRS" "$RE_ADDRS" || die "$P_ADDRS is not a comma-separated list of IPv4 address:port"
  in_swarm_of "$ADDRS" || die "this node is active in another swarm (its managers are none of $ADDRS); run 'docker swarm leave' first"
  log "already part of the swarm managed by $ADDRS"
else
  join_loop worker
fi
log "worker ready"
