#!/usr/bin/env bash
# Builds and runs every example project (examples/*/CMakeLists.txt) against an
# installed kiln, as a user would: `cmake --install` of a built tree into a
# temporary prefix, then each example configured with only
# CMAKE_PREFIX_PATH=<prefix> (no path into the source or build tree), built,
# and run (each exits non-zero when its model does not learn). Also compiles
# every installed header on its own, so a header that includes something the
# package does not install fails here, and checks kiln.pc.
#
#   bash tools/examples.sh [BUILD_DIR]     (default build/release, built)
#
# KILN_EXAMPLES_PREFIX=<dir> installs there instead of a temporary directory
# (kept afterwards).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src=$PWD
build=${1:-build/release}
jobs=$(nproc 2>/dev/null || echo 2)

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-examples.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=${KILN_EXAMPLES_PREFIX:-$work/prefix}

echo "::: install $build -> $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log"; exit 1; }

echo "::: every installed header compiles on its own"
find "$prefix/include/kiln" -name '*.h' | sort >"$work/headers"
# shellcheck disable=SC2016
xargs -P "$jobs" -I{} sh -c '
  printf "#include \"%s\"\n" "$1" |
    ${CXX:-c++} -std=c++20 -fsyntax-only -I"$2/include/kiln" -I"$2/include" \
      -x c++ - || { echo "error: $1 does not compile on its own"; exit 255; }
' sh {} "$prefix" <"$work/headers"
echo "    $(wc -l <"$work/headers") headers"

pc=$(find "$prefix" -name kiln.pc | head -1)
[ -n "$pc" ] || { echo "error: no kiln.pc under $prefix"; exit 1; }
if command -v pkg-config >/dev/null; then
  echo "::: example train_loop, built with pkg-config --cflags --libs kiln"
  read -ra pcflags <<<"$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs kiln)"
  ${CXX:-c++} -O1 "$src/examples/train_loop/main.cpp" "${pcflags[@]}" \
    -Wl,-rpath,"$(dirname "$(dirname "$pc")")" -o "$work/train_loop_pc"
  (cd "$work" && "$work/train_loop_pc" | tail -1)
else
  echo "::: pkg-config is not installed: $pc not checked"
fi

for dir in "$src"/examples/*/; do
  [ -f "$dir/CMakeLists.txt" ] || continue
  name=$(basename "$dir")
  echo "::: example $name"
  # A copy outside the source tree, so nothing can reach kiln's sources by a
  # relative path.
  cp -r "$dir" "$work/src-$name"
  cmake -S "$work/src-$name" -B "$work/build-$name" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER_LAUNCHER= >"$work/configure-$name.log" ||
    { cat "$work/configure-$name.log"; exit 1; }
  cmake --build "$work/build-$name" -j "$jobs"
  (cd "$work" && "$work/build-$name/$name")
done
# libkiln.a: the same program through `COMPONENTS static` and
# kiln::kiln_static (kilnConfig.cmake finds LLVM, OpenBLAS, zlib, ...); it
# must not need libkiln.so at run time.
echo "::: example train_loop, linked with kiln::kiln_static"
mkdir -p "$work/src-static"
cat >"$work/src-static/CMakeLists.txt" <<EOS
cmake_minimum_required(VERSION 3.25)
project(kiln_example_static LANGUAGES CXX)
find_package(kiln CONFIG REQUIRED COMPONENTS static)
add_executable(train_loop_static $work/src-train_loop/main.cpp)
target_link_libraries(train_loop_static PRIVATE kiln::kiln_static)
EOS
cmake -S "$work/src-static" -B "$work/build-static" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER_LAUNCHER= >"$work/configure-static.log" ||
  { cat "$work/configure-static.log"; exit 1; }
cmake --build "$work/build-static" -j "$jobs"
if readelf -d "$work/build-static/train_loop_static" | grep -q 'libkiln\.so'; then
  echo "error: train_loop_static needs libkiln.so"
  exit 1
fi
(cd "$work" && "$work/build-static/train_loop_static")
echo "::: examples passed"
