# shellcheck shell=bash disable=SC2015,SC2034 # A && B || die is intended; variables are for the sourcing scripts
# ec2-swarm node helpers, sourced by the role scripts and reconcile.sh (docs/contracts.md, "Node scripts").
# Test overrides: SWARM_BACKOFF_BASE_S (1), SWARM_BACKOFF_MAX_S (30), SWARM_DOCKER_WAIT_S (120), SWARM_CFN_SIGNAL,
# AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_ENDPOINT_URL_SSM, AWS_CA_BUNDLE, DOCKER_HOST, SWARM_DOCKER_CONFIG (/etc/docker/daemon.json),
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
  IMDS_AT=$SECONDS
  INSTANCE_ID=$(retry 6 imds_get instance-id) || die "could not read instance-id from metadata"
  PRIVATE_IP=$(retry 6 imds_get local-ipv4) || die "could not read local-ipv4 from metadata"
  REGION=$(retry 6 imds_get placement/region) || die "could not read placement/region from metadata"
  need INSTANCE_ID "$RE_INSTANCE"
  need PRIVATE_IP "$RE_IPV4"
  need REGION '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
  log "instance $INSTANCE_ID, private ip $PRIVATE_IP, region $REGION"
  # Parameter Store's endpoint (the China partition has its own domain) and CA (decision 20).
  SSM_URL=https://ssm.$REGION.amazonaws.com/ SSM_CA=${AWS_CA_BUNDLE:-}
  [[ $REGION != cn-* ]] || SSM_URL=${SSM_URL%/}.cn/
  [ -z "${AWS_ENDPOINT_URL_SSM:-}" ] || SSM_URL=${AWS_ENDPOINT_URL_SSM%/}/
  is "$SSM_URL" '^https?://[A-Za-z0-9.:-]+/$' || die "AWS_ENDPOINT_URL_SSM is invalid"
  is "$SSM_CA" '^(/[A-Za-z0-9_./-]+)?$' || die "AWS_CA_BUNDLE is invalid"
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

