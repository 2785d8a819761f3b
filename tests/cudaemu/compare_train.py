"""`kiln train --device cuda` on the emulated device against the CPU, and its
checkpoint resumed on the CPU.

usage: compare_train.py KILN [--train-subset N] [--test-subset N]

With the same seed and a constant learning rate (--schedule none, so a run
of 1 epoch is the first epoch of a run of 2):
  1. the CPU backend (the reference interpreter when kiln has no CPU
     backend) trains 1 epoch and, separately, 2 epochs;
  2. CUDA (the environment points kiln at the emulated device) trains 1
     epoch: its train loss agrees with the CPU's within 1e-3 relative, its
     test accuracy within 0.5 points, and its checkpoint holds the CPU's
     weights and momentum buffers (not the initial weights and zeros: issue
     11, item 2, the device copies must be written back before saving);
  3. the CPU resumes the CUDA checkpoint for the second epoch, which must
     agree with the CPU-only run's second epoch in the same way;
  4. CUDA and the CPU train 2 epochs with the cosine schedule (a new
     learning rate every step, read by the replayed CUDA graph), no
     checkpoint: every epoch agrees in the same way.
Exit 77 (ctest: skipped) when the data set is missing.
"""
import argparse
import array
import atexit
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

p = argparse.ArgumentParser()
p.add_argument("kiln")
p.add_argument("--train-subset", type=int, default=1024)
p.add_argument("--test-subset", type=int, default=512)
a = p.parse_args()

data = os.environ.get("KILN_DATA_DIR") or "/usr/share/datasets/fashion-mnist"
if not os.path.isfile(os.path.join(data, "train-images-idx3-ubyte.gz")):
    print(f"no Fashion-MNIST in {data}: skipped")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="kiln-cudaemu-train-")
atexit.register(shutil.rmtree, tmp, True)


def train(device, epochs, checkpoint, resume=None, schedule="none"):
    cmd = [a.kiln, "train", "--device", device, "--epochs", str(epochs),
           "--train-subset", str(a.train_subset), "--test-subset",
           str(a.test_subset), "--schedule", schedule, "--seed", "3",
           "--checkpoint", checkpoint, "--data-dir", data,
           # no validation split: the epoch lines keep the test accuracy
           "--val-split", "0"]
    if resume:
        cmd += ["--resume", resume]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    print(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    if r.returncode != 0:
        return None
    return {int(m[1]): (float(m[2]), float(m[3])) for m in re.finditer(
        r"^epoch (\d+)/\d+\s+train loss (\S+)\s+test accuracy (\S+)",
        r.stdout, re.M)}, r.stdout


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        code = {"F32": "f", "F64": "d", "I64": "q", "I32": "i"}.get(t["dtype"])
        if code:
            b, e = t["data_offsets"]
            out[name] = array.array(code, body[b:e])
    return out


def close(x, y, rel):
    return abs(x - y) <= rel * abs(y) + 1e-4


def path(name):
    return os.path.join(tmp, name + ".safetensors")


def ref_run(epochs, name):
    return train("cpu", epochs, path(name)) or \
        train("interpreter", epochs, path(name))


ref1 = ref_run(1, "cpu1")
ref2 = ref_run(2, "cpu2")
got = train("cuda", 1, path("cuda1"))
if not ref1 or not ref2 or not got:
    sys.exit("a training run failed")
if "backend cuda" not in got[1]:
    sys.exit("the cuda run did not use the CUDA backend")
resumed = train("cpu", 2, path("resumed2"), resume=path("cuda1")) or \
    train("interpreter", 2, path("resumed2"), resume=path("cuda1"))
if not resumed:
    sys.exit("resuming the CUDA checkpoint failed")
if "resumed from" not in resumed[1]:
    sys.exit("the resumed run did not resume")

bad = []


def compare_epoch(what, e, g, r):
    (gl, ga), (rl, ra) = g[0][e], r[0][e]
    if not close(gl, rl, 1e-3):
        bad.append(f"{what}, epoch {e}: train loss {gl}, CPU-only {rl}")
    if abs(ga - ra) > 0.005 + 1e-9:
        bad.append(f"{what}, epoch {e}: test accuracy {ga}, CPU-only {ra}")


if 1 not in got[0] or 1 not in ref2[0] or 2 not in ref2[0] or \
        2 not in resumed[0]:
    sys.exit("missing epoch lines")
compare_epoch("cuda", 1, got, ref2)
compare_epoch("cpu resuming the cuda checkpoint", 2, resumed, ref2)

cos_ref = train("cpu", 2, "", schedule="cosine") or \
    train("interpreter", 2, "", schedule="cosine")
cos_got = train("cuda", 2, "", schedule="cosine")
if not cos_ref or not cos_got:
    sys.exit("a cosine-schedule training run failed")
for e in (1, 2):
    if e not in cos_ref[0] or e not in cos_got[0]:
        sys.exit("missing epoch lines (cosine schedule)")
    compare_epoch("cuda, cosine schedule", e, cos_got, cos_ref)

# The checkpoint itself: every tensor of the CUDA one near the CPU one.
ck_cuda, ck_cpu = load_safetensors(path("cuda1")), load_safetensors(path("cpu1"))
if sorted(ck_cuda) != sorted(ck_cpu):
    bad.append(f"checkpoint tensors differ: {sorted(ck_cuda)} vs "
               f"{sorted(ck_cpu)}")
state_max = 0.0
for name in sorted(ck_cpu):
    g, r = ck_cuda.get(name, []), ck_cpu[name]
    far = [i for i in range(len(r)) if i >= len(g) or
           abs(g[i] - r[i]) > 1e-3 * abs(r[i]) + 1e-5]
    if far:
        i = far[0]
        bad.append(f"checkpoint tensor {name}: {len(far)} of {len(r)} "
                   f"elements differ, [{i}] is "
                   f"{g[i] if i < len(g) else 'missing'} on cuda, {r[i]} on "
                   "the CPU")
    if name.startswith("optim.") and name.endswith("momentum_buffer"):
        state_max = max([state_max] + [abs(x) for x in g])
if state_max == 0:
    bad.append("the CUDA checkpoint's momentum buffers are all zero")
if bad:
    sys.exit("\n".join(bad))
print("cuda matches the CPU, and its checkpoint resumes on the CPU")
