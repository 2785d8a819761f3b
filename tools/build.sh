#!/usr/bin/env bash
# Installs the dependencies, then configures and builds the release preset
# (build/release). Extra arguments go to `cmake --build`, e.g. `--target kiln`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/install-deps.sh
cmake --preset release
cmake --build --preset release "$@"
