#!/usr/bin/env bash
# tools/gpu-check.sh: kiln's GPU check, one call of at most 6 minutes on a
# lent device machine (one H200, CUDA 13, Python + PyTorch 2.11; no LLVM, no
# OpenBLAS/fmt dev files, no GoogleTest, nothing can be installed there).
#
# Usage:
#   tools/gpu-check.sh --prepare      here: build a CUDA-only kiln
#                                     (-DKILN_WITH_LLVM=OFF) into build-cuda
#                                     and bundle the binaries, the shared
#                                     libraries the device may lack and a
#                                     Fashion-MNIST subset into
#                                     build-cuda/gpu-bundle (< 64 MiB)
#   run(command="tools/gpu-check.sh", carry=["build-cuda/gpu-bundle"])
#                                     there: every step below, a markdown
#                                     table in $OUT/summary.md, printed
#                                     last; logs.txt, kiln.tsv, torch.tsv
#                                     and tests.xml beside it (the device
#                                     tool brings back 8 files at most)
#   tools/gpu-check.sh --dry-run      anywhere: list the steps and their
#                                     time limits, run nothing, exit 0
# Options:
#   --out DIR       where summary.md and the logs go (default: $OUT, else
#                   build-cuda/gpu-check-out)
#   --bundle DIR    the bundle to run (default: build-cuda/gpu-bundle)
#   --emulated DIR  run on the emulated CUDA device of the build folder DIR
#                   (tests/cudaemu): every line says EMULATED, the speed rows
#                   are meaningless there, and the check still FAILS (it is
#                   not a GPU); shows the correctness steps run end to end
#   -h, --help      this text
# Environment: KILN_NVIDIA_SMI and KILN_COMPUTE_SANITIZER name other
# nvidia-smi / compute-sanitizer commands (the lit tests use stand-ins).
#
# It cannot report green untested: a step that does not run (no GPU, no
# bundle, no compute-sanitizer, no PyTorch, a skipped or missing test, a
# time limit hit) is a FAIL row, any FAIL makes the exit code 1, and the
# targets (H200: fused update >= 90% of device-copy bandwidth; kiln's step
# faster than torch.compile(reduce-overhead) at batch 64) are marked
# pass/FAIL next to the numbers.
set -euo pipefail

# The whole script is one compound command, read before it runs, so an edit
# to this file during a run cannot change the run.
{

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KILN_BUILD_DIR:-$root/build-cuda}"
bundle="$build/gpu-bundle"
out="${OUT:-$build/gpu-check-out}"
mode="run"
emu_build=""

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
  case "$1" in
  --prepare) mode="prepare" ;;
  --dry-run) mode="dry-run" ;;
  --out)
    out="${2:?--out needs a folder}"
    shift
    ;;
  --bundle)
    bundle="${2:?--bundle needs a folder}"
    shift
    ;;
  --emulated)
    emu_build="${2:?--emulated needs a build folder}"
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "gpu-check.sh: unknown option '$1' (try --help)" >&2
    exit 2
    ;;
  esac
  shift
done

# The steps: name, time limit in seconds, what runs. The limits add up to
# 350 s, under the 6 minutes of one call with room for start-up.
steps=(
  "env|15|GPU name and driver (nvidia-smi); kiln_gpu_probe: driver version, device, and the path and version of libcuda, NVRTC and cuBLAS as loaded (dl_iterate_phdr)"
  "tests|90|kiln_cuda_runtime_tests CudaBackend.*:CudaExec.* on the device: every listed test must print OK; any [  SKIPPED ], failure or missing test fails"
  "memcheck|25|compute-sanitizer --tool memcheck on CudaExec.TrainingStepMatchesTheInterpreterFor20Steps (missing tool fails)"
  "racecheck|25|compute-sanitizer --tool racecheck on the same training-step test"
  "synccheck|25|compute-sanitizer --tool synccheck on the same training-step test"
  "train|50|compare_train.py: kiln train --device cuda vs the reference interpreter on a fixed Fashion-MNIST subset and seed (loss 1e-3 relative, accuracy 0.5 points), the CUDA checkpoint reloaded on the interpreter, exit code 0"
  "bench|35|kiln_gpu_bench: kiln MLP step at batch 64/256/1024 (host batch copied each step, loss read each step; median, p90); fused multi-tensor SGD update at 16M/64M/256M params vs cuMemcpyDtoD (CUDA events); NVRTC cold compile, then a new process's warm-cache start"
  "torch|85|bench/gpu/torch_mlp.py: PyTorch eager and torch.compile(mode=reduce-overhead), batch copied from pinned host memory and loss.item() each step, and compile with the data resident on the GPU (upper bound), batch 64/256/1024"
)

