#!/usr/bin/env python3
"""Durability: SIGKILL the VMM right after the guest's FLUSH completed; the
data the guest was told is durable must be in the image.

Usage: durability_test.py VMM GUEST_DIR WORKDIR
"""
import os
import struct
import subprocess
import sys
import time

SECTOR = 512
FIRST, COUNT = 32, 8


def main():
    vmm, guests, work = sys.argv[1], sys.argv[2], sys.argv[3]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIPPED: /dev/kvm is missing ***")
        return 1 if os.environ.get("VMM_REQUIRE_KVM") == "1" else 77
    os.makedirs(work, exist_ok=True)
    image = os.path.join(work, "durability.img")
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "guest",
                                                 "make_blk_image.py"), image, "2048"], check=True)
    proc = subprocess.Popen([vmm, "--kernel", os.path.join(guests, "virtio_blk_flush-pvh.elf"),
                             "--drive", f"path={image}", "--cmdline", f"write_sector={FIRST}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    seen = b""
    deadline = time.monotonic() + 60
    while b"virtio_blk_flush: flushed" not in seen:
        chunk = proc.stdout.read1(4096)
        if not chunk or time.monotonic() > deadline:
            proc.kill()
            print("FAIL: the guest never reported its flush\n" + seen.decode(errors="replace"))
            return 1
        seen += chunk
    proc.kill()  # SIGKILL: no chance to write anything back on the way out
    proc.wait()
    with open(image, "rb") as f:
        for sector in range(FIRST, FIRST + COUNT):
            f.seek(sector * SECTOR)
            values = struct.unpack("<64Q", f.read(SECTOR))
            want = 0x5A5A000000000000 | sector
            if any(v != want for v in values):
                print(f"FAIL: sector {sector} lost its flushed data ({values[0]:#x} != {want:#x})")
                return 1
    print(f"PASS: sectors {FIRST}..{FIRST + COUNT - 1} survived SIGKILL after FLUSH")
    return 0


if __name__ == "__main__":
    sys.exit(main())
