#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (Node 24 when the machine's
# node is another line, test/ensure-node.sh; Debian's MariaDB server, backup and stream tools;
# the test store, Ceph's radosgw, ceph-mon and ceph-osd, with rclone and zstd; Prometheus; npm
# packages), builds the agent, runs every test on Node 24. Nothing is skipped: a missing tool is
# installed or the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
node_env="$(bash test/ensure-node.sh --env)" # an assignment, so that its failure stops the script
eval "$node_env"
version="$(node --version)"
echo "test/run.sh: node $version ($(command -v node))"
[[ "$version" == v24.* ]] || { echo "test/run.sh: the suite runs on Node 24, and the node on PATH is $version" >&2; exit 1; }
bash test/ensure-prereqs.sh
npm run build
exec npx vitest run "$@"
