#!/usr/bin/env bash
# The GPU check of the compiled NSA forward in two halves, because the GPU
# machine has no MLIR (as scripts/gpu/smoke.sh):
#   scripts/gpu/forward.sh prepare [build_kernels.py options]   # here: runtime + kernels into .gpu/
#   scripts/gpu/forward.sh run [forward_check.py options]       # on the GPU machine, .gpu/ carried
# prepare builds the test set unless given --set/--only (--set bench: the
# forward-only paper-d128 builds used for tile-size experiments; the
# benchmark itself is scripts/gpu/bench.sh).
# run writes bench/results/<date>-<card>-forward-check.json; when $OUT is set
# (the device machine's return folder) it writes under .gpu/out instead and
# copies the JSON and the log to $OUT.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/scripts/gpu/common.sh"
cmd=${1:-}
shift || true
case "$cmd" in
  prepare)
    nsa_prepare_runtime
    python3 "$root/scripts/gpu/build_kernels.py" --set test \
      --runtime-lib "$root/.gpu/runtime/libnsa_runtime.so" "$@"
    echo "prepared .gpu/ ($(du -sh "$root/.gpu" | cut -f1); carry it to the GPU machine)" ;;
  run)
    nsa_run_check forward "$root/scripts/gpu/forward_check.py" "$@" ;;
  *) echo "usage: $0 prepare|run [options]" >&2; exit 2 ;;
esac
