#!/usr/bin/env bash
# `npm run bench [-- [--store | --link | --archive] ARGS]`: installs what is missing of what it uses (Node 24,
# Debian's MariaDB server and backup tools, ncat; with --store the test store, rclone and zstd; with
# --archive the test store and sysbench; the npm
# packages; no Docker), builds the agent, runs the benchmark with ARGS on Node 24 (clones: then the
# full mutation run, every mutant, not only the changed ones CI runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
node_env="$(bash test/ensure-node.sh --env)" # an assignment, so that its failure stops the script
eval "$node_env"
case "${1:-}" in
  --store) bash test/ensure-prereqs.sh server ncat store ;;
  --link) bash test/ensure-prereqs.sh server ncat link ;;
  --archive) bash test/ensure-prereqs.sh server store sysbench ;;
  *) bash test/ensure-prereqs.sh server ncat ;;
esac
npm run build
# --store: backups to object storage and restores (test/bench/store-bench.ts) instead of clones.
if [ "${1:-}" = "--store" ]; then exec npx tsx test/bench/store-bench.ts "$@"; fi
# --link: clones across a shaped link between two network namespaces (test/bench/link-bench.ts).
if [ "${1:-}" = "--link" ]; then exec npx tsx test/bench/link-bench.ts "$@"; fi
# --archive: the binary log archive's lag and the sidecar's memory under sysbench (test/bench/archive-bench.ts).
if [ "${1:-}" = "--archive" ]; then exec npx tsx test/bench/archive-bench.ts "$@"; fi
npx tsx test/bench/bench.ts "$@"
exec bash test/mutation/run.sh --force
