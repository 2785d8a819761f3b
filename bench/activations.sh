#!/usr/bin/env bash
# tanh, erf, gelu and gelu (tanh form) of 1M f32 on kiln's CPU backend
# (`kiln run --profile`: time per launch of the third run's step) against
# torch at 1 and 2 threads (median of 30 calls), in one run of this script.
# Needs a python3 with torch and numpy (/usr/bin/python3 with Debian's
# python3-torch). Usage: bash bench/activations.sh [KILN] (default
# build/release/tools/kiln).
set -euo pipefail
kiln=${1:-build/release/tools/kiln}
py=${KILN_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/act.kir" <<'KIR'
graph @act(%x: f32[1000000]) {
  %t = tanh(%x) : f32[1000000]
  %e = erf(%x) : f32[1000000]
  %g = gelu(%x) : f32[1000000]
  %h = gelu(%x) {approximate = "tanh"} : f32[1000000]
  return %t, %e, %g, %h
}
KIR
"$py" -c "import numpy as np; np.save('$work/x.npy', np.random.default_rng(0).standard_normal(1000000).astype(np.float32))"
for _ in 1 2 3; do
  table=$("$kiln" run "$work/act.kir" --input x="$work/x.npy" --device cpu \
    --profile --trace '' 2>&1 | grep -E '^\| [0-3] \|')
done
echo "kiln (CPU backend, time per launch):"
echo "$table"
"$py" - "$work/x.npy" <<'PY'
import sys, time, torch, numpy as np
x = torch.from_numpy(np.load(sys.argv[1]))
gelu = torch.nn.functional.gelu
for threads in (1, 2):
    torch.set_num_threads(threads)
    for name, f in [("tanh", torch.tanh), ("erf", torch.erf), ("gelu", gelu),
                    ("gelu tanh", lambda v: gelu(v, approximate="tanh"))]:
        ts = []
        for _ in range(30):
            t0 = time.perf_counter()
            f(x)
            ts.append(time.perf_counter() - t0)
        print(f"torch threads={threads} {name}: {sorted(ts)[15] * 1e6:.1f} us")
PY
