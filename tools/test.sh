#!/usr/bin/env bash
# The README's test command: installs the dependencies, builds the release
# preset and runs every test with ctest. Exits non-zero when anything fails.
# Extra arguments go to ctest, e.g. `-L ir` or `-R Npy`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/install-deps.sh
cmake --preset release
cmake --build --preset release
ctest --preset release "$@"
