#!/usr/bin/env bash
# The NSA benchmark with a per-launch breakdown (bench/bench.py --nsa-kernels)
# in two halves, because the GPU machine has no MLIR (as forward.sh):
#   scripts/gpu/bench.sh prepare [T...]        # here: runtime + paper-d128 kernels into .gpu/nsa-kernels
#   scripts/gpu/bench.sh run [bench.py options] # on the GPU machine, .gpu/ carried
# prepare builds paper-d128 forward and backward plans (python3 -m
# nsa.build_kernels --cubin, through bench/suite.py --build-kernels, the same
# directories scripts/gpu/package.sh uses) at T = 8192 .. 65536 unless given
# other T, and prints, from the plans alone, each launch's shape and the
# FLOP model. run times the NSA forward and backward plans beside SDPA cuDNN
# and flash in one process, writes
# bench/results/<date>-<card>-paper-d128-nsa.json and bench.log; when $OUT is
# set (the device machine's return folder) it copies both there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/scripts/gpu/common.sh"
cmd=${1:-}
shift || true
case "$cmd" in
  prepare)
    if [ ! -x "$root/build/bin/nsa-opt" ]; then
      echo "no build/bin/nsa-opt: build the compiler first (scripts/run.sh or scripts/test.sh)" >&2
      exit 1
    fi
    nsa_prepare_runtime
    Ts=("$@")
    [ ${#Ts[@]} -gt 0 ] || Ts=(8192 16384 32768 65536)
    PYTHONPATH=$root/python NSA_BIN_DIR=$root/build/bin \
      NSA_RUNTIME_LIBRARY=$root/.gpu/runtime/libnsa_runtime.so \
      "${NSA_PREPARE_PYTHON:-/usr/bin/python3}" "$root/bench/suite.py" \
      --build-kernels "$root/.gpu/nsa-kernels" --T "${Ts[@]}"
    python3 "$root/bench/nsa_bench.py" "$root/.gpu/nsa-kernels" --T "${Ts[@]}" \
      --runtime-lib "$root/.gpu/runtime/libnsa_runtime.so"
    echo "prepared .gpu/ ($(du -sh "$root/.gpu" | cut -f1); carry it to the GPU machine)" ;;
  run)
    lib=$(nsa_runtime_lib)
    log=$root/.gpu/bench.log
    rc=0
    # Later options win: "$@" may override --repeats, --T, --config, ...
    PYTHONUNBUFFERED=1 python3 "$root/bench/bench.py" --config paper-d128 \
      --nsa-kernels "$root/.gpu/nsa-kernels" --runtime-lib "$lib" --phases fwd bwd \
      --warmup 3 --repeats 10 "$@" \
      2>&1 | tee "$log" || rc=$?
    json=$(sed -n 's/^wrote //p' "$log" | tail -n 1)
    if [ -n "${OUT:-}" ]; then
      cp "$log" "$OUT/"
      if [ -n "$json" ] && [ -f "$json" ]; then cp "$json" "$OUT/"; fi
    fi
    exit $rc ;;
  *) echo "usage: $0 prepare|run [options]" >&2; exit 2 ;;
esac
