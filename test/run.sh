#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (Debian's MariaDB server,
# backup and stream tools; npm packages), builds the agent, runs every test. Nothing is skipped:
# a missing tool is installed or the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/ensure-prereqs.sh
npm run build
exec npx vitest run "$@"
