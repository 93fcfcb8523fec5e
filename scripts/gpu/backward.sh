#!/usr/bin/env bash
# The GPU check of the compiled NSA backward (nsa.attention_grad) in two
# halves, because the GPU machine has no MLIR (as forward.sh):
#   scripts/gpu/backward.sh prepare [build_grad_kernels.py options]  # here: runtime + kernels into .gpu/
#   scripts/gpu/backward.sh run [backward_check.py options]          # on the GPU machine, .gpu/ carried
# prepare builds the backward test set into .gpu/kernels-grad/ unless given
# --only. run writes bench/results/<date>-<card>-backward-check.json; when
# $OUT is set (the device machine's return folder) it writes under .gpu/out
# instead and copies the JSON and the log to $OUT.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cmd=${1:-}
shift || true
case "$cmd" in
  prepare)
    nsa_prepare_runtime
    python3 "$root/scripts/gpu/build_grad_kernels.py" \
      --runtime-lib "$root/.gpu/runtime/libnsa_runtime.so" "$@"
    nsa_report_size .gpu/kernels-grad ;;
  run)
    nsa_run_check backward "$root/scripts/gpu/backward_check.py" "$@" ;;
  *) echo "usage: $0 prepare|run [options]" >&2; exit 2 ;;
esac
