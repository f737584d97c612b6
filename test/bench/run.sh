#!/usr/bin/env bash
# `npm run bench [-- ARGS]`: installs what is missing (Node 24 included; no Docker engine), builds
# the agent, runs the benchmark with ARGS on Node 24.
set -euo pipefail
cd "$(dirname "$0")/../.."
node_bin="$(bash test/ensure-node.sh)"
if [ -n "$node_bin" ]; then export PATH="$node_bin:$PATH" npm_config_nodedir="${node_bin%/bin}"; fi
bash test/ensure-prereqs.sh --no-docker
npm run build
exec npx tsx test/bench/bench.ts "$@"
