# shellcheck shell=bash disable=SC2015,SC2034 # A && B || die is intended; variables are for the sourcing scripts
# ec2-swarm node helpers, sourced by the role scripts and reconcile.sh (docs/contracts.md, "Node scripts").
# Test overrides: SWARM_BACKOFF_BASE_S (1), SWARM_BACKOFF_MAX_S (30), SWARM_DOCKER_WAIT_S (120), SWARM_CFN_SIGNAL,
# AWS_EC2_METADATA_SERVICE_ENDPOINT, DOCKER_HOST, SWARM_DOCKER_CONFIG (/etc/docker/daemon.json),
# SWARM_DOCKER_PIDFILE (/var/run/docker.pid), SWARM_SYSTEMD_DIR, SWARM_SYSTEMD_RUN_DIR, SWARM_PER_BOOT_DIR, SWARM_RUN_DIR.
set -euo pipefail
umask 077 # temp files hold tokens
export AWS_PAGER=''
# Parameter expansion and builtins instead of dirname/date/awk/grep where it is as clear: each process adds to the boot.
case ${BASH_SOURCE[0]} in */*) SWARM_HOME=${BASH_SOURCE[0]%/*} ;; *) SWARM_HOME=. ;; esac
[[ $SWARM_HOME == /* ]] || SWARM_HOME=$PWD/$SWARM_HOME
SWARM_HOME=${SWARM_HOME%/.}

log() { TZ=UTC0 printf '%(%Y-%m-%dT%H:%M:%SZ)T ec2-swarm: %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# Text from outside (CLI, engine) passes through this before it is logged: tokens never reach a log.
redact() { sed -E 's/S[W]MTKN-[A-Za-z0-9-]*/<redacted>/g' | tr '\n' ' ' | head -c 600; }

RE_OCTET='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
RE_IPV4="^($RE_OCTET\\.){3}$RE_OCTET\$"
RE_ADDRS="^($RE_OCTET\\.){3}$RE_OCTET:[1-9][0-9]{0,4}(,($RE_OCTET\\.){3}$RE_OCTET:[1-9][0-9]{0,4})*\$"
RE_TOKEN='^S[W]MTKN-1-[0-9a-z]+-[0-9a-z]+$'
RE_INSTANCE='^i-[0-9a-f]{8}([0-9a-f]{9})?$'
RE_NUM='^[0-9]{1,5}(\.[0-9]{1,3})?$'
RE_GROUP='^[A-Za-z0-9._-]{1,255}$'
is() { [[ $1 =~ $2 ]]; }
need() { is "${!1:-}" "$2" || die "$1 is missing or invalid (must match $2)"; }

: "${SWARM_BACKOFF_BASE_S:=1}" "${SWARM_BACKOFF_MAX_S:=30}" "${SWARM_DOCKER_WAIT_S:=120}"
need SWARM_BACKOFF_BASE_S "$RE_NUM"
need SWARM_BACKOFF_MAX_S "$RE_NUM"
need SWARM_DOCKER_WAIT_S '^[0-9]{1,5}$'
RUN_DIR=${SWARM_RUN_DIR:-/run}
SYSTEMD_RUN_DIR=${SWARM_SYSTEMD_RUN_DIR:-/run/systemd/system}
systemd_is_init() { command -v systemctl >/dev/null 2>&1 && [ -d "$SYSTEMD_RUN_DIR" ]; }

