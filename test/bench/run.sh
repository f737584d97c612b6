#!/usr/bin/env bash
# `npm run bench [-- ARGS]`: installs what is missing (Node 24 included; no Docker engine), builds
# the agent, runs the benchmark with ARGS on Node 24.
set -euo pipefail
cd "$(dirname "$0")/../.."
node_env="$(bash test/ensure-node.sh --env)" # an assignment, so that its failure stops the script
eval "$node_env"
bash test/ensure-prereqs.sh --no-docker
npm run build
exec npx tsx test/bench/bench.ts "$@"
