"""Inputs and the reference for run/activations.test (erf, gelu in both
forms, clamp, reshape with -1), computed with Python's math.erf so that no
scipy is needed.

usage: activations.py make DIR   writes DIR/{x,h}.npy
       activations.py check DIR OUT  compares OUT/out{0..5}.npy
"""
import math
import sys

import numpy as np

mode, d = sys.argv[1], sys.argv[2]
if mode == "make":
    rng = np.random.default_rng(12)
    x = rng.uniform(-4, 4, (4, 16))
    x[0, :4] = [0.0, -0.5, 1.25, 3.0]  # on the bounds, and zero
    np.save(f"{d}/x.npy", x)
    np.save(f"{d}/h.npy", (x * 2).astype(np.float32))
    sys.exit(0)

x = np.load(f"{d}/x.npy")
h = np.load(f"{d}/h.npy").astype(np.float64)
erf = np.vectorize(math.erf)(x)
gelu = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
k = math.sqrt(2 / math.pi)
gelu_tanh = 0.5 * x * (1 + np.tanh(k * (x + 0.044715 * x**3)))
want = [erf, gelu, gelu_tanh, np.clip(x, -0.5, 1.25), np.clip(h, 0, 6),
        gelu_tanh.reshape(2, -1)]
for i, w in enumerate(want):
    got = np.load(f"{sys.argv[3]}/out{i}.npy")
    assert got.shape == w.shape, (i, got.shape, w.shape)
    tol = 1e-6 if got.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, w, rtol=tol, atol=tol, err_msg=f"out{i}")
print("activations: outputs match")
