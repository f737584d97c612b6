#!/usr/bin/env bash
# `npm run mutate [-- STRYKER ARGS]`: StrykerJS over the pure core and the units named in
# stryker.config.mjs, on Node 24, then the score per folder and the floor (test/mutation/score.ts).
# Incremental against the committed record (test/mutation/stryker-incremental.json): only mutants
# whose code or covering tests changed since the record run again, and the score is over all of
# them. CI runs it so; after changing mutated code or unit tests, run it and commit the record with
# the change, or CI spends the time instead. `-- --force` runs every mutant (`npm run bench` does).
set -euo pipefail
cd "$(dirname "$0")/../.."
node_env="$(bash test/ensure-node.sh --env)" # an assignment, so that its failure stops the script
eval "$node_env"
record=test/mutation/stryker-incremental.json
[[ -s "$record" ]] || { echo "mutate: $record is missing: restore it from git, or run with -- --force to rebuild it (hours)" >&2; exit 1; }
started=$SECONDS
npx stryker run "$@"
echo "mutate: stryker ran for $((SECONDS - started)) s"
exec npx tsx test/mutation/score.ts reports/mutation/mutation.json
