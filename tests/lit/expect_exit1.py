"""Runs a command and succeeds only when it exits with status 1.

`not` from LLVM also succeeds when the command dies of a signal, and a crash
is never an acceptable answer to malformed IR: kiln must report the error and
exit 1. Output passes through unchanged so FileCheck can read it.
"""
import subprocess
import sys

if len(sys.argv) < 2:
    sys.exit("usage: expect_exit1.py COMMAND [ARGS...]")
proc = subprocess.run(sys.argv[1:])
if proc.returncode != 1:
    if proc.returncode < 0:
        why = f"was killed by signal {-proc.returncode}"
    else:
        why = f"exited with status {proc.returncode}"
    sys.exit(f"expect_exit1: '{sys.argv[1]}' {why}, expected status 1")
