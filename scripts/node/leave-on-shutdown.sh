#!/bin/bash
# ec2-swarm: ExecStop of ec2-swarm-leave.service, which worker.sh installs. Ordered After=docker.service, it is stopped
# before docker at shutdown, so a terminated or replaced worker leaves while dockerd still runs and its tasks move at
# once. On a reboot it stays: user-data does not run again to re-join. Bounded by SWARM_LEAVE_TIMEOUT_S (60).
set -euo pipefail
log() { printf 'ec2-swarm: %s\n' "$*" >&2; }
jobs=$(systemctl list-jobs 2>/dev/null || true)
if [[ $jobs =~ reboot\.target[[:space:]]+start ]]; then log "rebooting: staying in the swarm"; exit 0; fi
if out=$(timeout "${SWARM_LEAVE_TIMEOUT_S:-60}" docker swarm leave 2>&1); then log "$out"; exit 0; fi
if [[ $out == *"not part of a swarm"* ]]; then log "not in a swarm: nothing to leave"; exit 0; fi
log "docker swarm leave failed: ${out:0:600}"
exit 1
