"""Runs a kiln command on a bad input file and checks how it fails.

usage: check_bad_input.py PATH -- COMMAND [ARGS...]

Passes when COMMAND exits with status 1 within the time limit (not killed
by a signal, not hanging: a FIFO must not block), prints exactly one line
containing "error:", that line names PATH, and the whole output is
printable ASCII (bytes from the file escaped, never echoed raw). The
output is copied to stdout for FileCheck to read the message itself.
"""
import subprocess
import sys

TIMEOUT_S = 60

if len(sys.argv) < 4 or sys.argv[2] != "--":
    sys.exit("usage: check_bad_input.py PATH -- COMMAND [ARGS...]")
path, cmd = sys.argv[1], sys.argv[3:]
try:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=TIMEOUT_S)
except subprocess.TimeoutExpired as e:
    sys.stdout.buffer.write(e.output or b"")
    sys.exit(f"check_bad_input: '{' '.join(cmd)}' still ran after "
             f"{TIMEOUT_S} s (a hang), expected exit status 1")
out = proc.stdout
sys.stdout.buffer.write(out)
sys.stdout.flush()
problems = []
if proc.returncode != 1:
    problems.append(f"killed by signal {-proc.returncode}"
                    if proc.returncode < 0
                    else f"exit status {proc.returncode}, expected 1")
bad = sorted({b for b in out if not (0x20 <= b < 0x7F or b == 0x0A)})
if bad:
    problems.append("raw bytes in the output: " +
                    " ".join(f"0x{b:02x}" for b in bad))
errors = [l for l in out.decode("ascii", "replace").splitlines()
          if "error:" in l]
if len(errors) != 1:
    problems.append(f"{len(errors)} lines with 'error:', expected one")
elif path not in errors[0]:
    problems.append(f"the error does not name {path}")
if problems:
    sys.exit("check_bad_input: " + "; ".join(problems))
