#!/usr/bin/env bash
# `npm run mutate [-- --changed [BASE]] [-- STRYKER ARGS]`: StrykerJS over the pure core and the
# units named in stryker.config.mjs, on Node 24, then the score per folder and the floor
# (test/mutation/score.ts).
#   npm run mutate              every mutant (the bench job, `npm run bench`; see README for the time)
#   npm run mutate -- --changed only the configured files changed since BASE (default main: the
#                               merge base, or on main the last commit): CI, within its 20 minutes
set -euo pipefail
cd "$(dirname "$0")/../.."
node_env="$(bash test/ensure-node.sh --env)" # an assignment, so that its failure stops the script
eval "$node_env"
args=()
if [[ "${1:-}" == "--changed" ]]; then
  shift
  base=main
  if [[ -n "${1:-}" && "$1" != -* ]]; then base="$1"; shift; fi
  files="$(npx tsx test/mutation/changed.ts "$base")"
  if [[ -z "$files" ]]; then
    echo "mutate: no mutated file changed since $base; nothing to run"
    exit 0
  fi
  echo "mutate: changed since $base: ${files//,/ }"
  # Their own record of results, so that a partial run never stands for the full one.
  args=(--mutate "$files" --incrementalFile reports/mutation/changed-incremental.json)
fi
started=$SECONDS
npx stryker run "${args[@]}" "$@"
echo "mutate: stryker ran for $((SECONDS - started)) s"
exec npx tsx test/mutation/score.ts reports/mutation/mutation.json
