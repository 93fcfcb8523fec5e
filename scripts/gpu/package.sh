#!/usr/bin/env bash
# The nsa package on the GPU, in two halves because the GPU machine has no
# MLIR (as forward.sh and backward.sh):
#   scripts/gpu/package.sh prepare             # here: runtime + every kernel directory below, into .gpu/
#   scripts/gpu/package.sh run [PART...]       # GPU machine, repository root, .gpu/ carried
# prepare builds, with python3 -m nsa.build_kernels (forward and backward
# plans), into .gpu/nsa-kernels/ the kernels of
#   scripts/gpu/package_check.py  (three ragged shapes, one of them paper-d128),
#   examples/train_nsa.py         (the training example's batch shape),
#   bench/suite.py                (paper-d128 at T = 8192 .. 131072);
# a rerun builds only what is missing (delete .gpu/nsa-kernels after a
# compiler change).
# run does the PARTs in order (default: check train suite), each under its
# own time limit ($NSA_CHECK_TIMEOUT, $NSA_TRAIN_TIMEOUT, $NSA_SUITE_TIMEOUT
# seconds), and goes on after a failure:
#   check  the package on the GPU backend against the reference backend
#          (nsa_attention and NSAAttention, forward and autograd backward);
#   train  examples/train_nsa.py, NSA and dense;
#   suite  bench/suite.py.
# Results go to bench/results/, or, when $OUT is set (the device machine's
# return folder), to .gpu/package-out/ and are copied to $OUT with the log
# (.gpu/package.log) after each part. The exit status is the first failure's.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
kernels=$root/.gpu/nsa-kernels
cmd=${1:-}
shift || true
case "$cmd" in
  prepare)
    if [ ! -x "$root/build/bin/nsa-opt" ]; then
      echo "no build/bin/nsa-opt: build the compiler first (scripts/setup.sh)" >&2
      exit 1
    fi
    nsa_prepare_runtime
    # The scripts import torch and numpy (Debian's python3-torch serves);
    # nsa.build_kernels itself needs neither.
    py=${NSA_PREPARE_PYTHON:-/usr/bin/python3}
    export PYTHONPATH=$root/python NSA_BIN_DIR=$root/build/bin \
           NSA_RUNTIME_LIBRARY=$root/.gpu/runtime/libnsa_runtime.so
    # Two builds at a time: the suite's (the slow ones) beside the others.
    "$py" "$root/bench/suite.py" --build-kernels "$kernels" > "$root/.gpu/prepare-suite.log" 2>&1 &
    suite=$!
    "$py" "$root/scripts/gpu/package_check.py" --build "$kernels"
    "$py" "$root/examples/train_nsa.py" --build-kernels "$kernels"
    rc=0
    wait $suite || rc=$?
    cat "$root/.gpu/prepare-suite.log"
    [ $rc -eq 0 ] || { echo "suite kernels failed to build" >&2; exit $rc; }
    nsa_report_size .gpu/nsa-kernels ;;
  run)
    parts=("$@")
    [ ${#parts[@]} -gt 0 ] || parts=(check train suite)
    lib=$(nsa_runtime_lib)
    export NSA_RUNTIME_LIBRARY=$lib NSA_KERNEL_PATH=$kernels PYTHONUNBUFFERED=1
    results=$root/bench/results
    if [ -n "${OUT:-}" ]; then  # only this run's files, so that $OUT gets exactly them
      results=$root/.gpu/package-out
      rm -rf "$results"
    fi
    mkdir -p "$results"
    log=$root/.gpu/package.log
    : > "$log"
    first_rc=0
    for part in "${parts[@]}"; do
      case "$part" in
        check) limit=${NSA_CHECK_TIMEOUT:-120}
               argv=(python3 "$root/scripts/gpu/package_check.py" --kernels "$kernels"
                     --json "$results/$(date +%F)-$(nsa_card)-package-check.json") ;;
        train) limit=${NSA_TRAIN_TIMEOUT:-180}
               argv=(python3 "$root/examples/train_nsa.py" --out "$results") ;;
        suite) limit=${NSA_SUITE_TIMEOUT:-240}
               argv=(python3 "$root/bench/suite.py" --out "$results") ;;
        *) echo "unknown part $part (check, train, suite)" >&2; exit 2 ;;
      esac
      echo "== $part: ${argv[*]} (limit ${limit} s)" | tee -a "$log"
      rc=0
      timeout "$limit" "${argv[@]}" 2>&1 | tee -a "$log" || rc=$?
      echo "== $part: exit $rc" | tee -a "$log"
      if [ $rc -ne 0 ] && [ $first_rc -eq 0 ]; then first_rc=$rc; fi
      if [ -n "${OUT:-}" ]; then cp "$log" "$results"/* "$OUT/" 2>/dev/null || true; fi
    done
    exit $first_rc ;;
  *) echo "usage: $0 prepare | run [check] [train] [suite]" >&2; exit 2 ;;
esac
