#!/usr/bin/env bash
# Install the Debian packages the tests and the lab need, only those that are missing (idempotent).
#   docker.io      dockerd 20.10 for the lab's hosts      busybox-static  the lab's local image
#   iproute2       ip netns / veth for the lab network     util-linux      nsenter / unshare
#   awscli         the real AWS CLI the node scripts call   shellcheck      lints every .sh
#   openssl        the lab's TLS certificate              curl            IMDS calls in the node scripts
#   docker-registry the lab's login-protected registry    apache2-utils   htpasswd for it (lib/lab/registry)
set -euo pipefail

# Node.js and npm come first: everything after this script is `npm …`. Debian 12's own nodejs (18) is too old.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "Node.js 22 or 24 with npm is required (see package.json engines): install it from https://nodejs.org or your distribution, then run this again" >&2
  exit 3
fi
node_version=$(node --version)
case "$node_version" in
  v22.* | v24.*) ;;
  v20.19.* | v20.2[0-9].*) echo "Node.js $node_version: supported but past its end of life; use 22 or 24" >&2 ;;
  v1[0-9].* | v[0-9].* | v20.*) echo "Node.js $node_version is too old: install Node.js 22 or 24" >&2; exit 3 ;;
  *) echo "Node.js $node_version is not a tested version (package.json engines: 20.19+, 22, 24)" >&2 ;;
esac

packages=(docker.io busybox-static iproute2 util-linux awscli shellcheck openssl curl docker-registry apache2-utils)
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
# The package enables a system registry on :5000; the lab starts its own, in its own network, only when asked.
if [ -d /run/systemd/system ] && systemctl is-enabled docker-registry >/dev/null 2>&1; then
  systemctl disable --now docker-registry >/dev/null 2>&1 || echo "note: could not disable the docker-registry service" >&2
fi
echo "prerequisites: installed ${missing[*]}"
