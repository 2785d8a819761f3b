"""Checks a `kiln train --patience K` run against the checkpoint it wrote.

usage: check_patience.py LOG CHECKPOINT K

The run must stop K epochs after the epoch with the lowest validation loss it
printed (or at its last epoch), say it restored that epoch's weights when it
was not the last, and the checkpoint's metadata must be that epoch's (epoch
number and val_loss within the printed precision).
"""
import json
import re
import struct
import sys

log, ckpt, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(log).read()
vals = {int(m[1]): float(m[2]) for m in re.finditer(
    r"^epoch (\d+)/\d+\s+train loss \S+\s+val loss (\S+)", text, re.M)}
errors = []
if not vals:
    sys.exit(f"{log}: no 'epoch N/M  train loss L  val loss V' lines")
best = min(vals, key=lambda e: (vals[e], e))
last = max(vals)
if "early stopping" in text and last != best + k:
    errors.append(f"stopped after epoch {last}, best was {best}, patience {k}")
if best != last and f"restored the weights of epoch {best} " not in text:
    errors.append(f"no 'restored the weights of epoch {best}' line")
with open(ckpt, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(f.read(n)).get("__metadata__", {})
if meta.get("epoch") != str(best):
    errors.append(f"checkpoint epoch {meta.get('epoch')}, best epoch {best}")
if abs(float(meta.get("val_loss", "nan")) - vals[best]) > 1e-6:
    errors.append(f"checkpoint val_loss {meta.get('val_loss')}, "
                  f"printed {vals[best]}")
if errors:
    sys.exit("\n".join(errors))
print(f"best epoch {best} of {last}, checkpoint matches")
