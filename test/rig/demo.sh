#!/usr/bin/env bash
# `npm run demo`: installs what is missing (Node 24 included), builds the agent, brings up three nodes.
set -euo pipefail
cd "$(dirname "$0")/../.."
node_bin="$(bash test/ensure-node.sh)"
if [ -n "$node_bin" ]; then export PATH="$node_bin:$PATH" npm_config_nodedir="${node_bin%/bin}"; fi
bash test/ensure-prereqs.sh
npm run build >/dev/null
exec npx tsx test/rig/demo.ts "$@"
