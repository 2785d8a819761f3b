#!/usr/bin/env bash
# kiln's GPU check, for the device machine (one H100, CUDA 13, CMake, Ninja,
# Python + PyTorch; no LLVM, no OpenBLAS/fmt dev files, no GoogleTest).
#
# The build happens on the development machine and travels with the call:
#   tools/gpu-check.sh --prepare     # here: build (-DKILN_WITH_LLVM=OFF) and
#                                    # bundle the test binary plus the shared
#                                    # libraries the device image may lack
#                                    # (libfmt.so.9, ...) into
#                                    # build-cuda/gpu-bundle; checks ldd
#   run(command="tools/gpu-check.sh", carry=["build-cuda/gpu-bundle"])
#   tools/gpu-check.sh --dry-run     # anywhere: check the bundle and list the
#                                    # steps without a GPU
# On the device it runs, each under a time limit (170 + 70 + 110 s, under
# the 6 minutes a check may take):
#   1. the GPU-labelled tests (kiln_cuda_runtime_tests: CudaExec.*, every op
#      and fused kernel vs the reference interpreter, 20 training steps),
#   2. the fused optimizer update over 16M and 64M params vs a D2D copy,
#   3. bench/gpu/torch_mlp.py: PyTorch eager and torch.compile timings,
# and writes summary.md (and logs) under $OUT (default ./gpu-check-out),
# printing the table last. GoogleTest is linked statically (Debian ships
# only libgtest.a); OpenBLAS is not linked by the CUDA-only test binary.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KILN_BUILD_DIR:-$root/build-cuda}"
bundle="$build/gpu-bundle"
out="${OUT:-$root/gpu-check-out}"
mode="run"

usage() {
  sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
--prepare) mode="prepare" ;;
--dry-run) mode="dry-run" ;;
-h | --help)
  usage
  exit 0
  ;;
"") ;;
*)
  echo "gpu-check.sh: unknown option '$1' (try --help)" >&2
  exit 2
  ;;
esac

# Libraries the device image provides itself (system and CUDA toolkit).
provided='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libstdc\+\+\.|libgcc_s\.|libz\.)'

prepare() {
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DKILN_BUILD_BENCH=OFF -DKILN_WITH_LLVM=OFF >/dev/null
  ninja -C "$build" -j"${JOBS:-2}" kiln_cuda_runtime_tests
  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib"
  cp "$build/tests/kiln_cuda_runtime_tests" "$bundle/bin/"
  strip "$bundle/bin/kiln_cuda_runtime_tests"
  local lib path
  while read -r lib path; do
    if [[ ! $lib =~ $provided ]] && [[ -n $path ]]; then
      cp -L "$path" "$bundle/lib/$lib"
      echo "bundled $lib (from $path)"
    fi
  done < <(ldd "$bundle/bin/kiln_cuda_runtime_tests" |
    awk '$2 == "=>" { print $1, $3 }')
  if ldd "$bundle/bin/kiln_cuda_runtime_tests" | grep -Eq 'libcuda\.so|libcublas|libnvrtc'; then
    echo "gpu-check.sh: the test binary links a CUDA library; it must dlopen them" >&2
    exit 1
  fi
  du -sh "$bundle"
  echo "carry: build-cuda/gpu-bundle (must stay under 64 MiB)"
}

check_bundle() {
  local bin="$bundle/bin/kiln_cuda_runtime_tests"
  if [[ ! -x $bin ]]; then
    echo "gpu-check.sh: no bundle at $bundle: run 'tools/gpu-check.sh --prepare' on the build machine and carry build-cuda/gpu-bundle" >&2
    exit 2
  fi
  export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ldd "$bin" | grep -q 'not found'; then
    echo "gpu-check.sh: missing shared libraries:" >&2
    ldd "$bin" | grep 'not found' >&2
    exit 2
  fi
}

have_gpu() {
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    return 0
  fi
  [[ -e /dev/nvidia0 ]]
}

if [[ $mode == prepare ]]; then
  prepare
  exit 0
fi

check_bundle
bin="$bundle/bin/kiln_cuda_runtime_tests"

if [[ $mode == dry-run ]]; then
  echo "gpu-check.sh --dry-run: bundle ok ($(du -sh "$bundle" | cut -f1))"
  "$bin" --gtest_list_tests | sed 's/^/  /'
  python3 -m py_compile "$root/bench/gpu/torch_mlp.py"
  echo "steps: CudaExec.* tests (240 s), CudaBench.* (90 s), torch_mlp.py (150 s)"
  if have_gpu; then echo "a GPU is present"; else echo "no GPU here: a real run would stop"; fi
  exit 0
fi

if ! have_gpu; then
  echo "gpu-check.sh: no NVIDIA GPU on this machine (nvidia-smi -L fails and no /dev/nvidia0); nothing to run" >&2
  exit 3
fi

mkdir -p "$out"
summary="$out/summary.md"
: >"$summary"
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1 || true

echo "== GPU tests" >&2
if timeout 170 "$bin" --gtest_filter='CudaBackend.*:CudaExec.*' \
  --gtest_output="xml:$out/tests.xml" >"$out/tests.log" 2>&1; then
  tests="pass"
else
  tests="FAIL (rc $?)"
  status=1
fi
tail -n 30 "$out/tests.log" >&2

echo "== fused optimizer benchmark" >&2
: >"$out/bench.md"
KILN_BENCH=1 KILN_BENCH_OUT="$out/bench.md" timeout 70 "$bin" \
  --gtest_filter='CudaBench.*' >"$out/bench.log" 2>&1 || status=1

echo "== PyTorch MLP" >&2
: >"$out/torch.md"
timeout 110 python3 "$root/bench/gpu/torch_mlp.py" --out "$out/torch.md" \
  >"$out/torch.log" 2>&1 || status=1

{
  echo "# kiln GPU check"
  echo
  echo "GPU: $(cat "$out/gpu.txt")"
  echo
  echo "GPU tests (CudaBackend.*, CudaExec.*): $tests ($(grep -c '^\[       OK' "$out/tests.log" || true) passed, $(grep -c '^\[  FAILED  \].*ms)' "$out/tests.log" || true) failed)"
  echo
  cat "$out/bench.md"
  echo
  cat "$out/torch.md"
} >"$summary"
cat "$summary"
exit "$status"