# Delays are milliseconds in bash arithmetic (no awk per step); SWARM_BACKOFF_* are seconds with up to 3 decimals.
# to_ms VAR S: VAR = S seconds in milliseconds. sleep_ms MS: sleep that long.
to_ms() {
  local i=${2%%.*} f=000
  [[ $2 == *.* ]] && f=${2#*.}000
  printf -v "$1" '%d' $((10#$i * 1000 + 10#${f:0:3}))
}
sleep_ms() {
  local s
  printf -v s '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
  sleep "$s"
}
to_ms BACKOFF_BASE_MS "$SWARM_BACKOFF_BASE_S"
to_ms BACKOFF_MAX_MS "$SWARM_BACKOFF_MAX_S"
# next_delay VAR: VAR (ms) doubled, capped at SWARM_BACKOFF_MAX_S.
next_delay() { printf -v "$1" '%d' $((${!1} * 2 < BACKOFF_MAX_MS ? ${!1} * 2 : BACKOFF_MAX_MS)); }
# sleep_within MS DEADLINE: sleep MS milliseconds but not past DEADLINE (a $SECONDS value); fails once it has passed.
sleep_within() {
  local left=$((($2 - SECONDS) * 1000))
  [ "$left" -gt 0 ] || return 1
  sleep_ms $(($1 < left ? $1 : left))
}
# retry TRIES CMD...: run CMD until it succeeds, at most TRIES times, with exponential backoff.
retry() {
  local tries=$1 n=1 delay=$BACKOFF_BASE_MS
  shift
  until "$@"; do
    [ "$n" -lt "$tries" ] || { log "giving up after $n attempts: $1"; return 1; }
    log "attempt $n of $tries failed: $1; retrying in ${delay}ms"
    sleep_ms "$delay"
    next_delay delay
    n=$((n + 1))
  done
}

# --- instance metadata (IMDSv2 only) ---
IMDS=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
IMDS=${IMDS%/}
is "$IMDS" '^https?://[A-Za-z0-9.:-]+$' || die "AWS_EC2_METADATA_SERVICE_ENDPOINT is invalid"
imds_token() {
  curl -sSf --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 900' "$IMDS/latest/api/token"
}
imds_get() { curl -sSf --max-time 5 -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS/latest/meta-data/$1"; }
# load_instance_facts: sets INSTANCE_ID, PRIVATE_IP, REGION (each validated).
load_instance_facts() {
  IMDS_TOKEN=$(retry 6 imds_token) || die "instance metadata service did not answer at $IMDS"
  INSTANCE_ID=$(retry 6 imds_get instance-id) || die "could not read instance-id from metadata"
  PRIVATE_IP=$(retry 6 imds_get local-ipv4) || die "could not read local-ipv4 from metadata"
  REGION=$(retry 6 imds_get placement/region) || die "could not read placement/region from metadata"
  need INSTANCE_ID "$RE_INSTANCE"
  need PRIVATE_IP "$RE_IPV4"
  need REGION '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
  log "instance $INSTANCE_ID, private ip $PRIVATE_IP, region $REGION"
}

# --- environment from user-data (docs/round2-contracts.md, "Node environment"); node.env keeps it for later boots ---
ENV_VARS=(SWARM_CLUSTER SWARM_PARAM_PREFIX SWARM_KMS_KEY_ID SWARM_ADDR_POOL SWARM_ADDR_POOL_MASK SWARM_JOIN_TIMEOUT_S
  SWARM_MANAGER_GROUP SWARM_WORKER_GROUP SWARM_LIFECYCLE_HOOK SWARM_RECONCILE_S SWARM_ECR_REGISTRY)
load_swarm_env() {
  if [ -z "${SWARM_CLUSTER:-}" ] && [ -f "$SWARM_HOME/node.env" ]; then
    # shellcheck source=/dev/null # not first boot (per-boot hook, SSM Run Command): what the first boot saved
    . "$SWARM_HOME/node.env"
  fi
  : "${SWARM_KMS_KEY_ID:=}" "${SWARM_ADDR_POOL_MASK:=24}" "${SWARM_JOIN_TIMEOUT_S:=900}" "${SWARM_MANAGER_GROUP:=}"
  : "${SWARM_WORKER_GROUP:=}" "${SWARM_LIFECYCLE_HOOK:=ec2-swarm-drain}" "${SWARM_RECONCILE_S:=10}" "${SWARM_ADDR_POOL:=}"
  : "${SWARM_ECR_REGISTRY:=}"
  need SWARM_CLUSTER '^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$'
  need SWARM_PARAM_PREFIX '^(/[A-Za-z0-9_.-]{1,100}){1,10}$'
  need SWARM_KMS_KEY_ID '^([A-Za-z0-9:/_-]{1,300})?$'
  need SWARM_ADDR_POOL "^(($RE_OCTET\\.){3}$RE_OCTET/([89]|1[0-9]|2[0-8]))?\$"
  need SWARM_ADDR_POOL_MASK '^(1[6-9]|2[0-9])$'
  [ "${1:-}" != manager ] || need SWARM_ADDR_POOL '.' # init needs the overlay pool (never the VPC's range)
  need SWARM_JOIN_TIMEOUT_S '^[1-9][0-9]{0,4}$'
  need SWARM_MANAGER_GROUP "^([A-Za-z0-9._-]{1,255})?\$"
  need SWARM_WORKER_GROUP "^([A-Za-z0-9._-]{1,255})?\$"
  need SWARM_LIFECYCLE_HOOK "$RE_GROUP"
  need SWARM_RECONCILE_S '^[1-9][0-9]{0,3}$'
  need SWARM_ECR_REGISTRY '^([0-9]{12}\.dkr\.ecr\.[a-z]{2}(-[a-z]+)+-[0-9]{1,2}\.amazonaws\.com(\.cn)?)?$'
  P_LOCK=$SWARM_PARAM_PREFIX/init-lock P_CLUSTER_ID=$SWARM_PARAM_PREFIX/cluster-id
  P_WORKER_TOKEN=$SWARM_PARAM_PREFIX/worker-token P_MANAGER_TOKEN=$SWARM_PARAM_PREFIX/manager-token
  P_ADDRS=$SWARM_PARAM_PREFIX/manager-addresses
}

# --- bounded AWS CLI calls (the CLI's own retries could otherwise outlast our bounds) ---
aws_call() { timeout 90 aws "$@" --region "$REGION" --cli-connect-timeout 10 --cli-read-timeout 30; }
aws_ssm() { aws_call ssm "$@"; }
# Files per process ($BASHPID): the manager publishes several parameters at once.
# get_param NAME VAR: 0 = value in VAR, 2 = not published yet, 1 = other error (logged).
get_param() {
  local out err=$WORK/err.$BASHPID
  if out=$(aws_ssm get-parameter --name "$1" --with-decryption --query Parameter.Value --output text 2>"$err"); then
    printf -v "$2" '%s' "$out"
    return 0
  fi
  [[ $(<"$err") == *ParameterNotFound* ]] && return 2
  log "reading $1 failed: $(redact <"$err")"
  return 1
}
# get_pair NAME1 VAR1 NAME2 VAR2: both in one GetParameters call (each CLI call starts an interpreter: ~1 s of CPU).
# 0 = both in their VARs; 2 = either not published yet (the other may be set); 1 = error (logged; THROTTLED=1 when
# AWS asked to slow down).
THROTTLED=0
get_pair() {
  local name value n=0 rc=0 err=$WORK/err.$BASHPID
  THROTTLED=0
  # The values go to a 0600 file in $WORK (umask 077), never onto a command line.
  aws_ssm get-parameters --names "$1" "$3" --with-decryption --query 'Parameters[].[Name,Value]' --output text \
    >"$WORK/pair" 2>"$err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    rm -f "$WORK/pair"
    [[ $(<"$err") == *Throttling* ]] && THROTTLED=1
    log "reading $1 and $3 failed: $(redact <"$err")"
    return 1
  fi
  while IFS=$'\t' read -r name value; do
    case $name in
      "$1") printf -v "$2" '%s' "$value"; n=$((n | 1)) ;;
      "$3") printf -v "$4" '%s' "$value"; n=$((n | 2)) ;;
    esac
  done <"$WORK/pair"
  rm -f "$WORK/pair"
  [ "$n" -eq 3 ] || return 2
}
# put_param NAME TYPE VALUE [no-overwrite]: the value goes through a 0600 file, never onto a command line.
# Returns 0 written, 2 already exists (no-overwrite only), 1 failed (logged).
put_param() {
  local over=true key='' rc=0 in=$WORK/input.$BASHPID.json err=$WORK/err.$BASHPID
  [ "${4:-}" = no-overwrite ] && over=false
  [ "$2" = SecureString ] && [ -n "$SWARM_KMS_KEY_ID" ] && key=",\"KeyId\":\"$SWARM_KMS_KEY_ID\""
  # Name, value and key id are validated (no quotes or backslashes), so plain interpolation is valid JSON.
  printf '{"Name":"%s","Type":"%s","Value":"%s","Overwrite":%s%s}' "$1" "$2" "$3" "$over" "$key" >"$in"
  aws_ssm put-parameter --cli-input-json "file://$in" >/dev/null 2>"$err" || rc=$?
  rm -f "$in"
  [ "$rc" -eq 0 ] && { log "published $1 ($2)"; return 0; }
  [[ $(<"$err") == *ParameterAlreadyExists* ]] && return 2
  log "writing $1 failed: $(redact <"$err")"
  return 1
}

# put_new NAME VALUE: create-if-absent String, retried on errors. 0 created, 2 already exists, 1 failed.
put_new() {
  local n rc
  for n in 1 2 3 4 5; do
    rc=0
    put_param "$1" String "$2" no-overwrite || rc=$?
    [ "$rc" -ne 1 ] && return "$rc"
    sleep_ms "$BACKOFF_BASE_MS"
  done
  return 1
}

# --- software: install only what is missing (Amazon Linux 2023 has dnf; pre-baked hosts need nothing) ---
ensure_cfn_signal() {
  local cfn=${SWARM_CFN_SIGNAL:-/opt/aws/bin/cfn-signal}
  [ -x "$cfn" ] && return 0
  if command -v dnf >/dev/null 2>&1; then
    log "installing aws-cfn-bootstrap (cfn-signal)"
    retry 3 dnf_install aws-cfn-bootstrap || log "WARNING: could not install aws-cfn-bootstrap"
  else
    log "WARNING: $cfn is missing and dnf is not available: CloudFormation will not get a signal"
  fi
}
# dnf_install PKG: with the usual umask, so package scriptlets do not create root-only files.
dnf_install() { (umask 022 && dnf install -y "$1") >&2; }
docker_up() { timeout 20 docker info >/dev/null 2>&1; }
ensure_docker() {
  if ! command -v docker >/dev/null 2>&1; then
    command -v dnf >/dev/null 2>&1 || die "docker is missing and dnf is not available to install it"
    log "installing docker"
    retry 3 dnf_install docker || die "dnf install -y docker failed"
  fi
  docker_up && return 0
  if command -v systemctl >/dev/null 2>&1; then
    log "starting the docker service"
    systemctl enable --now docker >&2 || log "WARNING: systemctl enable --now docker failed"
  fi
  local deadline=$((SECONDS + SWARM_DOCKER_WAIT_S))
  until docker_up; do
    sleep_within 1000 "$deadline" || die "the docker daemon did not answer within ${SWARM_DOCKER_WAIT_S}s"
  done
  log "docker is up"
}
# merge_json FILE MODE KIND VALUE: one change to the JSON object in FILE (absent or empty: {}), every other key kept,
# written to a temp file of MODE (octal) and renamed over FILE. Refuses, naming the file, what is not the expected
# shape rather than guess. KIND cred-helper: credHelpers[VALUE] = "ecr-login". KIND label: VALUE (key=value) added
# to "labels", replacing a label with the same key.
merge_json() {
  python3 - "$@" <<'PY'
import json, os, sys
path, mode, kind, value = sys.argv[1], int(sys.argv[2], 8), sys.argv[3], sys.argv[4]
try:
    with open(path) as f:
        text = f.read()
except FileNotFoundError:
    text = ""
conf = json.loads(text) if text.strip() else {}
if kind == "cred-helper":
    if not isinstance(conf, dict) or not isinstance(conf.get("credHelpers", {}), dict):
        sys.exit(f"{path} is not a JSON object with a credHelpers object: fix it by hand")
    conf.setdefault("credHelpers", {})[value] = "ecr-login"
else:
    if not isinstance(conf, dict):
        sys.exit(f"{path} is not a JSON object: fix it by hand")
    labels = conf.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(l, str) for l in labels):
        sys.exit(f'{path}: "labels" is not a list of strings: fix it by hand')
    conf["labels"] = [l for l in labels if not l.startswith(value.split("=")[0] + "=")] + [value]
os.makedirs(os.path.dirname(path) or ".", mode=mode | (mode & 0o444) >> 2, exist_ok=True)
with open(path + ".ec2-swarm", "w") as f:
    json.dump(conf, f, indent=2)
os.chmod(path + ".ec2-swarm", mode)
os.replace(path + ".ec2-swarm", path)
PY
}

# --- ECR: the docker CLI gets pull credentials for the cluster's registry from the instance role, through the
# Amazon ECR credential helper (no token to expire; docs/design.md, "Private images"). Where the helper is neither
# installed nor installable (no dnf: the lab), nothing is configured: a credHelpers entry naming a missing helper
# would make every docker command for that registry fail. SWARM_DOCKER_CLIENT_CONFIG overrides the path for tests.
ECR_HELPER=docker-credential-ecr-login
ecr_helper_ready() { [ -n "$SWARM_ECR_REGISTRY" ] && command -v "$ECR_HELPER" >/dev/null 2>&1; }
ensure_ecr_helper() {
  [ -n "$SWARM_ECR_REGISTRY" ] || return 0
  if ! command -v "$ECR_HELPER" >/dev/null 2>&1 && command -v dnf >/dev/null 2>&1; then
    log "installing amazon-ecr-credential-helper"
    retry 3 dnf_install amazon-ecr-credential-helper || true
  fi
  if ! command -v "$ECR_HELPER" >/dev/null 2>&1; then
    log "WARNING: $ECR_HELPER is not available: images in $SWARM_ECR_REGISTRY can be deployed only with --registry-auth"
    return 0
  fi
  local conf=${SWARM_DOCKER_CLIENT_CONFIG:-/root/.docker/config.json}
  merge_json "$conf" 600 cred-helper "$SWARM_ECR_REGISTRY" || die "could not configure the ECR credential helper in $conf (see above)"
  log "docker pulls from $SWARM_ECR_REGISTRY use the ECR credential helper ($conf)"
}
swarm_info() { timeout 30 docker info --format "$1"; }
node_state() { swarm_info '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

# --- node identity: engine label ec2-swarm.instance-id, set before joining so managers see it at join ---
LABEL=ec2-swarm.instance-id
has_label() {
  local labels
  labels=$(swarm_info '{{json .Labels}}' 2>/dev/null) && [[ $labels == *"\"$LABEL=$INSTANCE_ID\""* ]]
}
ensure_instance_label() {
  has_label && return 0
  local conf=${SWARM_DOCKER_CONFIG:-/etc/docker/daemon.json} pidfile=${SWARM_DOCKER_PIDFILE:-/var/run/docker.pid} pid
  merge_json "$conf" 644 label "$LABEL=$INSTANCE_ID" || die "could not add the engine label to $conf (see above)"
  # dockerd reloads labels on SIGHUP (systemd's reload sends it).
  if systemd_is_init; then
    timeout 30 systemctl reload docker >&2 || die "systemctl reload docker failed"
  else
    { read -r pid <"$pidfile" || [ -n "${pid:-}" ]; } 2>/dev/null && is "$pid" '^[1-9][0-9]{0,9}$' || die "no dockerd pid in $pidfile to reload"
    kill -HUP "$pid" || die "could not signal dockerd ($pid) to reload $conf"
  fi
  local deadline=$((SECONDS + 30))
  until has_label; do
    sleep_within 500 "$deadline" || die "dockerd did not show the label $LABEL=$INSTANCE_ID after reloading $conf"
  done
  log "engine label $LABEL=$INSTANCE_ID set"
}

# --- joining through the Engine API (the token goes through a 0600 file, never argv) ---
DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
need DOCKER_HOST '^unix:///[A-Za-z0-9_./-]+$'
SOCK=${DOCKER_HOST#unix://}
# in_swarm_of ADDRS: this node's managers include one of ADDRS (comma list).
in_swarm_of() {
  local known a
  known=$(swarm_info '{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}') || return 1
  for a in ${1//,/ }; do [[ " $known " == *" $a "* ]] && return 0; done
  return 1
}
# join_via ADDR TOKEN: one join attempt. 0 joined; 1 refused by a manager (HTTP 4xx); 3 no answer.
# A join that times out leaves the engine retrying in the background (pending): leave, so the next address can be tried.
join_via() {
  local code
  printf '{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"%s","RemoteAddrs":["%s"],"JoinToken":"%s"}' \
    "$PRIVATE_IP" "$1" "$2" >"$WORK/join.json"
  log "joining the swarm through $1, advertising $PRIVATE_IP"
  code=$(curl -sS --max-time 90 --unix-socket "$SOCK" -o "$WORK/resp" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary "@$WORK/join.json" http://localhost/swarm/join) || code=000
  rm -f "$WORK/join.json"
  # 503 "already part of a swarm" may mean an earlier attempt succeeded late: the state decides.
  [ "$(node_state)" = active ] && in_swarm_of "$1" && { log "joined the swarm through $1"; return 0; }
  WHY="join through $1 failed (HTTP $code): $(redact 2>/dev/null <"$WORK/resp" || true)"
  log "$WHY"
  [ "$(node_state)" = pending ] && { timeout 60 docker swarm leave --force >/dev/null 2>&1 || true; }
  case "$code" in 4*) return 1 ;; *) return 3 ;; esac
}
# join_any ADDRS TOKEN: each address in order. 0 joined; 1 some manager answered but refused; 3 none answered.
join_any() {
  local a rc=3 r
  for a in ${1//,/ }; do
    r=0
    join_via "$a" "$2" || r=$?
    [ "$r" -eq 0 ] && return 0
    [ "$r" -eq 1 ] && rc=1
  done
  return "$rc"
}
# fetch_join ROLE: sets TOKEN and ADDRS (validated). 0 ok; 1 not yet / transient (WHY set); dies after MAX_ERRORS.
ERRORS=0
fetch_join() {
  local rc=0 param=$P_WORKER_TOKEN
  [ "$1" = manager ] && param=$P_MANAGER_TOKEN
  get_pair "$param" TOKEN "$P_ADDRS" ADDRS || rc=$?
  case "$rc" in
    0) ERRORS=0 ;;
    2) ERRORS=0; WHY="no manager has published the $1 token and manager-addresses yet"; log "waiting: $WHY"; return 1 ;;
    *)
      # Throttling is AWS asking a booting fleet to slow down, not a fault: join_loop backs off, the deadline bounds it.
      [ "$THROTTLED" = 1 ] && { WHY="Parameter Store throttled the reads"; return 1; }
      ERRORS=$((ERRORS + 1))
      [ "$ERRORS" -lt 20 ] || die "reading the join parameters failed $ERRORS times in a row"
      WHY="reading the join parameters failed"
      return 1
      ;;
  esac
  is "$TOKEN" "$RE_TOKEN" || die "$param does not hold a $1 join token"
  is "$ADDRS" "$RE_ADDRS" || die "$P_ADDRS is not a comma-separated list of IPv4 address:port"
}
# join_loop ROLE: fetch and join until joined, bounded by SWARM_JOIN_TIMEOUT_S. The manager publishes seconds after
# the workers start: poll often at first (delays x1.5 from SWARM_BACKOFF_BASE_S), then less (capped at
# SWARM_BACKOFF_MAX_S; doubling while throttled); +-20 % jitter spreads a fleet's calls.
join_loop() {
  local delay=$BACKOFF_BASE_MS deadline=$((SECONDS + SWARM_JOIN_TIMEOUT_S))
  WHY="nothing tried yet"
  until fetch_join "$1" && join_any "$ADDRS" "$TOKEN"; do
    sleep_within $((delay * (80 + RANDOM % 41) / 100)) "$deadline" || die "gave up after ${SWARM_JOIN_TIMEOUT_S}s (SWARM_JOIN_TIMEOUT_S): $WHY"
    if [ "$THROTTLED" = 1 ]; then next_delay delay; else delay=$((delay * 3 / 2 < BACKOFF_MAX_MS ? delay * 3 / 2 : BACKOFF_MAX_MS)); fi
  done
}

# --- per-boot hook: cloud-init runs it at every boot after the first; it re-runs the role script (boot.sh) ---
install_boot_hook() {
  local dir=${SWARM_PER_BOOT_DIR:-/var/lib/cloud/scripts/per-boot} v
  is "$SWARM_HOME" '^/[A-Za-z0-9_./-]+$' || die "the scripts' directory $SWARM_HOME is not a plain path"
  {
    for v in "${ENV_VARS[@]}"; do printf 'export %s=%q\n' "$v" "${!v}"; done
    printf 'export SWARM_ROLE=%s\n' "$1"
  } >"$SWARM_HOME/node.env"
  (umask 022 && mkdir -p "$dir") && printf '#!/bin/bash\nexec /bin/bash %s/boot.sh\n' "$SWARM_HOME" >"$dir/ec2-swarm-boot.sh" &&
    chmod 0700 "$dir/ec2-swarm-boot.sh" || die "could not install the per-boot hook in $dir"
}

# The start of every role script: cfn-signal first (so a failure below can still be signalled), the cluster's
# environment, instance facts, a running docker, and a private work directory ($WORK) removed on exit.
prepare_node() {
  ensure_cfn_signal
  load_swarm_env "$1"
  load_instance_facts
  ensure_docker
  ensure_ecr_helper
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  install_boot_hook "$1"
  ensure_instance_label
}
