"""`kiln train --device cuda` on the emulated device against the CPU.

usage: compare_train.py KILN [--epochs N] [--train-subset N] [--test-subset N]

Trains the built-in MLP on a Fashion-MNIST subset with the same seed on the
CPU backend (the reference interpreter when kiln has no CPU backend) and on
CUDA (the environment points kiln at the emulated device), and checks that
every epoch's train loss agrees within 1e-3 relative and the test accuracy
within 0.5 points. Exit 77 (ctest: skipped) when the data set is missing.
No checkpoint is written (that path is issue 11, item 2).
"""
import argparse
import os
import re
import subprocess
import sys

p = argparse.ArgumentParser()
p.add_argument("kiln")
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--train-subset", type=int, default=1024)
p.add_argument("--test-subset", type=int, default=512)
a = p.parse_args()

data = os.environ.get("KILN_DATA_DIR") or "/usr/share/datasets/fashion-mnist"
if not os.path.isfile(os.path.join(data, "train-images-idx3-ubyte.gz")):
    print(f"no Fashion-MNIST in {data}: skipped")
    sys.exit(77)


def train(device):
    cmd = [a.kiln, "train", "--device", device, "--epochs", str(a.epochs),
           "--train-subset", str(a.train_subset), "--test-subset",
           str(a.test_subset), "--checkpoint", "", "--seed", "3",
           "--data-dir", data]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    print(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    if r.returncode != 0:
        return None
    return [(float(m[1]), float(m[2])) for m in re.finditer(
        r"^epoch \d+/\d+\s+train loss (\S+)\s+test accuracy (\S+)", r.stdout,
        re.M)], r.stdout


ref = train("cpu") or train("interpreter")
got = train("cuda")
if not ref or not got:
    sys.exit("a training run failed")
if "backend cuda" not in got[1]:
    sys.exit("the cuda run did not use the CUDA backend")
if len(ref[0]) != a.epochs or len(got[0]) != a.epochs:
    sys.exit(f"expected {a.epochs} epoch lines")
bad = []
for e, ((rl, ra), (gl, ga)) in enumerate(zip(ref[0], got[0]), 1):
    if abs(gl - rl) > 1e-3 * abs(rl) + 1e-4:
        bad.append(f"epoch {e}: train loss {gl} on cuda, {rl} on the reference")
    if abs(ga - ra) > 0.005 + 1e-9:
        bad.append(f"epoch {e}: test accuracy {ga} on cuda, {ra} on the "
                   "reference")
if bad:
    sys.exit("\n".join(bad))
print("cuda matches the reference")
