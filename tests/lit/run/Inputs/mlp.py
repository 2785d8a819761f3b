"""Inputs and the numpy reference for run/mlp.kir.

usage: mlp.py make DIR   writes DIR/{x,y,w1,b1,w2,b2}.npy
       mlp.py check DIR  compares DIR/out{0,1,2}.npy with numpy
"""
import sys

import numpy as np

mode, d = sys.argv[1], sys.argv[2]
if mode == "make":
    rng = np.random.default_rng(7)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    np.save(f"{d}/x.npy", f32(4, 3))
    np.save(f"{d}/y.npy", np.array([0, 1, 1, 0], dtype=np.int32))
    np.save(f"{d}/w1.npy", f32(3, 5))
    np.save(f"{d}/b1.npy", f32(5))
    np.save(f"{d}/w2.npy", f32(5, 2))
    np.save(f"{d}/b2.npy", f32(2))
    sys.exit(0)

a = {k: np.load(f"{d}/{k}.npy").astype(np.float64)
     for k in ["x", "w1", "b1", "w2", "b2"]}
y = np.load(f"{d}/y.npy")
h = np.maximum(a["x"] @ a["w1"] + a["b1"], 0)
logits = h @ a["w2"] + a["b2"]
shifted = logits - logits.max(axis=1, keepdims=True)
logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
loss = -logp[np.arange(4), y].mean()
probs = np.exp(logp)

outs = [np.load(f"{d}/out{i}.npy") for i in range(3)]
for got, want, name in zip(outs, [loss, probs, h], ["loss", "probs", "h"]):
    assert got.dtype == np.float32, (name, got.dtype)
    assert got.shape == np.shape(want), (name, got.shape, np.shape(want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
print("mlp: outputs match numpy")
