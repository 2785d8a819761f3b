#!/usr/bin/env bash
# The regularisation experiment of the README (issue 14, item 2), on
# Fashion-MNIST with `kiln train`, as one command:
#
#   bash tools/regularization-experiment.sh [KILN] [OUTDIR]
#
# KILN defaults to build/release/tools/kiln, OUTDIR (logs, checkpoints) to a
# fresh temporary folder. Prints three Markdown tables and exits 1 when a
# claim does not hold:
#  (a) plain SGD (no momentum, constant lr): --l2 λ/2 and --weight-decay λ
#      give the same trajectory: per-epoch train and validation losses equal
#      to 1e-5 relative (as printed, and in full precision from the metrics
#      CSV beside each checkpoint), and the final weights compared bitwise;
#  (b) on a small training set (2000 examples, 30 epochs, so it overfits), a
#      regularised run ends with a higher training loss and a lower
#      validation loss than the unregularised one (--l2, --weight-decay,
#      --dropout; the claim is checked for --l2);
#  (c) cosine annealing against a constant learning rate (full training set).
# About a minute on 2 CPU cores (the runs use the CPU backend by default;
# KILN_DEVICE picks another).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${1:-build/release/tools/kiln}
OUT=${2:-$(mktemp -d /tmp/kiln-regularization.XXXXXX)}
mkdir -p "$OUT"
DEVICE=${KILN_DEVICE:-cpu}

run() { # NAME ARGS...: kiln train, log in $OUT/NAME.log
  local name=$1
  shift
  echo "+ kiln train $*" >&2
  "$KILN" train --device "$DEVICE" --checkpoint "$OUT/$name.safetensors" \
    "$@" >"$OUT/$name.log"
}

# (a) λ = 1e-3, SGD without momentum, lr 0.1 constant, 5 epochs, the full
# training set (55000 + 5000 held out).
A="--epochs 5 --optimizer sgd --momentum 0 --lr 0.1 --schedule none --val-split 5000"
run a-l2 $A --weight-decay 0 --l2 0.0005
run a-wd $A --weight-decay 0.001
run a-none $A --weight-decay 0
# (b) 2000 training examples (first 3000, 1000 held out), 30 epochs, the
# default recipe (SGD momentum 0.9, lr 0.05, cosine) with and without
# regularisation.
B="--epochs 30 --train-subset 3000 --val-split 1000 --lr 0.05 --momentum 0.9"
run b-none $B --weight-decay 0
run b-l2 $B --weight-decay 0 --l2 0.002
run b-wd $B --weight-decay 0.004
run b-dropout $B --weight-decay 0 --dropout 0.5
# (c) the default recipe on the full training set, 10 epochs, cosine against
# a constant learning rate.
C="--epochs 10 --lr 0.05 --momentum 0.9 --weight-decay 5e-4 --val-split 5000"
run c-cosine $C --schedule cosine
run c-constant $C --schedule none

python3 - "$OUT" <<'EOF'
import csv, json, re, struct, sys

out = sys.argv[1]
LINE = re.compile(r"^epoch (\d+)/\d+\s+train loss (\S+)\s+val loss (\S+)"
                  r"\s+val accuracy (\S+)", re.M)


def log(name):
    text = open(f"{out}/{name}.log").read()
    epochs = [(int(m[1]), float(m[2]), float(m[3]), float(m[4]))
              for m in LINE.finditer(text)]
    test = float(re.search(r"^final test accuracy (\S+)", text, re.M)[1])
    return epochs, test


def tensors(name):
    with open(f"{out}/{name}.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    return {k: body[v["data_offsets"][0]:v["data_offsets"][1]]
            for k, v in header.items() if k.startswith("model.")}


failed = []
print("(a) SGD, no momentum, lr 0.1 constant, 55000 train / 5000 val, "
      "λ = 1e-3\n")
