"""Checks that `kiln opt X | kiln opt -` is byte-identical to `kiln opt X`
for every .kir file under the given folders (the error tests left out): the
printer's text parses back to a graph that prints the same.

usage: roundtrip.py KILN DIR...
"""
import pathlib
import subprocess
import sys


def main():
    kiln, dirs = sys.argv[1], sys.argv[2:]
    files = sorted(
        p for d in dirs for p in pathlib.Path(d).rglob("*.kir")
        if "errors" not in p.parts)
    if not files:
        sys.exit("roundtrip: no .kir files found")
    bad = 0
    for path in files:
        once = subprocess.run([kiln, "opt", str(path)], capture_output=True)
        if once.returncode != 0:
            print(f"FAIL {path}: kiln opt exited {once.returncode}\n"
                  f"{once.stderr.decode(errors='replace')}")
            bad += 1
            continue
        twice = subprocess.run([kiln, "opt", "-"], input=once.stdout,
                               capture_output=True)
        if twice.returncode != 0 or twice.stdout != once.stdout:
            print(f"FAIL {path}: the second print differs\n--- once\n"
                  f"{once.stdout.decode()}--- twice\n{twice.stdout.decode()}"
                  f"{twice.stderr.decode(errors='replace')}")
            bad += 1
    print(f"roundtrip: {len(files) - bad} of {len(files)} files identical")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
