"""Checks the numbers `kiln train` prints.

usage: check_train.py LOG [--max-loss X] [--min-accuracy Y] [--epochs A,B]

Every `epoch N/M  train loss L  [val loss V  val accuracy W]  [test accuracy
A] ...` line must have a finite
loss below --max-loss (every epoch), the `final test accuracy` line must be
at least --min-accuracy, and the epochs printed must be exactly --epochs.
FileCheck checks text; this checks values.
"""
import argparse
import math
import re
import sys

p = argparse.ArgumentParser()
p.add_argument("log")
p.add_argument("--max-loss", type=float)
p.add_argument("--min-accuracy", type=float)
p.add_argument("--epochs", help="comma-separated epoch numbers expected")
a = p.parse_args()

text = open(a.log).read()
# The validation fields (--val-split) and the per-epoch test accuracy (only
# with --test-every-epoch or without validation) are optional.
epochs = [(int(m[1]), float(m[2]), float(m[3]) if m[3] else None)
          for m in re.finditer(
              r"^epoch (\d+)/\d+\s+train loss (\S+)"
              r"(?:\s+val loss \S+\s+val accuracy \S+)?"
              r"(?:\s+test accuracy (\S+))?", text, re.M)]
final = re.search(r"^final test accuracy (\S+)$", text, re.M)
errors = []
if not epochs:
    errors.append("no 'epoch N/M  train loss ...' line")
if not final:
    errors.append("no 'final test accuracy' line")
if a.epochs is not None:
    want = [int(e) for e in a.epochs.split(",")]
    got = [e for e, _, _ in epochs]
    if got != want:
        errors.append(f"epochs printed {got}, expected {want}")
for e, loss, acc in epochs:
    if not math.isfinite(loss):
        errors.append(f"epoch {e}: train loss {loss} is not finite")
    elif a.max_loss is not None and not loss < a.max_loss:
        errors.append(f"epoch {e}: train loss {loss} is not below {a.max_loss}")
if final and a.min_accuracy is not None:
    acc = float(final[1])
    if not acc >= a.min_accuracy:
        errors.append(f"final test accuracy {acc} is below {a.min_accuracy}")
if errors:
    sys.exit("check_train: " + "; ".join(errors) + f"\n--- {a.log} ---\n" + text)
for e, loss, acc in epochs:
    print(f"epoch {e}: loss {loss}, accuracy {acc}")
