#!/usr/bin/env python3
"""Durability: SIGKILL the VMM right after the guest's FLUSH completed; the
data the guest was told is durable must be on the disk, not only in the
host's page cache (which a SIGKILL does not lose, so reading through it
proves nothing):
  - cachestat(2) says no page of the flushed range is dirty or under
    writeback: the VMM's flush (fdatasync) wrote it back before the guest
    was told (skipped where the kernel has no cachestat, or on tmpfs);
  - the sectors are read back with O_DIRECT, from the disk.

Usage: durability_test.py VMM GUEST_DIR WORKDIR
"""
import ctypes
import mmap
import os
import struct
import subprocess
import sys
import time

SECTOR = 512
FIRST, COUNT = 32, 8
SYS_CACHESTAT = 451  # x86_64, Linux 6.5


def pending_pages(path, offset, length):
    """Pages of the range that are dirty or under writeback, or None when the
    kernel cannot say (no cachestat) or the answer means nothing (tmpfs)."""
    filesystem = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True,
                                text=True).stdout.strip()
    if filesystem == "tmpfs":
        return None  # its pages never go to a disk
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        span = (ctypes.c_uint64 * 2)(offset, length)
        stat = (ctypes.c_uint64 * 5)()  # cache, dirty, writeback, evicted, recently evicted
        if libc.syscall(SYS_CACHESTAT, fd, ctypes.byref(span), ctypes.byref(stat), 0) != 0:
            return None
        return stat[1] + stat[2]
    finally:
        os.close(fd)


def read_direct(path, offset, length):
    """The bytes as the disk has them: O_DIRECT, into a page-aligned buffer."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        buffer = mmap.mmap(-1, length)
        done = os.preadv(fd, [buffer], offset)
        return bytes(buffer[:done])
    finally:
        os.close(fd)


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
    pending = pending_pages(image, FIRST * SECTOR, COUNT * SECTOR)
    if pending:
        print(f"FAIL: {pending} page(s) of the flushed sectors are still dirty in the page "
              "cache: the FLUSH completed before the data reached the disk")
        return 1
    data = read_direct(image, FIRST * SECTOR, COUNT * SECTOR)
    if len(data) != COUNT * SECTOR:
        print(f"FAIL: read {len(data)} bytes of the flushed sectors, expected {COUNT * SECTOR}")
        return 1
    for i, sector in enumerate(range(FIRST, FIRST + COUNT)):
        values = struct.unpack("<64Q", data[i * SECTOR:(i + 1) * SECTOR])
        want = 0x5A5A000000000000 | sector
        if any(v != want for v in values):
            print(f"FAIL: sector {sector} lost its flushed data ({values[0]:#x} != {want:#x})")
            return 1
    checked = "no dirty page left, " if pending == 0 else "(no cachestat here) "
    print(f"PASS: sectors {FIRST}..{FIRST + COUNT - 1} survived SIGKILL after FLUSH: "
          f"{checked}read back with O_DIRECT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
