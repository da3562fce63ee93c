#!/bin/bash
# ec2-swarm worker: wait for the worker token and manager address in SSM (backoff, bounded by SWARM_JOIN_TIMEOUT_S),
# then join through the Docker Engine API so the token is never in argv. Already in this swarm → success.
# Exit 0 only when this node is an active member of the manager's swarm: the exit code becomes the signal.
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

: "${SWARM_JOIN_TIMEOUT_S:=900}"
need SWARM_JOIN_TIMEOUT_S '^[1-9][0-9]{0,4}$'
DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
need DOCKER_HOST '^unix:///[A-Za-z0-9_./-]+$'
SOCK=${DOCKER_HOST#unix://}

prepare_node
DEADLINE=$((SECONDS + SWARM_JOIN_TIMEOUT_S))
ERRORS=0
MAX_ERRORS=20
WHY="nothing tried yet"

# Functions below run in `if`/`||` context, where errexit is off: every failure is handled explicitly.

# get_param NAME VAR: 0 = value in VAR, 2 = not published yet, 1 = other error (logged).
get_param() {
  local out
  if out=$(aws_ssm get-parameter --name "$1" --with-decryption --query Parameter.Value --output text 2>"$WORK/err"); then
    printf -v "$2" '%s' "$out"
    return 0
  fi
  grep -q ParameterNotFound "$WORK/err" && return 2
  log "reading $1 failed: $(redact <"$WORK/err")"
  return 1
}

# fetch_params: sets TOKEN and MANAGER_ADDR, both validated.
fetch_params() {
  local rc=0
  get_param "$SWARM_PARAM_WORKER_TOKEN" TOKEN || rc=$?
  [ "$rc" -ne 0 ] || get_param "$SWARM_PARAM_MANAGER_ADDRESS" MANAGER_ADDR || rc=$?
  case "$rc" in
    0) ERRORS=0 ;;
    2) ERRORS=0; WHY="the manager has not published the join token and address yet"; log "waiting: $WHY"; return 1 ;;
    *)
      ERRORS=$((ERRORS + 1))
      [ "$ERRORS" -lt "$MAX_ERRORS" ] || die "reading the join parameters failed $ERRORS times in a row"
      WHY="reading the join parameters failed"
      return 1
      ;;
  esac
  is "$TOKEN" "$RE_TOKEN" || die "$SWARM_PARAM_WORKER_TOKEN does not hold a worker join token"
  is "$MANAGER_ADDR" "$RE_ADDR" || die "$SWARM_PARAM_MANAGER_ADDRESS is not an IPv4 address:port"
}

node_state() { swarm_info '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }
# in_this_swarm: the published manager is one of the managers this node knows.
in_this_swarm() {
  local addrs
  addrs=$(swarm_info '{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}') || return 1
  [[ " $addrs " == *" $MANAGER_ADDR "* ]]
}

# try_join: 0 once this node is active in the manager's swarm; dies if it belongs to another swarm.
try_join() {
  local state code
  state=$(node_state)
  case "$state" in
    active)
      in_this_swarm && { log "already part of the swarm managed by $MANAGER_ADDR"; return 0; }
      die "this node is active in another swarm (its managers do not include $MANAGER_ADDR); run 'docker swarm leave' first"
      ;;
    inactive) ;;
    pending) WHY="a join is still in progress"; return 1 ;;
    *) WHY="swarm state is '$state'"; return 1 ;;
  esac
  log "joining the swarm at $MANAGER_ADDR, advertising $PRIVATE_IP"
  # All values are validated (no quotes or backslashes), so plain interpolation is valid JSON.
  printf '{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"%s","RemoteAddrs":["%s"],"JoinToken":"%s"}' \
    "$PRIVATE_IP" "$MANAGER_ADDR" "$TOKEN" >"$WORK/join.json"
  code=$(curl -sS --max-time 90 --unix-socket "$SOCK" -o "$WORK/resp" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary "@$WORK/join.json" http://localhost/v1.41/swarm/join) || code=000
  rm -f "$WORK/join.json"
  # 503 "already part of a swarm" may mean an earlier attempt succeeded late: the state decides.
  if [ "$code" = 200 ] || [ "$code" = 503 ]; then
    [ "$(node_state)" = active ] && in_this_swarm && { log "joined the swarm"; return 0; }
  fi
  WHY="join failed (HTTP $code): $(redact 2>/dev/null <"$WORK/resp" || true)"
  log "$WHY"
  return 1
}

# leave_on_shutdown: a systemd unit whose stop leaves the swarm (leave-on-shutdown.sh). After=docker.service makes
# shutdown stop it before docker; Wants, not Requires, so a docker restart does not stop it. Not fatal: the node has
# joined. Systemd as init is checked by /run/systemd/system (the lab hosts have systemctl but no systemd).
# Test overrides: SWARM_SYSTEMD_DIR (/etc/systemd/system), SWARM_SYSTEMD_RUN_DIR (/run/systemd/system).
leave_on_shutdown() {
  local dir=${SWARM_SYSTEMD_DIR:-/etc/systemd/system} unit=ec2-swarm-leave.service stop
  if ! command -v systemctl >/dev/null 2>&1 || [ ! -d "${SWARM_SYSTEMD_RUN_DIR:-/run/systemd/system}" ]; then
    log "no systemd: skipping leave-on-shutdown"
    return 0
  fi
  stop="$(cd "$(dirname "$0")" && pwd)/leave-on-shutdown.sh"
  if ! is "$stop" '^/[A-Za-z0-9_./-]+$' || [ ! -f "$stop" ]; then
    log "WARNING: no usable $stop: skipping leave-on-shutdown"
    return 0
  fi
  if (umask 022 && printf '%s\n' '[Unit]' 'Description=ec2-swarm: leave the swarm on shutdown' \
    'Wants=docker.service' 'After=docker.service' '[Service]' 'Type=oneshot' 'RemainAfterExit=yes' \
    'ExecStart=/bin/true' "ExecStop=/bin/bash $stop" 'TimeoutStopSec=90' '[Install]' 'WantedBy=multi-user.target' \
    >"$dir/$unit") && systemctl daemon-reload >&2 && systemctl enable --now "$unit" >&2; then
    log "installed $unit: this worker leaves the swarm on shutdown"
  else
    log "WARNING: could not install $unit: this worker will not leave the swarm on shutdown"
  fi
}

delay=$SWARM_BACKOFF_BASE_S
until fetch_params && try_join; do
  sleep_within "$delay" "$DEADLINE" || die "gave up after ${SWARM_JOIN_TIMEOUT_S}s (SWARM_JOIN_TIMEOUT_S): $WHY"
  delay=$(next_delay "$delay")
done
leave_on_shutdown
log "worker ready"
