#!/usr/bin/env bash
# `npm run demo`: installs what is missing (Node 24 included), builds the agent, brings up three nodes.
set -euo pipefail
cd "$(dirname "$0")/../.."
node_env="$(bash test/ensure-node.sh --env)" # an assignment, so that its failure stops the script
eval "$node_env"
bash test/ensure-prereqs.sh
npm run build >/dev/null
exec npx tsx test/rig/demo.ts "$@"
