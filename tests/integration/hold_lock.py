#!/usr/bin/env python3
"""Usage: hold_lock.py PATH COMMAND...: runs COMMAND while holding a write
lock on PATH, the way a second VMM using the same disk image would."""
import fcntl
import subprocess
import sys

with open(sys.argv[1], "r+b") as f:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    sys.exit(subprocess.call(sys.argv[2:]))
