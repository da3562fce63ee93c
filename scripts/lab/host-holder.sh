#!/usr/bin/env bash
# The "holder" of one lab host. lib/lab/ec2/hosts.ts starts it as
#   nsenter --net=/run/netns/<ns> unshare --mount --uts --propagation private -- bash host-holder.sh DIR HOSTNAME [SRC DST]...
# i.e. inside the host's network namespace, in fresh mount + UTS namespaces. It gives the host its private view of
# the machine, prints READY, then sleeps so the namespaces live on for dockerd and `nsenter --target <this PID>`.
# Every mount here stays inside the private mount namespace and vanishes with its last process.
set -euo pipefail

if [ "$#" -lt 2 ] || [ $((($# - 2) % 2)) -ne 0 ]; then
  echo "usage: $0 DIR HOSTNAME [SRC DST]..." >&2
  exit 2
fi
dir=$1
name=$2
shift 2

hostname "$name"

# dockerd needs a sysfs of THIS network namespace (/sys/class/net/...), but mounting one hides /sys/fs/cgroup
# ("Devices cgroup isn't mounted"): stash the cgroup tree, mount the sysfs, put the tree back (lab-notes pitfall 1).
mkdir -p "$dir/cg"
mount --rbind /sys/fs/cgroup "$dir/cg"
mount -t sysfs sysfs /sys
mount --rbind "$dir/cg" /sys/fs/cgroup
umount -l "$dir/cg"

# dockerd/containerd hard-code paths under /run (plugins, shim sockets) and the default socket
# /var/run/docker.sock: a private /run per host (pitfall 2).
mount -t tmpfs -o mode=0755 tmpfs /run
if [ ! -L /var/run ]; then
  mount -t tmpfs -o mode=0755 tmpfs /var/run
fi

# Private copies: /etc/docker (key.json = engine id), /var/lib/docker (hard-coded lb_ files), /opt, /tmp, /etc/hosts.
while [ "$#" -gt 0 ]; do
  mount --bind "$1" "$2"
  shift 2
done

echo READY
# Let go of the starter's pipes: the holder outlives it.
exec >/dev/null 2>&1 </dev/null
exec sleep infinity