limit_of() {
  local s
  for s in "${steps[@]}"; do
    if [[ ${s%%|*} == "$1" ]]; then
      s=${s#*|}
      echo "${s%%|*}"
      return
    fi
  done
  echo "gpu-check.sh: no step $1" >&2
  exit 2
}

if [[ $mode == dry-run ]]; then
  total=0
  echo "gpu-check.sh --dry-run: the steps a run takes (nothing is run)"
  for s in "${steps[@]}"; do
    name=${s%%|*}
    rest=${s#*|}
    lim=${rest%%|*}
    total=$((total + lim))
    printf '  step %-9s limit %3d s  %s\n' "$name" "$lim" "${rest#*|}"
  done
  echo "total time limit: $total s (one call: 360 s at most)"
  echo "bundle: $bundle$([[ -x $bundle/bin/kiln_cuda_runtime_tests ]] && echo ' (present)' || echo ' (absent: run --prepare here first)')"
  echo "summary: $out/summary.md (markdown table; exit 1 on any FAIL)"
  echo "targets (H200): fused update >= 90% of device-copy bandwidth; kiln step < torch.compile(reduce-overhead) at batch 64"
  exit 0
fi

# Libraries the device image provides itself (system and CUDA toolkit).
provided='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libstdc\+\+\.|libgcc_s\.|libz\.)'
bins=(tools/kiln tests/kiln_cuda_runtime_tests bench/gpu/kiln_gpu_probe
  bench/gpu/kiln_gpu_bench)

# A Fashion-MNIST subset (the first N examples, IDX headers rewritten) so
# the data travels inside the 64 MiB.
subset_idx() { # src dst count
  python3 - "$1" "$2" "$3" <<'EOF'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with gzip.open(src, "rb") as f:
    magic, = struct.unpack(">I", f.read(4))
    nd = magic & 0xFF
    dims = list(struct.unpack(">%dI" % nd, f.read(4 * nd)))
    per = 1
    for d in dims[1:]:
        per *= d
    n = min(n, dims[0])
    body = f.read(n * per)
dims[0] = n
with gzip.open(dst, "wb") as f:
    f.write(struct.pack(">I", magic) + struct.pack(">%dI" % nd, *dims) + body)
EOF
}

prepare() {
  local data="${KILN_DATA_DIR:-/usr/share/datasets/fashion-mnist}"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DKILN_BUILD_BENCH=ON -DKILN_WITH_LLVM=OFF >/dev/null
  ninja -C "$build" -j"${JOBS:-2}" kiln kiln_cuda_runtime_tests \
    kiln_gpu_probe kiln_gpu_bench
  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/data"
  local b lib path
  for b in "${bins[@]}"; do
    cp "$build/$b" "$bundle/bin/"
    strip "$bundle/bin/${b##*/}"
  done
  for b in "$bundle"/bin/*; do
    while read -r lib path; do
      if [[ ! $lib =~ $provided ]] && [[ -n $path ]] && [[ ! -e $bundle/lib/$lib ]]; then
        cp -L "$path" "$bundle/lib/$lib"
        echo "bundled $lib (from $path)"
      fi
    done < <(ldd "$b" | awk '$2 == "=>" { print $1, $3 }')
    if ldd "$b" | grep -Eq 'libcuda\.so|libcublas|libnvrtc'; then
      echo "gpu-check.sh: $b links a CUDA library; it must dlopen them" >&2
      exit 1
    fi
  done
  cp "$root/tests/cudaemu/compare_train.py" "$bundle/bin/"
  subset_idx "$data/train-images-idx3-ubyte.gz" "$bundle/data/train-images-idx3-ubyte.gz" 4096
  subset_idx "$data/train-labels-idx1-ubyte.gz" "$bundle/data/train-labels-idx1-ubyte.gz" 4096
  subset_idx "$data/t10k-images-idx3-ubyte.gz" "$bundle/data/t10k-images-idx3-ubyte.gz" 1024
  subset_idx "$data/t10k-labels-idx1-ubyte.gz" "$bundle/data/t10k-labels-idx1-ubyte.gz" 1024
  du -sh "$bundle"
  local kib
  kib=$(du -sk "$bundle" | cut -f1)
  if ((kib > 60 * 1024)); then
    echo "gpu-check.sh: the bundle is ${kib} KiB, over what one call may carry" >&2
    exit 1
  fi
  echo "carry: ${bundle#"$root"/} (must stay under 64 MiB)"
}

if [[ $mode == prepare ]]; then
  prepare
  exit 0
fi

# ---------------------------------------------------------------- a run --
mkdir -p "$out"
summary="$out/summary.md"
rows="$out/rows.md"
: >"$rows"
status=0
tag=""
if [[ -n $emu_build ]]; then
  tag="EMULATED "
fi

row() { # step result detail
  printf '| %s | %s%s | %s |\n' "$1" "$tag" "$2" "$3" >>"$rows"
  if [[ $2 != pass* ]] && [[ $2 != info* ]]; then
    status=1
  fi
  echo "gpu-check: $1: $tag$2 ${3:+($3)}" >&2
}

# The commands, from the bundle or (emulated) the build folder.
if [[ -n $emu_build ]]; then
  emu_build="$(cd "$emu_build" && pwd)"
  kiln="$emu_build/tools/kiln"
  tests_bin="$emu_build/tests/kiln_cuda_runtime_tests"
  probe="$emu_build/bench/gpu/kiln_gpu_probe"
  benchb="$emu_build/bench/gpu/kiln_gpu_bench"
  compare="$root/tests/cudaemu/compare_train.py"
  data="${KILN_DATA_DIR:-/usr/share/datasets/fashion-mnist}"
  export KILN_CUDA_DRIVER="$emu_build/tests/cudaemu/libkiln_cudaemu_driver.so"
  export KILN_NVRTC="$emu_build/tests/cudaemu/libkiln_cudaemu_nvrtc.so"
  export KILN_CUBLAS="$emu_build/tests/cudaemu/libkiln_cudaemu_cublas.so"
  export KILN_KERNEL_CACHE=0
  scale=6 # fibers on 2 cores: the limits stretched, and said so
else
  kiln="$bundle/bin/kiln"
  tests_bin="$bundle/bin/kiln_cuda_runtime_tests"
  probe="$bundle/bin/kiln_gpu_probe"
  benchb="$bundle/bin/kiln_gpu_bench"
  compare="$bundle/bin/compare_train.py"
  data="$bundle/data"
  export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  scale=1
fi

lim() { echo $(($(limit_of "$1") * scale)); }

# Runs a step's command under its limit, its output to $out/<step>.log.
# Returns the command's exit code (124: the limit was hit).
run_step() { # step cmd...
  local name=$1 rc=0
  shift
  timeout --kill-after=5 "$(lim "$name")" "$@" >"$out/$name.log" 2>&1 || rc=$?
  return "$rc"
}

why_rc() { # rc step
  case $1 in
  124 | 137) echo "time limit of $(lim "$2") s hit" ;;
  77) echo "exit 77 (skipped: a skip is a failure here)" ;;
  *) echo "exit code $1" ;;
  esac
}

gpu=""
if [[ -z $emu_build ]]; then
  smi="${KILN_NVIDIA_SMI:-nvidia-smi}"
  if command -v "$smi" >/dev/null 2>&1 &&
    gpu=$("$smi" --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1) &&
    [[ -n $gpu ]]; then
    :
  else
    gpu=""
  fi
fi

missing=""
for b in "$kiln" "$tests_bin" "$probe" "$benchb"; do
  [[ -x $b ]] || missing+=" ${b#"$root"/}"
done

if [[ -z $emu_build ]] && [[ -z $gpu ]]; then
  echo "gpu-check: no GPU: nvidia-smi is missing or lists no device; every step FAILS" >&2
  for s in "${steps[@]}"; do
    row "${s%%|*}" "FAIL" "not run: no GPU on this machine (nvidia-smi)"
  done
elif [[ -n $missing ]]; then
  for s in "${steps[@]}"; do
    row "${s%%|*}" "FAIL" "not run: missing${missing} (run tools/gpu-check.sh --prepare and carry the bundle)"
  done
else
  # -------------------------------------------------------------- env --
  if run_step env "$probe"; then
    row env "pass" "${gpu:-emulated device}; $(grep -E '^(device|driver|libcuda|nvrtc|cublas):' "$out/env.log" | tr '\n' ';' | sed 's/;$//; s/|/\//g')"
  else
    rc=$?
    row env "FAIL" "kiln_gpu_probe: $(why_rc "$rc" env); $(tail -n 1 "$out/env.log" | tr '|' '/')"
  fi

  # ------------------------------------------------------------ tests --
  # Every listed test must print OK: a skipped, failed or missing one fails
  # (Debian's GoogleTest 1.12 has no --gtest_fail_if_no_test_run: counted).
  filter='CudaBackend.*:CudaExec.*'
  expected=$("$tests_bin" --gtest_filter="$filter" --gtest_list_tests 2>/dev/null |
    grep -c '^  ' || true)
  rc=0
  run_step tests "$tests_bin" --gtest_filter="$filter" \
    --gtest_output="xml:$out/tests.xml" || rc=$?
  passed=$(grep -c '^\[       OK \]' "$out/tests.log" || true)
  skipped=$(grep -c '^\[  SKIPPED \].*(' "$out/tests.log" || true)
  failed=$(grep -c '^\[  FAILED  \].*(' "$out/tests.log" || true)
  counts="$passed of $expected passed, $skipped skipped, $failed failed"
  if ((rc == 0 && skipped == 0 && failed == 0 && passed > 0 && passed == expected)); then
    row tests "pass" "$counts"
  else
    row tests "FAIL" "$counts; $(why_rc "$rc" tests)"
  fi

  # ------------------------------------------------------- sanitizers --
  sanitizer="${KILN_COMPUTE_SANITIZER:-}"
  if [[ -n $sanitizer ]]; then
    command -v "$sanitizer" >/dev/null 2>&1 || sanitizer=""
  elif command -v compute-sanitizer >/dev/null 2>&1; then
    sanitizer=compute-sanitizer
  elif [[ -x /usr/local/cuda/bin/compute-sanitizer ]]; then
    sanitizer=/usr/local/cuda/bin/compute-sanitizer
  fi
  for tool in memcheck racecheck synccheck; do
    if [[ -z $sanitizer ]] || [[ -n $emu_build ]]; then
      row "$tool" "FAIL" "not run: compute-sanitizer not found${emu_build:+ (and it cannot check an emulated device)}"
      continue
    fi
    rc=0
    run_step "$tool" "$sanitizer" --tool "$tool" --error-exitcode 3 \
      "$tests_bin" \
      --gtest_filter='CudaExec.TrainingStepMatchesTheInterpreterFor20Steps' ||
      rc=$?
    if ((rc == 0)) && grep -q '^\[  PASSED  \] 1 test' "$out/$tool.log" &&
      ! grep -q '^\[  SKIPPED \]' "$out/$tool.log"; then
      row "$tool" "pass" "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool.log" | head -n 1)"
    else
      row "$tool" "FAIL" "$(why_rc "$rc" "$tool"); $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|SKIPPED|FAILED' "$out/$tool.log" | head -n 1)"
    fi
  done

  # ------------------------------------------------------------ train --
  rc=0
  KILN_DATA_DIR="$data" run_step train python3 "$compare" "$kiln" \
    --train-subset 1024 --test-subset 512 || rc=$?
  if ((rc == 0)); then
    row train "pass" "$(tail -n 1 "$out/train.log" | tr '|' '/')"
  else
    row train "FAIL" "$(why_rc "$rc" train); $(tail -n 1 "$out/train.log" | tr '|' '/')"
  fi

  # ------------------------------------------------------------ bench --
  rc=0
  # An empty kernel cache, so the first compile is a cold NVRTC compile.
  cache=$(mktemp -d "${TMPDIR:-/tmp}/kiln-gpu-check-cache.XXXXXX")
  quick=()
  [[ -z $emu_build ]] || quick=(--quick) # a few samples, a 256K update
  KILN_CACHE_DIR="$cache" run_step bench "$benchb" --tsv "$out/kiln.tsv" \
    "${quick[@]}" || rc=$?
  if ((rc == 0)); then
    row bench "pass" "ran; numbers below"
  else
    row bench "FAIL" "$(why_rc "$rc" bench); $(tail -n 1 "$out/bench.log" | tr '|' '/')"
  fi
  rm -rf "$cache"

  # ------------------------------------------------------------ torch --
  rc=0
  if [[ -n $emu_build ]]; then
    row torch "FAIL" "not run: PyTorch cannot use an emulated device"
  else
    PYTHONUNBUFFERED=1 run_step torch python3 "$root/bench/gpu/torch_mlp.py" \
      --tsv "$out/torch.tsv" || rc=$?
    if ((rc == 0)); then
      row torch "pass" "$(head -n 1 "$out/torch.log" | tr '|' '/')"
    else
      row torch "FAIL" "$(why_rc "$rc" torch); $(tail -n 1 "$out/torch.log" | tr '|' '/')"
    fi
  fi
fi

# ---------------------------------------------------------- the table --
# kiln.tsv / torch.tsv rows: what<TAB>size<TAB>median_ms<TAB>p90_ms<TAB>GB/s
tsv_get() { # what size column (3 median, 4 p90, 5 GB/s)
  { cat "$out/kiln.tsv" "$out/torch.tsv" 2>/dev/null || true; } |
    awk -F'\t' -v w="$1" -v s="$2" -v c="$3" \
      '$1 == w && $2 == s { print $c; exit }'
}
{
  echo "# kiln GPU check${emu_build:+ (EMULATED DEVICE: not a GPU, no speed numbers mean anything)}"
  echo
  if [[ -n $gpu ]]; then
    echo "GPU: $gpu"
  elif [[ -n $emu_build ]]; then
    echo "GPU: none; EMULATED device (tests/cudaemu, $emu_build)"
  else
    echo "GPU: none found (no GPU: nvidia-smi missing or lists no device)"
  fi
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo "| step | result | detail |"
  echo "| --- | --- | --- |"
  cat "$rows"
  if [[ -s $out/kiln.tsv ]] || [[ -s $out/torch.tsv ]]; then
    echo
    echo "| measurement | size | median ms | p90 ms | GB/s |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    for b in 64 256 1024; do
      for w in kiln_step torch_eager torch_compile_ro torch_compile_ro_resident; do
        m=$(tsv_get "$w" "$b" 3)
        [[ -z $m ]] || echo "| $tag$w | batch $b | $m | $(tsv_get "$w" "$b" 4) | - |"
      done
    done
    for n in 256K 16M 64M 256M; do
      for w in fused_update d2d_copy; do
        m=$(tsv_get "$w" "$n" 3)
        [[ -z $m ]] || echo "| $tag$w | $n params | $m | $(tsv_get "$w" "$n" 4) | $(tsv_get "$w" "$n" 5) |"
      done
    done
    for w in nvrtc_cold warm_cache_start; do
      m=$(tsv_get "$w" 64 3)
      [[ -z $m ]] || echo "| $tag$w: compile + first MLP step | batch 64 | $m | - | - |"
    done
  fi
  echo
  echo "| target (H200) | measured | result |"
  echo "| --- | --- | --- |"
  ratios="" below=0
  for n in 16M 64M 256M; do
    f=$(tsv_get fused_update "$n" 5)
    c=$(tsv_get d2d_copy "$n" 5)
    if [[ -n $f ]] && [[ -n $c ]]; then
      r=$(awk -v f="$f" -v c="$c" 'BEGIN { printf "%.1f", 100 * f / c }')
      ratios+="$n: $r%; "
      awk -v r="$r" 'BEGIN { exit !(r < 90) }' && below=1
    else
      ratios+="$n: not measured; "
      below=1
    fi
  done
  if ((below == 0)) && [[ -z $emu_build ]]; then
    echo "| fused update >= 90% of device-copy bandwidth | $ratios | pass |"
  else
    echo "| fused update >= 90% of device-copy bandwidth | $ratios | ${tag}FAIL |"
  fi
  k=$(tsv_get kiln_step 64 3)
  t=$(tsv_get torch_compile_ro 64 3)
  if [[ -n $k ]] && [[ -n $t ]] && [[ -z $emu_build ]] &&
    awk -v k="$k" -v t="$t" 'BEGIN { exit !(k < t) }'; then
    echo "| kiln step < torch.compile(reduce-overhead), batch 64 | $k ms vs $t ms | pass |"
  else
    echo "| kiln step < torch.compile(reduce-overhead), batch 64 | ${k:-not measured} ms vs ${t:-not measured} ms | ${tag}FAIL |"
  fi
} >"$summary"
if grep -q 'FAIL |$' "$summary"; then
  status=1
fi
echo >>"$summary"
if ((status == 0)); then
  echo "Overall: pass" >>"$summary"
else
  echo "Overall: ${tag}FAIL (see the FAIL rows and the logs under $out)" >>"$summary"
fi
# The device tool brings back at most 8 files from $OUT: the logs go into
# one file (the last 3000 lines of each).
for f in "$out"/*.log; do
  [[ -f $f ]] || continue
  echo "==== ${f##*/} (last 3000 lines)"
  tail -n 3000 "$f"
  rm -f "$f"
done >"$out/logs.txt"
rm -f "$rows"
cat "$summary"
exit "$status"
}
