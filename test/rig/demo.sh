#!/usr/bin/env bash
# `npm run demo`: installs what is missing of what the demo uses (Node 24, Debian's MariaDB server
# and backup tools, the npm packages; no Docker: it runs no container), builds the agent, brings up
# three nodes.
set -euo pipefail
cd "$(dirname "$0")/../.."
node_env="$(bash test/ensure-node.sh --env)" # an assignment, so that its failure stops the script
eval "$node_env"
bash test/ensure-prereqs.sh server
npm run build >/dev/null
exec npx tsx test/rig/demo.ts "$@"
