#!/usr/bin/env bash
# Installs what the build needs (Debian packages, with apt-get when missing),
# then configures and builds the compiler into build/ (or $NSA_BUILD_DIR).
# The CUDA toolkit is optional: with ptxas the tests also assemble PTX.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${NSA_BUILD_DIR:-$root/build}
llvm=/usr/lib/llvm-22

packages=(cmake ninja-build g++ python3 llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
          python3-torch python3-numpy python3-pytest)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present (${packages[*]})"
fi

ptxas=$(command -v ptxas || true)
for dir in "${CUDA_HOME:-}" /usr/local/cuda; do
  [ -z "$ptxas" ] && [ -n "$dir" ] && [ -x "$dir/bin/ptxas" ] && ptxas=$dir/bin/ptxas
done
if [ -n "$ptxas" ]; then
  echo "setup: CUDA ptxas at $ptxas: PTX is also assembled for sm_90a in the tests"
else
  echo "setup: no CUDA toolkit (ptxas) found: the PTX assembly test is skipped;" \
       "PTX generation itself needs no CUDA and is tested"
fi

mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DMLIR_DIR="$llvm/lib/cmake/mlir" \
  -DLLVM_EXTERNAL_LIT="$llvm/bin/lit" \
  -DPython3_EXECUTABLE=/usr/bin/python3 \
  -DNSA_PTXAS="$ptxas" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)"
