#!/usr/bin/env python3
"""Writes the malformed kernel images (and other bad files: a named pipe, an
oversized config file) the bad-input tests feed the VMM.

Usage: make_bad_images.py OUTDIR GOOD_ELF GOOD_BZIMAGE
Deterministic: the same inputs give the same files.
"""
import os
import random
import struct
import sys


def main():
    out, good_elf, good_bz = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    elf = open(good_elf, "rb").read()
    bz = open(good_bz, "rb").read()

    def write(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    write("empty", b"")
    # The virtio_blk guest's pattern (every u64 of sector s is s), plus a tail.
    write("disk-1000-sectors-plus",
          b"".join(struct.pack("<Q", s) * 64 for s in range(1000)) + b"\xee" * 100)
    write("disk-locked", b"\0" * 4096)
    write("random", random.Random(1234).randbytes(64 * 1024))
    write("truncated.elf", elf[:100])
    write("truncated-phdrs.elf", elf[:64 + 20])
    write("truncated.bzImage", bz[:len(bz) // 2] if len(bz) > 0x400 else bz[:0x300])
    write("header-only.bzImage", bz[:0x280])
    # e_machine (offset 18) set to AArch64.
    write("aarch64.elf", elf[:18] + struct.pack("<H", 183) + elf[20:])
    # ELFCLASS32 in e_ident.
    write("class32.elf", elf[:4] + b"\x01" + elf[5:])
    # A one-segment ELF that wants 1 GiB at 16 MiB: larger than a small guest.
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 2, 62, 1,
                       0x1000000, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0x1000, 0x1000000, 0x1000000, 16, 1 << 30, 0x1000)
    write("huge.elf", ehdr + phdr + b"\0" * (0x1000 - len(ehdr) - len(phdr)) + b"\xf4" * 16)
    # A named pipe nobody writes: opening it for reading would wait forever.
    fifo = os.path.join(out, "fifo")
    if os.path.lexists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo, 0o600)
    # A config file over the 1 MiB limit (valid JSON, padded with spaces).
    write("big-config.json", b"{" + b" " * (2 << 20) + b"}")


if __name__ == "__main__":
    main()
