#!/usr/bin/env bash
# The README's first command: installs the dependencies, builds the release
# preset and runs the main job, `kiln train` (the MLP on Fashion-MNIST).
# Extra arguments go to `kiln train`, e.g. `--epochs 1` or `--device cpu`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/install-deps.sh
cmake --preset release
cmake --build --preset release --target kiln
exec build/release/tools/kiln train "$@"
