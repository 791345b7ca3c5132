#!/usr/bin/env python3
"""Runs one VMM command and checks how it ended.

Used by CTest for every integration test: the exit status (never a signal,
never a hang), what stdout and stderr contain, and for bad-input tests that
stderr is exactly one line. Tests that need /dev/kvm exit 77 (CTest's "skipped")
with a loud message when it is missing, unless VMM_REQUIRE_KVM=1, where that
is a failure.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

SKIP = 77


def kvm_available():
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--exit", type=int, required=True, help="expected exit status")
    p.add_argument("--stdout", action="append", default=[], help="regex stdout must match")
    p.add_argument("--no-stdout", action="append", default=[], help="regex stdout must not match")
    p.add_argument("--stderr", action="append", default=[], help="regex stderr must match")
    p.add_argument("--one-line-error", action="store_true",
                   help="stderr must be exactly one line starting with --error-prefix")
    p.add_argument("--error-prefix", default="vmm: error: ",
                   help="how that line starts (default 'vmm: error: ')")
    p.add_argument("--stdin", help="bytes to write to stdin (\\n escapes allowed)")
    p.add_argument("--stdin-after", help="write --stdin only once stdout matches this regex")
    p.add_argument("--signal", help="signal name to send once stdout matches --signal-after")
    p.add_argument("--signal-after", help="regex on stdout that triggers --signal")
    p.add_argument("--exit-within", type=float,
                   help="after the signal, the process must exit within this many seconds")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--needs-kvm", action="store_true")
    p.add_argument("--fresh-image", action="append", default=[],
                   help="PATH:SECTORS: (re)create a test-pattern disk image before the run")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    if args.needs_kvm and not kvm_available():
        if os.environ.get("VMM_REQUIRE_KVM") == "1":
            print("FAIL: /dev/kvm is not usable and VMM_REQUIRE_KVM=1")
            return 1
        print("*** SKIPPED: /dev/kvm is missing or not accessible; this test needs KVM ***")
        return SKIP

    for spec in args.fresh_image:
        path, sectors = spec.rsplit(":", 1)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        maker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest",
                             "make_blk_image.py")
        subprocess.run([sys.executable, maker, path, sectors], check=True)

    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out = bytearray()
    err = bytearray()
    matched = threading.Event()
    signalled_at = [None]

    def pump(stream, sink, watch):
        while True:
            chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
            if not chunk:
                return
            sink.extend(chunk)
            if watch:
                text = sink.decode(errors="replace")
                trigger = args.signal_after or args.stdin_after
                if trigger and re.search(trigger, text, re.M) and not matched.is_set():
                    matched.set()

    t_out = threading.Thread(target=pump, args=(proc.stdout, out, True), daemon=True)
    t_err = threading.Thread(target=pump, args=(proc.stderr, err, False), daemon=True)
    t_out.start()
    t_err.start()

    stdin_data = None
    if args.stdin is not None:
        stdin_data = args.stdin.encode().decode("unicode_escape").encode("latin-1")

    deadline = time.monotonic() + args.timeout
    try:
        if args.stdin_after or args.signal_after:
            if not matched.wait(timeout=args.timeout):
                raise subprocess.TimeoutExpired(command, args.timeout)
        if stdin_data is not None:
            proc.stdin.write(stdin_data)
            proc.stdin.flush()
        if args.signal:
            proc.send_signal(getattr(signal, "SIG" + args.signal))
            signalled_at[0] = time.monotonic()
        if not args.stdin_after and stdin_data is None:
            proc.stdin.close()
        status = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        t_out.join(1)
        t_err.join(1)
        print(f"FAIL: timed out after {args.timeout} s: {' '.join(command)}")
        print("--- stdout ---\n" + out.decode(errors="replace"))
        print("--- stderr ---\n" + err.decode(errors="replace"))
        return 1
    exited_at = time.monotonic()
    t_out.join(5)
    t_err.join(5)
    stdout = out.decode(errors="replace")
    stderr = err.decode(errors="replace")

    failures = []
    if status < 0:
        failures.append(f"killed by signal {-status}")
    elif status != args.exit:
        failures.append(f"exit status {status}, expected {args.exit}")
    for rx in args.stdout:
        if not re.search(rx, stdout, re.M):
            failures.append(f"stdout does not match /{rx}/")
    for rx in args.no_stdout:
        if re.search(rx, stdout, re.M):
            failures.append(f"stdout matches /{rx}/ but must not")
    for rx in args.stderr:
        if not re.search(rx, stderr, re.M):
            failures.append(f"stderr does not match /{rx}/")
    if args.one_line_error:
        lines = stderr.splitlines()
        if len(lines) != 1 or not lines[0].startswith(args.error_prefix):
            failures.append(f"stderr is not one '{args.error_prefix}' line ({len(lines)} lines)")
    if args.exit_within is not None and signalled_at[0] is not None:
        took = exited_at - signalled_at[0]
        if took > args.exit_within:
            failures.append(f"exited {took:.2f} s after the signal, limit {args.exit_within} s")

    if failures:
        print("FAIL: " + "; ".join(failures))
        print("command: " + " ".join(command))
        print("--- stdout ---\n" + stdout)
        print("--- stderr ---\n" + stderr)
        return 1
    print("PASS: " + " ".join(command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
