#!/usr/bin/env python3
"""Linux boot to userspace, ours against QEMU's microvm, runs alternating.

    linux_boot_bench.py VMM VMLINUX INITRD RUNS

Prints one JSON line per run: {"side": "ours"|"qemu", "seconds": S} (process
start to the guest init's "VMM-GUEST: userspace up" line) or {"side": ...,
"error": "..."}. Both sides get the same kernel, initramfs, memory and
command line, and KVM (-accel kvm -cpu host on QEMU's side). tools/bench
runs this directly on a hardware KVM host and through tools/nested elsewhere,
where the two sides share one L1 and only their ratio means anything.
"""
import json
import os
import select
import subprocess
import sys
import time

MARKER = b"VMM-GUEST: userspace up"
CMDLINE = "console=ttyS0 reboot=k panic=-1"
TIMEOUT = 120


def argv(side, vmm, vmlinux, initrd):
    if side == "ours":
        return [vmm, "--kernel", vmlinux, "--initrd", initrd, "--mem", "256",
                "--cmdline", CMDLINE]
    return ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "256",
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
            "-kernel", vmlinux, "-initrd", initrd, "-append", CMDLINE]


def boot(command):
    start = time.monotonic()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    seen = b""
    try:
        while True:
            left = start + TIMEOUT - time.monotonic()
            if left <= 0:
                return None, f"no userspace marker within {TIMEOUT} s"
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                tail = seen.decode(errors="replace").strip().splitlines()[-1:] or [""]
                return None, f"exited ({proc.wait()}) before userspace: {tail[0]}"
            seen = (seen + chunk)[-4096:]
            if MARKER in seen:
                return time.monotonic() - start, None
    finally:
        proc.kill()
        proc.wait()


def main():
    vmm, vmlinux, initrd, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    for _ in range(runs):
        for side in ("ours", "qemu"):
            seconds, error = boot(argv(side, vmm, vmlinux, initrd))
            row = {"side": side, "seconds": seconds} if error is None else \
                {"side": side, "error": error}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
