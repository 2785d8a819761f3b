"""Inputs and the numpy reference for run/ops.kir.

usage: ops.py make DIR   writes DIR/{a,b,w}.npy
       ops.py check DIR  compares DIR/out{0..4}.npy with numpy
"""
import sys

import numpy as np

mode, d = sys.argv[1], sys.argv[2]
if mode == "make":
    # a > b in exactly 4 places, so the count output is known (CHECK line).
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]], dtype=np.float32)
    b = np.array([0.0, 0.0, 0.0], dtype=np.float32)
    np.save(f"{d}/a.npy", a)
    np.save(f"{d}/b.npy", b)
    np.save(f"{d}/w.npy", np.array([1.0, 2.0, 3.0]))
    sys.exit(0)

a = np.load(f"{d}/a.npy").astype(np.float64)
b = np.load(f"{d}/b.npy").astype(np.float64)
w = np.load(f"{d}/w.npy")
pos = a > b
sig = 1 / (1 + np.exp(-b))
mix = np.where(pos, np.exp(a), np.tanh(a * 0.5) - np.sqrt(sig))
colmax = a.max(axis=0, keepdims=True)
want = [mix, mix.T, np.int64(pos.sum()), colmax, w - colmax.reshape(3) * 0.25]
dtypes = [np.float32, np.float32, np.int64, np.float32, np.float64]
for i, (x, dt) in enumerate(zip(want, dtypes)):
    got = np.load(f"{d}/out{i}.npy")
    assert got.dtype == dt, (i, got.dtype, dt)
    assert got.shape == np.shape(x), (i, got.shape, np.shape(x))
    np.testing.assert_allclose(got, x, rtol=1e-6, atol=1e-6, err_msg=f"out{i}")
print("ops: outputs match numpy")
