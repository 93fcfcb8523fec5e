# Shared pieces of the two-halves GPU checks (forward.sh, backward.sh):
# "prepare" on the compiler machine writes .gpu/ (runtime library, commit
# stamp, kernels); "run" on the GPU machine, which has no MLIR and gets
# .gpu/ carried (64 MiB at most). Source it from a script in scripts/gpu/
# that has `set -euo pipefail`; it defines $root and the nsa_* functions.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# What the device machine carries back at most, and what it can take along.
NSA_GPU_CARRY_LIMIT_MIB=64

# Builds libnsa_runtime.so into .gpu/runtime/ (from the compiler's build when
# it has one, else runtime/ alone) and stamps .gpu/commit.
nsa_prepare_runtime() {
  local lib
  mkdir -p "$root/.gpu/runtime"
  if [ -f "$root/build/build.ninja" ]; then
    cmake --build "$root/build" --target nsa_runtime >/dev/null
    lib=$root/build/lib/libnsa_runtime.so
  else
    cmake -S "$root/runtime" -B /tmp/nsa-runtime -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build /tmp/nsa-runtime -j --target nsa_runtime >/dev/null
    lib=$(find /tmp/nsa-runtime -name libnsa_runtime.so | head -n 1)
  fi
  # Copy, then rename: cp over the old file would rewrite it in place and
  # crash every process that has it loaded (a build validating its plans).
  cp "$lib" "$root/.gpu/runtime/libnsa_runtime.so.new"
  mv -f "$root/.gpu/runtime/libnsa_runtime.so.new" "$root/.gpu/runtime/libnsa_runtime.so"
  # The device copy has no .git: record what the kernels were built from.
  git -C "$root" describe --always --dirty > "$root/.gpu/commit" 2>/dev/null ||
    echo unknown > "$root/.gpu/commit"
}

# Says how big .gpu/ is and warns when it no longer fits the carry.
nsa_report_size() {
  local what=$1 mib
  mib=$(du -sm "$root/.gpu" | cut -f1)
  echo "prepared $what ($(du -sh "$root/$what" | cut -f1)); .gpu/ is ${mib} MiB" \
       "(carry it to the GPU machine)"
  if [ "$mib" -ge "$NSA_GPU_CARRY_LIMIT_MIB" ]; then
    echo "warning: .gpu/ is over the ${NSA_GPU_CARRY_LIMIT_MIB} MiB carry limit" >&2
  fi
}

# Prints a libnsa_runtime.so that loads here: the prepared one, or one
# rebuilt from runtime/ (the GPU machine may have another glibc).
nsa_runtime_lib() {
  local lib=$root/.gpu/runtime/libnsa_runtime.so
  if ! python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$lib" 2>/dev/null; then
    cmake -S "$root/runtime" -B /tmp/nsa-runtime -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build /tmp/nsa-runtime -j --target nsa_runtime >/dev/null
    lib=$(find /tmp/nsa-runtime -name libnsa_runtime.so | head -n 1)
  fi
  echo "$lib"
}

# The card's name as results files spell it ("H100-80GB-HBM3"; "no-gpu" without one).
nsa_card() {
  python3 -c 'import torch; print(torch.cuda.get_device_name().replace("NVIDIA ", "").replace(" ", "-"))' \
    2>/dev/null || echo no-gpu
}

# nsa_run_check WHAT CHECKER [options]: the checker's --self-test, then the
# check itself, logged to .gpu/WHAT-check.log. When $OUT is set (the device
# machine's return folder) the results JSON goes to
# .gpu/out/<date>-<card>-WHAT-check.json and it and the log are copied to
# $OUT. Returns the checks' exit status.
nsa_run_check() {
  local what=$1 checker=$2 lib json="" log rc=0
  shift 2
  lib=$(nsa_runtime_lib)
  local json_args=()
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$root/.gpu/out"
    json=$root/.gpu/out/$(date +%F)-$(nsa_card)-$what-check.json
    json_args=(--json "$json")
  fi
  log=$root/.gpu/$what-check.log
  {
    # A checker that cannot tell a broken kernel from a good one proves nothing.
    python3 "$checker" --self-test --runtime-lib "$lib" &&
    python3 "$checker" --runtime-lib "$lib" "${json_args[@]}" "$@"
  } 2>&1 | tee "$log" || rc=$?
  if [ -n "${OUT:-}" ]; then
    cp "$log" "$OUT/"
    if [ -f "$json" ]; then cp "$json" "$OUT/"; fi
  fi
  return $rc
}
