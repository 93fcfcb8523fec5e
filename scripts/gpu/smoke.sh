#!/usr/bin/env bash
# The GPU smoke test in two halves, because the GPU machine has no MLIR.
#   scripts/gpu/smoke.sh prepare   # here: PTX + manifest into .gpu/
#   scripts/gpu/smoke.sh run       # on the GPU machine (carry .gpu/)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case "${1:-}" in
  prepare)
    mkdir -p "$root/.gpu"
    "$root/build/bin/nsa-translate" --nsa-to-ptx \
      "$root/test/Target/PTX/Inputs/axpy.mlir" -o "$root/.gpu/axpy.ptx"
    cp "$root/test/Target/PTX/Inputs/axpy.manifest.json" "$root/.gpu/"
    echo "prepared .gpu/ (carry it to the GPU machine)" ;;
  run)
    cmake -S "$root/runtime" -B /tmp/nsa-runtime -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build /tmp/nsa-runtime -j >/dev/null
    ctest --test-dir /tmp/nsa-runtime --output-on-failure | tail -n 3
    python3 "$root/scripts/gpu/runtime_smoke.py" \
      "$(find /tmp/nsa-runtime -name 'libnsa_runtime.so' | head -n 1)" \
      "$root/.gpu/axpy.manifest.json" ;;
  *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
