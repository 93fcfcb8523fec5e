#!/usr/bin/env bash
# The main job: set up and build, then compile the example NSA layer (the
# paper's configuration) through the available passes (decomposition, GQA
# grouping, tiling into block-level programs) and print the result.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${NSA_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
example=$root/examples/nsa_paper.mlir
echo "== $example through nsa-decompose, nsa-group-gqa, nsa-tile"
"$build/bin/nsa-opt" "$example" --nsa-decompose --nsa-group-gqa --nsa-tile --cse
