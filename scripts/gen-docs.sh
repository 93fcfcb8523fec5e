#!/usr/bin/env bash
# Regenerates docs/generated/ (dialect and pass references) from the ODS
# files; with --check, only reports whether the committed copy is current.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${NSA_BUILD_DIR:-$root/build}
cmake --build "$build" --target mlir-doc >/dev/null
out=$root/docs/generated
docs=(Dialect/NSADialect.md Dialect/TileDialect.md Passes/NSAPasses.md Passes/TilePasses.md)
if [ "${1:-}" = "--check" ]; then
  for f in "${docs[@]}"; do
    if ! diff -q "$build/docs/$f" "$out/$(basename "$f")" >/dev/null 2>&1; then
      echo "docs: docs/generated/$(basename "$f") is stale; run scripts/gen-docs.sh and commit it"
      exit 1
    fi
  done
  echo "docs: docs/generated matches the ODS"
  exit 0
fi
mkdir -p "$out"
for f in "${docs[@]}"; do
  cp "$build/docs/$f" "$out/"
done
echo "docs: wrote ${#docs[@]} files into docs/generated"