# --- Parameter Store through its JSON API (docs/design.md, decision 20): curl signs each request (SigV4) with the
# instance role's credentials from IMDS, instead of an AWS CLI start (~1.3 CPU-s of Python each) on the boot path.
# The keys live only in a 0600 curl config file in $WORK (curl -K), request bodies in 0600 files there, answers in
# shell variables: none is ever on a command line. AWS_ENDPOINT_URL_SSM (the AWS SDKs' variable) and AWS_CA_BUNDLE
# (the AWS CLI's) are honoured: the tests and the lab set them. The reconciler's Auto Scaling/EC2 calls keep the CLI.
aws_call() { timeout 90 aws "$@" --region "$REGION" --cli-connect-timeout 10 --cli-read-timeout 30; }
# json_str TEXT KEY VAR: VAR = the string member KEY of the JSON TEXT. Only a value without quotes or escapes is
# read (every value the cluster writes, and AWS keys, are such); any other fails rather than be misread. In JSON
# text a quote inside a string is always escaped, so a key can never be matched inside a value.
json_str() {
  local re='"'"$2"'"[[:space:]]*:[[:space:]]*"([^"\]*)"'
  [[ $1 =~ $re ]] && printf -v "$3" '%s' "${BASH_REMATCH[1]}"
}
# A parameter value json_str cannot read (quotes, escapes): it fails every check the callers make on a value.
UNREADABLE='<unreadable>'
# ssm_auth: the instance role's credentials from IMDS into a curl config file of this process (SSM_CFG, 0600 by
# umask). IMDS offers new credentials at least 5 minutes before the old ones expire: they are read again after 4
# (the reconciler runs for days), with a new IMDS session token once the one in use is 10 minutes old.
SSM_AUTH_AT=-99999 IMDS_AT=-99999
ssm_auth() {
  local r c id key tok
  SSM_ERR="no instance role in metadata"
  [ $((SECONDS - IMDS_AT)) -lt 600 ] || { IMDS_TOKEN=$(retry 6 imds_token) && IMDS_AT=$SECONDS; } || return 1
  r=$(retry 3 imds_get iam/security-credentials/) && r=${r%%$'\n'*} && is "$r" '^[A-Za-z0-9+=,.@_-]+$' || return 1
  # Keys go into a curl config file: only the characters AWS keys have.
  SSM_ERR="unexpected credentials of role $r in metadata"
  c=$(retry 3 imds_get "iam/security-credentials/$r") && json_str "$c" AccessKeyId id && json_str "$c" SecretAccessKey key &&
    json_str "$c" Token tok && is "$id:$key:$tok" '^[A-Z0-9]+:[A-Za-z0-9/+=]+:[A-Za-z0-9/+=]+$' || return 1
  SSM_CFG=$WORK/aws.$BASHPID.curl
  printf 'user = "%s:%s"\nheader = "X-Amz-Security-Token: %s"\n' "$id" "$key" "$tok" >"$SSM_CFG"
  [ -z "$SSM_CA" ] || printf 'cacert = "%s"\n' "$SSM_CA" >>"$SSM_CFG"
  SSM_AUTH_AT=$SECONDS
}
# ssm ACTION JSON: one Parameter Store API call (AmazonSSM.ACTION), the JSON body through a 0600 file. 0 = HTTP 200,
# the answer in SSM_OUT; 1 = failed, SSM_ERR = "HTTP <status>: <the error's JSON, or curl's message>" (callers look
# for the error code in it, as they did in the CLI's message); THROTTLED=1 when AWS asked to slow down. No answer,
# 5xx and throttling are tried again twice (as the AWS CLI's standard retry mode does), each try bounded by curl.
THROTTLED=0
ssm() {
  local b=$WORK/ssm.$BASHPID r c try=1 delay=$BACKOFF_BASE_MS
  SSM_OUT='' THROTTLED=0
  [ $((SECONDS - SSM_AUTH_AT)) -lt 240 ] || ssm_auth || return 1
  printf '%s' "$2" >"$b"
  while :; do
    r=$(curl -q -sS --connect-timeout 10 --max-time 30 -K "$SSM_CFG" --aws-sigv4 "aws:amz:$REGION:ssm" \
      -H 'Content-Type: application/x-amz-json-1.1' -H "X-Amz-Target: AmazonSSM.$1" --data-binary "@$b" \
      -w '\n%{http_code}' "$SSM_URL" 2>"$b.err") || true
    c=${r##*$'\n'} SSM_OUT=${r%$'\n'*}
    [ "$c" = 200 ] && break
    [[ $c =~ ^[1-5][0-9][0-9]$ ]] || c=000 SSM_OUT=$(<"$b.err")
    SSM_ERR="HTTP $c: ${SSM_OUT:0:300}" SSM_OUT=''
    [[ $SSM_ERR != *S[W]MTKN* ]] || SSM_ERR="HTTP $c"
    [[ $SSM_ERR != *Throttling* ]] || THROTTLED=1
    [ "$try" -lt 3 ] && { [ "$c" = 000 ] || [ "$c" -ge 500 ] || [ "$THROTTLED" = 1 ]; } || break
    sleep_ms "$delay"
    next_delay delay
    try=$((try + 1))
  done
  : >"$b"
  [ "$c" = 200 ]
}
# get_param NAME VAR: 0 = value in VAR, 2 = not published yet, 1 = other error (logged).
get_param() {
  if ssm GetParameter "{\"Name\":\"$1\",\"WithDecryption\":true}"; then
    json_str "$SSM_OUT" Value "$2" || printf -v "$2" '%s' "$UNREADABLE"
    SSM_OUT=''
    return 0
  fi
  [[ $SSM_ERR == *ParameterNotFound* ]] && return 2
  log "reading $1 failed: $SSM_ERR"
  return 1
}
# get_pair NAME1 VAR1 NAME2 VAR2: both in one GetParameters call. 0 = both in their VARs; 2 = either not published
# yet (the other may be set); 1 = error (logged; THROTTLED=1 when AWS asked to slow down); 3 = an answer whose
# structure cannot be read (logged): asking again gives the same answer.
get_pair() {
  local rest obj name n=0 re='\{([^{}]*)\}(.*)'
  ssm GetParameters "{\"Names\":[\"$1\",\"$3\"],\"WithDecryption\":true}" || { log "reading $1 and $3 failed: $SSM_ERR"; return 1; }
  # Each parameter is a flat object in the Parameters list: strip the answer's own braces, then take the objects.
  rest=${SSM_OUT#*\{} SSM_OUT=''
  rest=${rest%\}*}
  while [[ $rest =~ $re ]]; do
    obj=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}
    json_str "$obj" Name name || { log "reading $1 and $3: cannot read the answer"; return 3; }
    case $name in
      "$1") json_str "$obj" Value "$2" || printf -v "$2" '%s' "$UNREADABLE"; n=$((n | 1)) ;;
      "$3") json_str "$obj" Value "$4" || printf -v "$4" '%s' "$UNREADABLE"; n=$((n | 2)) ;;
    esac
  done
  [ "$n" -eq 3 ] || return 2
}
# put_param NAME TYPE VALUE [no-overwrite]: the value goes through a 0600 file, never onto a command line.
# Returns 0 written, 2 already exists (no-overwrite only), 1 failed (logged).
put_param() {
  local over=true key='' json
  [ "${4:-}" = no-overwrite ] && over=false
  [ "$2" = SecureString ] && [ -n "$SWARM_KMS_KEY_ID" ] && key=",\"KeyId\":\"$SWARM_KMS_KEY_ID\""
  # Name, value and key id are validated (no quotes or backslashes), so plain interpolation is valid JSON.
  printf -v json '{"Name":"%s","Type":"%s","Value":"%s","Overwrite":%s%s}' "$1" "$2" "$3" "$over" "$key"
  ssm PutParameter "$json" && { log "published $1 ($2)"; return 0; }
  [[ $SSM_ERR == *ParameterAlreadyExists* ]] && return 2
  log "writing $1 failed: $SSM_ERR"
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
    sleep_within 200 "$deadline" || die "dockerd did not show the label $LABEL=$INSTANCE_ID after reloading $conf"
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
    3) die "$param or $P_ADDRS does not hold what a manager writes" ;;
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
# the workers start: the first 15 polls are SWARM_BACKOFF_BASE_S apart (a poll is one request; the join waits at
# most one delay after the publication), then delays grow x1.5 (capped at SWARM_BACKOFF_MAX_S); doubling whenever
# throttled, which also holds the fleet's rate down from then on; +-20 % jitter spreads a fleet's calls
# (docs/design.md, decision 25).
join_loop() {
  local delay=$BACKOFF_BASE_MS n=0 deadline=$((SECONDS + SWARM_JOIN_TIMEOUT_S))
  WHY="nothing tried yet"
  until fetch_join "$1" && join_any "$ADDRS" "$TOKEN"; do
    sleep_within $((delay * (80 + RANDOM % 41) / 100)) "$deadline" || die "gave up after ${SWARM_JOIN_TIMEOUT_S}s (SWARM_JOIN_TIMEOUT_S): $WHY"
    if [ "$THROTTLED" = 1 ]; then next_delay delay; elif [ $((n += 1)) -ge 15 ]; then delay=$((delay * 3 / 2 < BACKOFF_MAX_MS ? delay * 3 / 2 : BACKOFF_MAX_MS)); fi
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

# preflight: curl must sign requests (--aws-sigv4, curl 7.75+; docs/design.md, decision 20): say so first, naming the
# curl found. Amazon Linux 2023 has curl-minimal 8.x; python3 (daemon.json) is what cloud-init runs on.
preflight() {
  local v
  v=$(curl --version) || true
  [[ $v =~ ^curl\ ([0-9]+)\.([0-9]+) ]] && ((BASH_REMATCH[1] * 100 + BASH_REMATCH[2] >= 775)) ||
    die "curl 7.75 or later is needed (--aws-sigv4 signs the Parameter Store calls); found: ${v%%$'\n'*}"
}

# The start of every role script: cfn-signal first (so a failure below can still be signalled), the cluster's
# environment, instance facts, a running docker, and a private work directory ($WORK) removed on exit. The engine
# label is set by a background job (LABEL_JOB, never using $WORK) while the credentials are read; the role script
# waits for it (its failure fails the script) before the election or the first poll (docs/design.md, decision 25).
prepare_node() {
  ensure_cfn_signal
  preflight
  load_swarm_env "$1"
  load_instance_facts
  ensure_docker
  ensure_ecr_helper
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  ensure_instance_label & LABEL_JOB=$!
  ssm_auth || die "no credentials for Parameter Store: $SSM_ERR"
  install_boot_hook "$1"
}
