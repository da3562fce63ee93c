#!/bin/bash
# ec2-swarm per-boot step: cloud-init runs /var/lib/cloud/scripts/per-boot/ec2-swarm-boot.sh (installed by the role
# script) at every boot after the first; it runs the role script again with the environment the first boot saved:
# docker is started, a node that is not in the swarm rejoins (idempotent), managers restart their reconciler.
set -euo pipefail
case $0 in */*) home=${0%/*} ;; *) home=. ;; esac
# shellcheck source=/dev/null
. "$home/node.env"
[[ ${SWARM_ROLE:-} =~ ^(manager|worker)$ ]] || { echo "ec2-swarm: SWARM_ROLE in $home/node.env is invalid" >&2; exit 2; }
exec /bin/bash "$home/$SWARM_ROLE.sh"
