#!/usr/bin/env bash
# A/B of bench/engine_dag.py between a commit and the work tree, alternated in one run:
#   bench/engine_ab.sh OLD_COMMIT [PAIRS] [engine_dag.py options...]
# Each line is one engine_dag.py run (median of its rounds with its own floors), prefixed by
# `old` (OLD_COMMIT, checked out into a temporary worktree and put first on PYTHONPATH) or `new`
# (this tree). The machine's speed drifts: compare the pairs, not runs of different days.
# The servers' homes are removed only at the end: after a home (~6,000 files) is removed,
# creating files is 5-20x slower here for minutes, which slowed every run after it.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/engine_ab.sh OLD_COMMIT [PAIRS] [options]}
pairs=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
tree=$(mktemp -d /tmp/batchd-ab-XXXXXX)
homes=$(mktemp -d /tmp/batchd-ab-homes-XXXXXX)
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true; rm -rf "$homes"' EXIT
git worktree add --detach -f "$tree" "$old" >/dev/null 2>&1
for _ in $(seq "$pairs"); do
  for side in old new; do
    path=$PWD/src
    [ "$side" = old ] && path=$tree/src
    echo "-- $side $(git -C "${path%/src}" rev-parse --short HEAD) $(date -u +%H:%M:%S)"
    TMPDIR=$homes PYTHONPATH=$path .venv/bin/python bench/engine_dag.py --rounds 3 --keep-home "$@" 2>/dev/null | tail -n +2 | sed "s/^/$side  /"
  done
done
