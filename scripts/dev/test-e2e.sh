#!/usr/bin/env bash
# End-to-end tests on the lab (part of `npm test`). The lab needs root (namespaces, dockerd): without root they
# are skipped, loudly, and the rest of `npm test` still counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
# `npm test` is past its unit tests here: CI (.ci/run) starts the unit tests on the other Node lines at this mark.
if [ -n "${EC2_SWARM_CI_UNIT_DONE:-}" ]; then : >"$EC2_SWARM_CI_UNIT_DONE"; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "e2e: SKIPPED — the lab needs root (network namespaces, dockerd). Run as root: npm run test:e2e" >&2
  exit 0
fi
exec npx jest --config jest.e2e.config.js --runInBand "$@"
