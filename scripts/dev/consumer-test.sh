#!/usr/bin/env bash
# What we publish works (issue 8): pack this project, install the tarball into a fresh copy of examples/cdk-app —
# a TypeScript CDK app on an OLDER aws-cdk-lib minor than ours — and check that
#   - the tarball holds exactly the runtime files (dist, scripts/node, scripts/lab, cdk.json, README, LICENSE);
#   - the app resolves one aws-cdk-lib and one constructs (no copy nested under node_modules/ec2-swarm);
#   - `ec2-swarm` and `ec2-swarm/ops` resolve with types under moduleResolution node16, nodenext, bundler (and
#     node10 through typesVersions), and load at run time from CommonJS and from ESM;
#   - the app compiles and synthesizes; the installed CLI prints the version; planCluster works installed.
# Needs the npm registry. Everything it creates lives in one temp dir, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/ec2-swarm-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

fail() { echo "consumer-test: FAILED: $*" >&2; exit 1; }
step() { echo "consumer-test: $*"; }

step "npm pack (runs the build through prepare)"
npm pack --silent --pack-destination "$work" > "$work/pack.out"
tarball="$work/$(tail -n 1 "$work/pack.out")"
[ -f "$tarball" ] || fail "npm pack produced no tarball (got: $(cat "$work/pack.out"))"

step "tarball contents"
tar -tzf "$tarball" | sed 's|^package/||' | sort > "$work/files"
for f in package.json README.md LICENSE cdk.json dist/bin/ec2-swarm.js \
  dist/lib/index.js dist/lib/index.d.ts dist/lib/ops/index.js dist/lib/ops/index.d.ts \
  scripts/node/common.sh scripts/node/manager.sh scripts/node/worker.sh scripts/lab/cfn-signal.sh scripts/lab/host-holder.sh; do
  grep -qxF "$f" "$work/files" || fail "the tarball lacks $f"
done
# Sources, tests, dev scripts, docs and examples are not runtime; dist/bin holds only the CLI.
unexpected=$(grep -vE '^(package\.json|README\.md|LICENSE|cdk\.json|dist/bin/ec2-swarm\.js|dist/lib/.+\.(js|d\.ts)|scripts/(node|lab)/[^/]+\.sh)$' "$work/files" || true)
[ -z "$unexpected" ] || fail "the tarball holds files the runtime does not need:
$unexpected"

step "fresh CDK app from examples/cdk-app"
mkdir "$work/app"
tar -C examples/cdk-app --exclude=node_modules --exclude=dist --exclude=cdk.out -cf - . | tar -C "$work/app" -xf -
cd "$work/app"
npm install --silent --no-package-lock "$tarball"

ours=$(node -p "require('$repo/node_modules/aws-cdk-lib/package.json').version")
theirs=$(node -p "require('aws-cdk-lib/package.json').version")
step "aws-cdk-lib: ours $ours, the app's $theirs"
[ "${ours%.*}" != "${theirs%.*}" ] || fail "the app must use another aws-cdk-lib minor than ours ($ours)"
nested=$(find node_modules/ec2-swarm -type d \( -path '*/node_modules/aws-cdk-lib' -o -path '*/node_modules/constructs' \) -print)
[ -z "$nested" ] || fail "a second aws-cdk-lib/constructs is nested under ec2-swarm: $nested"
[ "$(node -p "require.resolve('aws-cdk-lib', { paths: [require('path').dirname(require.resolve('ec2-swarm'))] })")" = "$(node -p "require.resolve('aws-cdk-lib')")" ] ||
  fail "ec2-swarm resolves another aws-cdk-lib than the app"

for r in node16 nodenext bundler node10; do
  step "types resolve under moduleResolution $r"
  npx --no-install tsc -p "checks/tsconfig.$r.json"
done
step "run time: require and import"
node checks/require.cjs
node checks/import.mjs

step "compile and synthesize the app"
npx --no-install tsc -p tsconfig.json
CDK_OUTDIR="$work/app/cdk.out" node dist/app.js
node checks/template.cjs cdk.out/Platform.template.json

step "installed CLI"
version=$(npx --no-install ec2-swarm --version)
[ "$version" = "$(node -p "require('$repo/package.json').version")" ] || fail "ec2-swarm --version printed '$version'"
echo "consumer-test: ok (ec2-swarm $version in a CDK app on aws-cdk-lib $theirs)"
