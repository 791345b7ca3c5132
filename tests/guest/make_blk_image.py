#!/usr/bin/env python3
"""Create a raw disk image with the virtio_blk test pattern.

usage: make_blk_image.py PATH SECTORS

Every 512-byte sector s consists of 64 little-endian uint64 values equal
to s (what the virtio_blk / virtio_blk_hostile guests check).  PATH is
created or truncated to exactly SECTORS * 512 bytes.
"""
import struct
import sys

SECTOR = 512


def sector_bytes(s):
    return struct.pack("<Q", s) * (SECTOR // 8)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    path = argv[1]
    try:
        sectors = int(argv[2], 0)
    except ValueError:
        sys.stderr.write(f"make_blk_image.py: bad sector count {argv[2]!r}\n")
        return 2
    if sectors < 0:
        sys.stderr.write("make_blk_image.py: sector count must be >= 0\n")
        return 2
    with open(path, "wb") as f:
        chunk = 2048  # sectors per write
        for first in range(0, sectors, chunk):
            n = min(chunk, sectors - first)
            f.write(b"".join(sector_bytes(s) for s in range(first, first + n)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
