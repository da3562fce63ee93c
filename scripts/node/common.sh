# shellcheck shell=bash
# ec2-swarm node helpers, sourced by manager.sh and worker.sh (docs/contracts.md, "Node scripts").
# Tunables (tests shorten them): SWARM_BACKOFF_BASE_S (2), SWARM_BACKOFF_MAX_S (30), SWARM_DOCKER_WAIT_S (120),
# AWS_EC2_METADATA_SERVICE_ENDPOINT (http://169.254.169.254), DOCKER_HOST (unix:///var/run/docker.sock).
set -euo pipefail
umask 077 # temp files hold tokens (installs below reset it)
export AWS_PAGER='' # never a pager, even on a terminal

log() { printf '%s ec2-swarm: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# Error text from outside (CLI, engine) passes through this before it is logged: tokens never reach a log.
redact() { sed -E 's/S[W]MTKN-[A-Za-z0-9-]*/<redacted>/g' | head -c 600; }

RE_OCTET='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
RE_IPV4="^($RE_OCTET\\.){3}$RE_OCTET\$"
# shellcheck disable=SC2034 # used by the role scripts
RE_ADDR="^($RE_OCTET\\.){3}$RE_OCTET:[1-9][0-9]{0,4}\$"
# shellcheck disable=SC2034
RE_TOKEN='^S[W]MTKN-1-[0-9a-z]+-[0-9a-z]+$'
RE_NUM='^[0-9]{1,5}(\.[0-9]{1,3})?$'
# is VALUE REGEX: strict validation of everything read from outside before it is used.
is() { [[ $1 =~ $2 ]]; }
need() { is "${!1:-}" "$2" || die "$1 is missing or invalid (must match $2)"; }

: "${SWARM_BACKOFF_BASE_S:=2}" "${SWARM_BACKOFF_MAX_S:=30}" "${SWARM_DOCKER_WAIT_S:=120}"
need SWARM_BACKOFF_BASE_S "$RE_NUM"
need SWARM_BACKOFF_MAX_S "$RE_NUM"
need SWARM_DOCKER_WAIT_S '^[0-9]{1,5}$'

# next_delay D: D doubled, capped at SWARM_BACKOFF_MAX_S (fractions allowed so tests run fast).
next_delay() { awk -v d="$1" -v m="$SWARM_BACKOFF_MAX_S" 'BEGIN { d *= 2; if (d > m) d = m; print d }'; }
# sleep_within D DEADLINE: sleep D seconds but not past DEADLINE (a $SECONDS value); fails once it has passed.
sleep_within() {
  local left=$(($2 - SECONDS))
  [ "$left" -gt 0 ] || return 1
  sleep "$(awk -v d="$1" -v l="$left" 'BEGIN { print (d < l ? d : l) }')"
}
# retry TRIES CMD...: run CMD until it succeeds, at most TRIES times, with exponential backoff.
retry() {
  local tries=$1 n=1 delay=$SWARM_BACKOFF_BASE_S
  shift
  until "$@"; do
    [ "$n" -lt "$tries" ] || { log "giving up after $n attempts: $1"; return 1; }
    log "attempt $n of $tries failed: $1; retrying in ${delay}s"
    sleep "$delay"
    delay=$(next_delay "$delay")
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
  need INSTANCE_ID '^i-[0-9a-f]{8}([0-9a-f]{9})?$'
  need PRIVATE_IP "$RE_IPV4"
  need REGION '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
  log "instance $INSTANCE_ID, private ip $PRIVATE_IP, region $REGION"
}

# --- environment from user-data ---
load_swarm_env() {
  need SWARM_CLUSTER '^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$'
  local v
  for v in SWARM_PARAM_WORKER_TOKEN SWARM_PARAM_MANAGER_TOKEN SWARM_PARAM_MANAGER_ADDRESS; do
    need "$v" '^(/[A-Za-z0-9_.-]{1,200}){1,15}$'
  done
}

# --- bounded AWS CLI calls (the CLI's own retries could otherwise outlast our bounds) ---
aws_ssm() { timeout 90 aws ssm "$@" --region "$REGION" --cli-connect-timeout 10 --cli-read-timeout 30; }

# --- software: install only what is missing (Amazon Linux 2023 has dnf; pre-baked hosts need nothing) ---
ensure_cfn_signal() {
  local cfn=${SWARM_CFN_SIGNAL:-/opt/aws/bin/cfn-signal} # override for tests only
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
    sleep_within 1 "$deadline" || die "the docker daemon did not answer within ${SWARM_DOCKER_WAIT_S}s"
  done
  log "docker is up"
}
swarm_info() { timeout 30 docker info --format "$1"; }

# The start of every role script: cfn-signal first (so a failure below can still be signalled), the cluster's
# environment, instance facts, a running docker, and a private work directory ($WORK) removed on exit.
prepare_node() {
  ensure_cfn_signal
  load_swarm_env
  load_instance_facts
  ensure_docker
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
}
