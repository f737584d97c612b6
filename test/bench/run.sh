#!/usr/bin/env bash
# `npm run bench [-- ARGS]`: installs what is missing of what it uses (Node 24, Debian's MariaDB
# server and backup tools, ncat, the npm packages; no Docker), builds the agent, runs the benchmark
# with ARGS on Node 24, then the full mutation run (every mutant, not only the changed ones CI runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
node_env="$(bash test/ensure-node.sh --env)" # an assignment, so that its failure stops the script
eval "$node_env"
bash test/ensure-prereqs.sh server ncat
npm run build
npx tsx test/bench/bench.ts "$@"
exec bash test/mutation/run.sh --force
