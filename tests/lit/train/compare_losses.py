"""Compares the per-epoch losses two `kiln train` runs printed.

usage: compare_losses.py A.log B.log [--rtol R] [--expect-different]

Every `epoch N/M  train loss L  val loss V ...` line of A must have a line
for the same epoch in B, and L and V (val loss when both print it) must agree
within R relative (default 1e-5). With --expect-different the check is
inverted: some value must differ by more than R (so the comparison can
fail). Exit status 1 with the differing values otherwise.
"""
import argparse
import re
import sys

p = argparse.ArgumentParser()
p.add_argument("a")
p.add_argument("b")
p.add_argument("--rtol", type=float, default=1e-5)
p.add_argument("--expect-different", action="store_true")
args = p.parse_args()

LINE = re.compile(r"^epoch (\d+)/\d+\s+train loss (\S+)(?:\s+val loss (\S+))?",
                  re.M)


def losses(path):
    out = {}
    for m in LINE.finditer(open(path).read()):
        out[int(m[1])] = [float(m[2])] + ([float(m[3])] if m[3] else [])
    return out


a, b = losses(args.a), losses(args.b)
if not a:
    sys.exit(f"{args.a}: no 'epoch N/M  train loss' lines")
if sorted(a) != sorted(b):
    sys.exit(f"epochs differ: {sorted(a)} in {args.a}, {sorted(b)} in {args.b}")
worst = 0.0
for e in sorted(a):
    if len(a[e]) != len(b[e]):
        sys.exit(f"epoch {e}: {args.a} prints {a[e]}, {args.b} prints {b[e]}")
    for x, y in zip(a[e], b[e]):
        worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-30))
print(f"{len(a)} epochs, largest relative difference {worst:.3g}")
if args.expect_different and worst <= args.rtol:
    sys.exit(f"expected a difference above {args.rtol}, got {worst:.3g}")
if not args.expect_different and worst > args.rtol:
    sys.exit(f"largest relative difference {worst:.3g} exceeds {args.rtol}")
