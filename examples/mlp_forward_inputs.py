"""Writes random inputs for examples/mlp_forward.kir as .npy files and prints
the `kiln run` command that uses them.

usage: python3 examples/mlp_forward_inputs.py DIR [--seed N]

The weights use PyTorch's nn.Linear initialisation (uniform in
+-1/sqrt(fan_in)), so the printed loss starts near log(10) = 2.30 as for an
untrained classifier.
"""
import argparse
import os

import numpy as np

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("dir")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
os.makedirs(args.dir, exist_ok=True)
rng = np.random.default_rng(args.seed)


def linear(fan_in, fan_out):
    bound = 1 / np.sqrt(fan_in)
    w = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
    b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return w, b


arrays = {
    "x": rng.uniform(0, 1, (8, 784)).astype(np.float32),
    "y": rng.integers(0, 10, 8).astype(np.int32),
}
arrays["fc1.weight"], arrays["fc1.bias"] = linear(784, 128)
arrays["fc2.weight"], arrays["fc2.bias"] = linear(128, 10)

feeds = []
for name, a in arrays.items():
    path = os.path.join(args.dir, f"{name}.npy")
    np.save(path, a)
    feeds.append(f"--input {name}={path}")
here = os.path.dirname(os.path.abspath(__file__))
print("kiln run", os.path.join(here, "mlp_forward.kir"), " ".join(feeds),
      "--out", args.dir)
