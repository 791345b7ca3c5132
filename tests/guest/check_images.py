#!/usr/bin/env python3
"""Structural checks of the built test guest images.

usage: check_images.py BUILD_DIR NAME...

For each NAME: NAME.elf (64-bit entry, no PVH note), NAME-pvh.elf (PVH
note -> _start32 inside an executable PT_LOAD) and, if present,
NAME.bzImage (setup header fields, payload == NAME.bin).
"""
import os
import struct
import sys

LOAD = 0x100000
ENTRY64 = LOAD + 0x200
errors = []


def err(msg):
    errors.append(msg)
    print("FAIL: " + msg)


def parse_elf(path):
    with open(path, "rb") as f:
        d = f.read()
    if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
        raise ValueError("not an ELF64 LE file")
    e_type, e_machine = struct.unpack_from("<HH", d, 0x10)
    e_entry, e_phoff = struct.unpack_from("<QQ", d, 0x18)
    e_phentsize, e_phnum = struct.unpack_from("<HH", d, 0x36)
    phdrs = []
    for i in range(e_phnum):
        phdrs.append(struct.unpack_from("<IIQQQQQQ", d, e_phoff + i * e_phentsize))
    return d, e_type, e_machine, e_entry, phdrs


def notes(d, off, size):
    out, p, end = [], off, off + size
    while p + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from("<III", d, p)
        p += 12
        name = d[p:p + namesz]
        p += (namesz + 3) & ~3
        desc = d[p:p + descsz]
        p += (descsz + 3) & ~3
        out.append((name, ntype, desc))
    return out


def file_bytes_at(d, phdrs, paddr, n):
    for p_type, _fl, off, _va, pa, filesz, _memsz, _al in phdrs:
        if p_type == 1 and pa <= paddr and paddr + n <= pa + filesz:
            return d[off + paddr - pa: off + paddr - pa + n]
    return None


def check_elf(path, want_pvh):
    try:
        d, e_type, e_machine, e_entry, phdrs = parse_elf(path)
    except (OSError, ValueError) as e:
        err(f"{path}: {e}")
        return None
    name = os.path.basename(path)
    if e_type != 2 or e_machine != 62:
        err(f"{name}: not an x86-64 ET_EXEC (type {e_type}, machine {e_machine})")
    if e_entry != ENTRY64:
        err(f"{name}: e_entry {e_entry:#x} != {ENTRY64:#x}")
    loads = [p for p in phdrs if p[0] == 1]
    if not loads or min(p[4] for p in loads) != LOAD:
        err(f"{name}: lowest PT_LOAD is not at {LOAD:#x}")
    if any(p[3] != p[4] for p in loads):
        err(f"{name}: PT_LOAD with vaddr != paddr")
    entry_seg = [p for p in loads if p[4] <= e_entry < p[4] + p[5] and p[1] & 1]
    if not entry_seg:
        err(f"{name}: e_entry not inside an executable PT_LOAD")
    xen = []
    for p in phdrs:
        if p[0] == 4:  # PT_NOTE
            xen += [n for n in notes(d, p[2], p[5]) if n[0] == b"Xen\0" and n[1] == 18]
    if want_pvh:
        if len(xen) != 1:
            err(f"{name}: expected exactly one Xen PHYS32_ENTRY note in a PT_NOTE, found {len(xen)}")
        else:
            desc = xen[0][2]
            if len(desc) != 4:
                err(f"{name}: PHYS32_ENTRY desc is {len(desc)} bytes, expected 4")
            else:
                e32 = struct.unpack("<I", desc)[0]
                if e32 != LOAD:
                    err(f"{name}: PHYS32_ENTRY {e32:#x} != {LOAD:#x}")
                if not [p for p in loads if p[4] <= e32 < p[4] + p[5] and p[1] & 1]:
                    err(f"{name}: PHYS32_ENTRY not inside an executable PT_LOAD")
    elif xen:
        err(f"{name}: unexpected Xen PHYS32_ENTRY note")
    return d, phdrs


def u8(b, o): return b[o]
def u16(b, o): return struct.unpack_from("<H", b, o)[0]
def u32(b, o): return struct.unpack_from("<I", b, o)[0]
def u64(b, o): return struct.unpack_from("<Q", b, o)[0]


def check_bzimage(path, bin_path, elf):
    name = os.path.basename(path)
    with open(path, "rb") as f:
        bz = f.read()
    with open(bin_path, "rb") as f:
        flat = f.read()
    setup_sects = u8(bz, 0x1F1) or 4
    poff = (setup_sects + 1) * 512
    payload = bz[poff:]
    want = {
        "boot_flag": (u16(bz, 0x1FE), 0xAA55),
        "header": (u32(bz, 0x202), 0x53726448),
        "version": (u16(bz, 0x206), 0x020F),
        "code32_start": (u32(bz, 0x214), LOAD),
        "pref_address": (u64(bz, 0x258), LOAD),
    }
    for k, (got, exp) in want.items():
        if got != exp:
            err(f"{name}: {k} {got:#x} != {exp:#x}")
    if not u8(bz, 0x211) & 0x01:
        err(f"{name}: loadflags lacks LOADED_HIGH")
    if not u16(bz, 0x236) & 0x01:
        err(f"{name}: xloadflags lacks XLF_KERNEL_64")
    if u8(bz, 0x200) != 0xEB or 0x202 + u8(bz, 0x201) < 0x26C:
        err(f"{name}: jump at 0x200 does not cover the 2.15 header")
    if u32(bz, 0x238) == 0:
        err(f"{name}: cmdline_size is 0")
    if u32(bz, 0x1F4) * 16 < len(payload):
        err(f"{name}: syssize {u32(bz, 0x1F4)} paragraphs < payload {len(payload)} bytes")
    if payload[:len(flat)] != flat:
        err(f"{name}: payload differs from {os.path.basename(bin_path)}")
    ki = u32(bz, 0x268)
    if payload[ki:ki + 4] != b"LToP" or u32(payload, ki + 8) < 16:
        err(f"{name}: kernel_info_offset {ki:#x} does not point to a kernel_info")
    if elf:
        d, phdrs = elf
        span = max(p[4] + p[6] for p in phdrs if p[0] == 1) - LOAD
        if u32(bz, 0x260) < span:
            err(f"{name}: init_size {u32(bz, 0x260):#x} < image memory span {span:#x}")
        code = file_bytes_at(d, phdrs, ENTRY64, 16)
        if code is None or payload[0x200:0x210] != code:
            err(f"{name}: payload+0x200 does not hold the ELF's 64-bit entry code")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    out = sys.argv[1]
    for n in sys.argv[2:]:
        elf = check_elf(os.path.join(out, n + ".elf"), want_pvh=False)
        check_elf(os.path.join(out, n + "-pvh.elf"), want_pvh=True)
        bz = os.path.join(out, n + ".bzImage")
        if os.path.exists(bz):
            check_bzimage(bz, os.path.join(out, n + ".bin"), elf)
        print(f"checked {n}")
    if errors:
        print(f"check_images: FAIL ({len(errors)} problems)")
        return 1
    print("check_images: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
