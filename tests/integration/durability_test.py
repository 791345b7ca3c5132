#!/usr/bin/env python3
"""Durability: SIGKILL the VMM right after the guest's FLUSH completed; the
data the guest was told is durable must be on the disk, not only in the
host's page cache (which a SIGKILL does not lose, so reading through it
proves nothing):
  - cachestat(2) says no page of the flushed range is dirty or under
    writeback: the VMM's flush (fdatasync) wrote it back before the guest
    was told (skipped where the kernel has no cachestat, or where fdatasync
    leaves pages dirty: tmpfs, the nested tier's overlay);
  - the sectors are read back with O_DIRECT, from the disk (where the
    filesystem has direct I/O).

Usage: durability_test.py VMM GUEST_DIR WORKDIR
"""
import ctypes
import errno
import mmap
import os
import struct
import subprocess
import sys
import time

SECTOR = 512
FIRST, COUNT = 32, 8
SYS_CACHESTAT = 451  # x86_64, Linux 6.5


def cachestat(path, offset, length):
    """(dirty, writeback) pages of the range, or None without cachestat(2)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        span = (ctypes.c_uint64 * 2)(offset, length)
        stat = (ctypes.c_uint64 * 5)()  # cache, dirty, writeback, evicted, recently evicted
        if libc.syscall(SYS_CACHESTAT, fd, ctypes.byref(span), ctypes.byref(stat), 0) != 0:
            return None
        return stat[1], stat[2]
    finally:
        os.close(fd)


def dirty_pages_mean_something(directory):
    """Whether fdatasync leaves a file's pages clean here: not on tmpfs, or
    an overlay on it (the nested tier's), whose pages never reach a disk."""
    probe = os.path.join(directory, "cachestat-probe")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\xa5" * 4096)
        os.fdatasync(fd)
        return cachestat(probe, 0, 4096) == (0, 0)
    finally:
        os.close(fd)
        os.unlink(probe)


def pending_pages(path, offset, length):
    """Pages of the range that are dirty or under writeback, or None when that
    says nothing here (no cachestat, or a filesystem without a disk)."""
    if not dirty_pages_mean_something(os.path.dirname(path)):
        return None
    dirty, writeback = cachestat(path, offset, length)
    return dirty + writeback


def read_direct(path, offset, length):
    """The bytes as the disk has them: O_DIRECT into a page-aligned buffer;
    a plain read where the filesystem has no direct I/O (tmpfs, an overlay
    on it: there the page cache is all there is)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        fd = os.open(path, os.O_RDONLY)
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
