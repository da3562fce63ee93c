#!/bin/bash
# ec2-swarm manager: idempotent `docker swarm init`, then publish the join tokens (SecureString) and the manager
# address to SSM. Exit 0 only when all three parameters are written: the exit code becomes the CloudFormation signal.
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

prepare_node

state=$(swarm_info '{{.Swarm.LocalNodeState}}') || die "docker info failed"
case "$state" in
  inactive)
    log "initialising the swarm, advertising $PRIVATE_IP"
    # stdout names the join command with its token: discard it.
    timeout 120 docker swarm init --advertise-addr "$PRIVATE_IP" >/dev/null ||
      die "docker swarm init failed"
    ;;
  active)
    [ "$(swarm_info '{{.Swarm.ControlAvailable}}')" = true ] ||
      die "this node is a worker of another swarm; refusing to initialise (run 'docker swarm leave' first)"
    log "already a swarm manager: skipping init"
    ;;
  *) die "unexpected swarm state '$state' (expected inactive or active)" ;;
esac

# put_param NAME TYPE VALUE: the value goes through a 0600 file, never onto a command line.
put_param() {
  # Name and value are validated (no quotes or backslashes), so plain interpolation is valid JSON.
  printf '{"Name":"%s","Type":"%s","Value":"%s"}' "$1" "$2" "$3" >"$WORK/input.json"
  retry 5 aws_ssm put-parameter --overwrite --cli-input-json "file://$WORK/input.json" >/dev/null ||
    die "could not write parameter $1"
  rm -f "$WORK/input.json"
  log "published $1 ($2)"
}
# publish_token ROLE NAME: `join-token -q` prints only the token; it is captured, never echoed.
publish_token() {
  local token
  token=$(timeout 30 docker swarm join-token -q "$1") || die "could not read the $1 join token"
  is "$token" "$RE_TOKEN" || die "the $1 join token has an unexpected format"
  put_param "$2" SecureString "$token"
}

publish_token worker "$SWARM_PARAM_WORKER_TOKEN"
publish_token manager "$SWARM_PARAM_MANAGER_TOKEN"
put_param "$SWARM_PARAM_MANAGER_ADDRESS" String "$PRIVATE_IP:2377"
log "manager ready"
