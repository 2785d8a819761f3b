#!/usr/bin/env bash
# Installs the Debian 12 packages kiln needs to build and test. Idempotent: it
# asks apt only for the packages that are missing, and runs `apt-get update`
# only when there is something to install.
#
# Usage: tools/install-deps.sh [--with-torch]
#   --with-torch  also install libtorch-dev and python3-torch (optional
#                 cross-checks against PyTorch) and libdnnl-dev (oneDNN):
#                 the benchmark peers kiln_torch_peer and kiln_conv_onednn
#                 that `kiln bench` compares against (kiln never links them)
set -euo pipefail

packages=(
  cmake ninja-build g++
  libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  llvm-19-dev llvm-19-tools
  libopenblas-dev zlib1g-dev libcli11-dev nlohmann-json3-dev
  dataset-fashion-mnist
  python3 python3-numpy
  clang-format shellcheck ccache pkg-config
  graphviz
)
torch_packages=(libtorch-dev python3-torch libdnnl-dev)

for arg in "$@"; do
  case "$arg" in
  --with-torch) packages+=("${torch_packages[@]}") ;;
  -h | --help)
    sed -n '2,10p' "$0"
    exit 0
    ;;
  *)
    echo "install-deps.sh: unknown argument '$arg' (try --help)" >&2
    exit 2
    ;;
  esac
done

installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ "$status" == "install ok installed" ]]
}

missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps.sh: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  sudo=(sudo)
fi

echo "install-deps.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
