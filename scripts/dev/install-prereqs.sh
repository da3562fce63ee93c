#!/usr/bin/env bash
# Install the Debian packages the tests and the lab need, only those that are missing (idempotent).
#   docker.io      dockerd 20.10 for the lab's hosts      busybox-static  the lab's local image
#   iproute2       ip netns / veth for the lab network     util-linux      nsenter / unshare
#   awscli         the real AWS CLI the node scripts call   shellcheck      lints every .sh
#   openssl        the lab's TLS certificate              curl            IMDS calls in the node scripts
set -euo pipefail
packages=(docker.io busybox-static iproute2 util-linux awscli shellcheck openssl curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "prerequisites: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
  exit 3
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "prerequisites: installed ${missing[*]}"
