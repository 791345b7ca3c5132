#!/usr/bin/env python3
"""Wrap a flat 64-bit test guest binary into a Linux bzImage.

usage: make_bzimage.py IN.bin OUT.bzImage [--elf IN.elf] [--init-size N]

IN.bin is `objcopy -O binary` of a program linked at 0x100000 whose 64-bit
entry point is at offset 0x200 (Linux 64-bit boot protocol: the loader puts
the protected-mode part at 0x100000 and jumps to load address + 0x200 in
long mode with RSI = boot_params).

The output is: boot sector + SETUP_SECTS setup sectors (only the setup
header is meaningful, the setup code is zeros since no real-mode entry is
provided) followed by IN.bin unchanged.  Boot protocol version 2.15
(0x020f).  If IN.bin contains a "LToP" kernel_info, kernel_info_offset
points to it.

--elf gives the ELF the binary was made from: init_size is then computed
from its PT_LOAD segments (covering .bss/stack), and the entry point and
load address are cross-checked.  Without --elf, --init-size (default: the
binary size rounded up plus 1 MiB) is used.
"""
import argparse
import struct
import sys

SECTOR = 512
SETUP_SECTS = 4
LOAD_ADDR = 0x100000
ENTRY64_OFFSET = 0x200
BOOT_PROTOCOL = 0x020F
HEADER_END = 0x26C  # end of the 2.15 setup header (kernel_info_offset)

LOADED_HIGH = 0x01
XLF_KERNEL_64 = 0x01


def align_up(v, a):
    return (v + a - 1) // a * a


def elf_info(path):
    """Return (e_entry, min load paddr, max load paddr+memsz) of an ELF64."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit(f"{path}: not a little-endian ELF64 file")
    e_entry, e_phoff = struct.unpack_from("<QQ", data, 0x18)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    lo, hi = None, None
    for i in range(e_phnum):
        p_type, _flags, _off, _vaddr, p_paddr, _filesz, p_memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, e_phoff + i * e_phentsize)
        if p_type != 1 or p_memsz == 0:  # PT_LOAD
            continue
        lo = p_paddr if lo is None else min(lo, p_paddr)
        hi = p_paddr + p_memsz if hi is None else max(hi, p_paddr + p_memsz)
    if lo is None:
        raise SystemExit(f"{path}: no PT_LOAD segments")
    return e_entry, lo, hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="flat binary (objcopy -O binary), linked at 0x100000")
    ap.add_argument("output", help="bzImage to write")
    ap.add_argument("--elf", help="ELF the binary came from (init_size, sanity checks)")
    ap.add_argument("--init-size", type=lambda s: int(s, 0), help="override init_size")
    args = ap.parse_args()

    with open(args.input, "rb") as f:
        payload = f.read()
    if len(payload) <= ENTRY64_OFFSET:
        raise SystemExit(f"{args.input}: too small ({len(payload)} bytes) to have an entry at 0x200")

    if args.elf:
        entry, lo, hi = elf_info(args.elf)
        if lo != LOAD_ADDR:
            raise SystemExit(f"{args.elf}: loads at {lo:#x}, expected {LOAD_ADDR:#x}")
        if entry != LOAD_ADDR + ENTRY64_OFFSET:
            raise SystemExit(f"{args.elf}: e_entry {entry:#x}, expected {LOAD_ADDR + ENTRY64_OFFSET:#x}")
        mem_size = hi - lo
    else:
        mem_size = align_up(len(payload), 4096) + 0x100000

    # kernel_info ("LToP") must live in the protected-mode image.
    kinfo = None
    for off in range(0, min(len(payload), 0x10000) - 15, 4):
        if payload[off:off + 4] == b"LToP":
            kinfo = off
            break
    if kinfo is None:
        payload += b"\0" * (align_up(len(payload), 16) - len(payload))
        kinfo = len(payload)
        payload += b"LToP" + struct.pack("<III", 16, 16, 0)

    init_size = args.init_size if args.init_size is not None else mem_size
    init_size = align_up(max(init_size, len(payload)), 4096)

    setup = bytearray(SECTOR * (SETUP_SECTS + 1))
    msg = b"This is a test guest bzImage; boot it with a Linux boot protocol loader.\r\n"
    setup[0:len(msg)] = msg
    version_str = b"test-guest (kvm test guest bzImage)\0"
    version_off = 0x300  # inside the setup sectors, after the header
    setup[version_off:version_off + len(version_str)] = version_str

    def put(fmt, off, *vals):
        struct.pack_into("<" + fmt, setup, off, *vals)

    put("B", 0x1F1, SETUP_SECTS)                 # setup_sects
    put("H", 0x1F2, 0)                           # root_flags
    put("I", 0x1F4, (len(payload) + 15) // 16)   # syssize (16-byte paragraphs)
    put("H", 0x1F8, 0)                           # ram_size
    put("H", 0x1FA, 0xFFFF)                      # vid_mode: NORMAL_VGA
    put("H", 0x1FC, 0)                           # root_dev
    put("H", 0x1FE, 0xAA55)                      # boot_flag
    put("BB", 0x200, 0xEB, HEADER_END - 0x202)   # jump: short jmp over the header
    put("4s", 0x202, b"HdrS")                    # header
    put("H", 0x206, BOOT_PROTOCOL)               # version
    put("I", 0x208, 0)                           # realmode_swtch
    put("H", 0x20C, 0x1000)                      # start_sys_seg (obsolete)
    put("H", 0x20E, version_off - 0x200)         # kernel_version
    put("B", 0x210, 0)                           # type_of_loader (set by loader)
    put("B", 0x211, LOADED_HIGH)                 # loadflags
    put("H", 0x212, 0x8000)                      # setup_move_size
    put("I", 0x214, LOAD_ADDR)                   # code32_start
    put("I", 0x218, 0)                           # ramdisk_image (set by loader)
    put("I", 0x21C, 0)                           # ramdisk_size (set by loader)
    put("I", 0x220, 0)                           # bootsect_kludge
    put("H", 0x224, 0)                           # heap_end_ptr
    put("B", 0x226, 0)                           # ext_loader_ver
    put("B", 0x227, 0)                           # ext_loader_type
    put("I", 0x228, 0)                           # cmd_line_ptr (set by loader)
    put("I", 0x22C, 0x7FFFFFFF)                  # initrd_addr_max
    put("I", 0x230, 0x100000)                    # kernel_alignment
    put("B", 0x234, 0)                           # relocatable_kernel: no, fixed at 1 MiB
    put("B", 0x235, 20)                          # min_alignment (log2, 1 MiB)
    put("H", 0x236, XLF_KERNEL_64)               # xloadflags
    put("I", 0x238, 2047)                        # cmdline_size
    put("I", 0x23C, 0)                           # hardware_subarch: PC
    put("Q", 0x240, 0)                           # hardware_subarch_data
    put("I", 0x248, 0)                           # payload_offset (no compressed payload)
    put("I", 0x24C, 0)                           # payload_length
    put("Q", 0x250, 0)                           # setup_data
    put("Q", 0x258, LOAD_ADDR)                   # pref_address
    put("I", 0x260, init_size)                   # init_size
    put("I", 0x264, 0)                           # handover_offset (no EFI)
    put("I", 0x268, kinfo)                       # kernel_info_offset

    with open(args.output, "wb") as f:
        f.write(bytes(setup))
        f.write(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
