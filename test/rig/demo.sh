#!/usr/bin/env bash
# `npm run demo`: installs what is missing, builds the agent, brings up three nodes.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/ensure-prereqs.sh
npm run build >/dev/null
exec npx tsx test/rig/demo.ts "$@"