print("| epoch | train loss --l2 5e-4 | train loss --weight-decay 1e-3 | "
      "val loss --l2 5e-4 | val loss --weight-decay 1e-3 | "
      "train loss, no regularisation |")
print("| --- | --- | --- | --- | --- | --- |")
l2, _ = log("a-l2")
wd, _ = log("a-wd")
none, _ = log("a-none")
worst = 0.0
for (e, tl, vl, _), (_, tw, vw, _), (_, tn, _, _) in zip(l2, wd, none):
    print(f"| {e} | {tl:.6f} | {tw:.6f} | {vl:.6f} | {vw:.6f} | {tn:.6f} |")
    for x, y in ((tl, tw), (vl, vw)):
        worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
same = tensors("a-l2") == tensors("a-wd")


def csv_losses(name):  # full precision, from the metrics file kiln writes
    try:
        rows = list(csv.DictReader(open(f"{out}/{name}.metrics.csv")))
    except OSError:
        return None
    return [(float(r["train_loss"]), float(r["val_loss"])) for r in rows]


exact = ""
ca, cb = csv_losses("a-l2"), csv_losses("a-wd")
if ca and cb and len(ca) == len(cb):
    w = max(abs(x - y) / max(abs(x), abs(y))
            for ra, rb in zip(ca, cb) for x, y in zip(ra, rb))
    worst = max(worst, w)
    exact = f" (metrics CSV, full precision: {w:.3g})"
print(f"\nlargest relative difference of the per-epoch losses: {worst:.3g}"
      f"{exact}; final weights bitwise equal: {'yes' if same else 'no'}\n")
if len(l2) != 5 or len(wd) != 5 or worst > 1e-5:
    failed.append(f"(a) --l2 vs --weight-decay differ by {worst:.3g}")

print("(b) 2000 training examples, 1000 validation, 30 epochs, SGD momentum "
      "0.9, lr 0.05 cosine\n")
print("| run | final train loss | final val loss | best val loss (epoch) | "
      "final val accuracy | test accuracy |")
print("| --- | --- | --- | --- | --- | --- |")
runs = {"b-none": "no regularisation", "b-l2": "--l2 0.002",
        "b-wd": "--weight-decay 0.004", "b-dropout": "--dropout 0.5"}
final = {}
for name, label in runs.items():
    ep, test = log(name)
    e, t, v, acc = ep[-1]
    best = min(ep, key=lambda r: r[2])
    final[name] = (t, v)
    print(f"| {label} | {t:.4f} | {v:.4f} | {best[2]:.4f} ({best[0]}) | "
          f"{acc:.4f} | {test:.4f} |")
for name in ("b-l2", "b-wd", "b-dropout"):
    t, v = final[name]
    holds = t > final["b-none"][0] and v < final["b-none"][1]
    print(f"\n{runs[name]}: higher training loss and lower validation loss "
          f"than no regularisation: {'yes' if holds else 'no'}", end="")
    if name == "b-l2" and not holds:
        failed.append("(b) --l2 0.002 does not regularise")
print("\n")

print("(c) 55000 train / 5000 val, 10 epochs, SGD momentum 0.9, lr 0.05, "
      "weight decay 5e-4\n")
print("| epoch | val loss, cosine | val loss, constant | val accuracy, cosine "
      "| val accuracy, constant |")
print("| --- | --- | --- | --- | --- |")
cos, cos_test = log("c-cosine")
const, const_test = log("c-constant")
for (e, _, vc, ac), (_, _, vk, ak) in zip(cos, const):
    print(f"| {e} | {vc:.4f} | {vk:.4f} | {ac:.4f} | {ak:.4f} |")
print(f"\nfinal train loss: cosine {cos[-1][1]:.4f}, constant "
      f"{const[-1][1]:.4f}; test accuracy: cosine {cos_test:.4f}, constant "
      f"{const_test:.4f}")
if failed:
    sys.exit("FAILED: " + "; ".join(failed))
EOF
echo "logs and checkpoints in $OUT" >&2
