#!/usr/bin/env python3
"""virtio-console on a terminal: the VMM runs on a pseudo-terminal whose size
is 132x43; the virtio_console test guest must read that size from the
device's config (F_SIZE), echo a line typed on the terminal through hvc0, and
the VMM must hand the terminal back with its settings as they were.

    console_pty_test.py VMM GUEST_DIR
"""
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

SKIP = 77


def main():
    vmm, guests = sys.argv[1], sys.argv[2]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIPPED: /dev/kvm is missing ***")
        return 1 if os.environ.get("VMM_REQUIRE_KVM") == "1" else SKIP
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 43, 132, 0, 0))
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([vmm, "--kernel", os.path.join(guests, "virtio_console-pvh.elf"),
                             "--console", "virtio"],
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    out = b""
    typed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
        if not typed and b"virtio_console: size" in out:
            os.write(master, b"ping-hvc\r")  # raw mode: the guest gets what is typed
            typed = True
        if proc.poll() is not None and not ready:
            break
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    after = termios.tcgetattr(slave)
    text = out.decode(errors="replace")
    print(text)
    print(proc.stderr.read().decode(errors="replace"))
    for needle in ("virtio_console: size 132x43", "virtio_console: echo ping-hvc",
                   "virtio_console: PASS"):
        if needle not in text:
            print(f"FAIL: missing '{needle}'")
            return 1
        print(f"ok: {needle}")
    if proc.returncode != 0:
        print(f"FAIL: exit status {proc.returncode}")
        return 1
    if before != after:
        print("FAIL: the terminal settings were not restored")
        return 1
    print("ok: terminal settings restored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
