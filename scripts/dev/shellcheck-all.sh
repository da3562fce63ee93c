#!/usr/bin/env bash
# Lint every tracked or new shell script in the repository with shellcheck (part of `npm test`).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "shellcheck is not installed: apt-get install -y shellcheck (or run .ci/run, which installs it)" >&2
  exit 3
fi
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.sh' .ci/run)
if [ "${#files[@]}" -eq 0 ]; then
  echo "shellcheck: no shell scripts"
  exit 0
fi
shellcheck -x "${files[@]}"
echo "shellcheck: ${#files[@]} scripts clean"
