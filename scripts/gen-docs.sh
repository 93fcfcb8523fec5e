#!/usr/bin/env bash
# Regenerates docs/generated/ (dialect and pass reference) from the ODS
# files; with --check, only reports whether the committed copy is current.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${NSA_BUILD_DIR:-$root/build}
cmake --build "$build" --target mlir-doc >/dev/null
out=$root/docs/generated
if [ "${1:-}" = "--check" ]; then
  for f in NSADialect.md NSAPasses.md; do
    src=$(find "$build/docs" -name "$f" | head -n 1)
    if ! diff -q "$src" "$out/$f" >/dev/null 2>&1; then
      echo "docs: docs/generated/$f is stale; run scripts/gen-docs.sh and commit it"
      exit 1
    fi
  done
  echo "docs: docs/generated matches the ODS"
  exit 0
fi
mkdir -p "$out"
cp "$build/docs/Dialect/NSADialect.md" "$build/docs/Passes/NSAPasses.md" "$out/"
echo "docs: wrote $out/NSADialect.md and $out/NSAPasses.md"
