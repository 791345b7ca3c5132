#!/usr/bin/env python3
"""Writes the seed corpus of the libFuzzer targets (tests/fuzz/corpus/).

fuzz_virtqueue seeds: a 16-byte header (see fuzz_virtqueue.cpp) followed by
the start of guest RAM, laid out by a small model of a virtio driver.
fuzz_console seeds: a 32-byte header (both queues and a script of device
calls, see fuzz_console.cpp) followed by guest RAM with both queues.
fuzz_net seeds: a 24-byte header (both queues, see fuzz_net.cpp), the
frames the host sends, then guest RAM with both queues.
fuzz_http seeds: the bytes a client sends to the API socket.
fuzz_mmio, fuzz_legacy, fuzz_kernel, fuzz_rng, fuzz_uring, fuzz_config
seeds: see the input format at the top of each fuzz_<name>.cpp. Run it
after changing an input format; the output is committed.
fuzz_snapshot seeds are not written here: the fuzzer writes them itself
with the VMM's own state writers (KVM structs, device states), run as
  FUZZ_SNAPSHOT_WRITE_SEEDS=tests/fuzz/corpus/snapshot build-fuzz/fuzz_snapshot
"""
import os
import struct
import sys

NEXT, WRITE, INDIRECT = 1, 2, 4
F_INDIRECT, F_EVENT_IDX, F_SKIP_VALIDATION, F_SLICES = 1, 2, 4, 8
HIGH_RAM = 16 << 20  # the fuzzer's second region: 16 MiB of zeroes


class Driver:
    """The driver side of one split virtqueue in a bytearray of guest RAM."""

    def __init__(self, size, desc=0x40, avail=0x140, used=0x180, start=0):
        self.size, self.desc, self.avail, self.used = size, desc, avail, used
        self.ram = bytearray(0x210)  # rings for up to 16 entries
        self.next_desc = 0
        self.avail_idx = start
        self.start = start
        self.data = len(self.ram)  # buffers and tables go after the rings

    def _put(self, address, blob):
        end = address + len(blob)
        if end > len(self.ram):
            self.ram.extend(bytes(end - len(self.ram)))
        self.ram[address:end] = blob

    def alloc(self, length, fill=0):
        address = self.data
        self.data += (length + 15) & ~15
        self._put(address, bytes([fill]) * length)
        return address

    @staticmethod
    def desc_bytes(addr, length, flags=0, next_index=0):
        return struct.pack("<QIHH", addr, length, flags, next_index)

    def set_desc(self, index, addr, length, flags=0, next_index=0):
        self._put(self.desc + 16 * index, self.desc_bytes(addr, length, flags, next_index))

    def publish(self, head):
        self._put(self.avail + 4 + 2 * (self.avail_idx % self.size), struct.pack("<H", head))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self._put(self.avail + 2, struct.pack("<H", self.avail_idx))

    def chain(self, buffers):
        """buffers: (length, writable) pairs, linked in the descriptor table."""
        head = self.next_desc
        for i, (length, writable) in enumerate(buffers):
            index = self.next_desc
            self.next_desc += 1
            last = i + 1 == len(buffers)
            flags = (WRITE if writable else 0) | (0 if last else NEXT)
            self.set_desc(index, self.alloc(length, 0x11 * (i + 1)), length, flags,
                          0 if last else self.next_desc)
        self.publish(head)

    def indirect(self, entries):
        """entries: (addr or None, length, writable), linked in one table."""
        table = bytearray()
        for i, (addr, length, writable) in enumerate(entries):
            last = i + 1 == len(entries)
            flags = (WRITE if writable else 0) | (0 if last else NEXT)
            addr = self.alloc(length) if addr is None else addr
            table += self.desc_bytes(addr, length, flags, 0 if last else i + 1)
        address = self.alloc(len(table))
        self._put(address, table)
        index = self.next_desc
        self.next_desc += 1
        self.set_desc(index, address, len(table), INDIRECT)
        self.publish(index)

    def seed(self, flags=0, pops=16, chunk=64):
        header = struct.pack("<HBBHHHHHH", self.size, flags, pops, self.desc, self.avail,
                             self.used, self.start, self.start, chunk)
        return header + bytes(self.ram)


def seeds():
    basic = Driver(8)
    basic.chain([(16, False), (32, True)])
    basic.chain([(8, False), (8, False), (4, True)])
    basic.chain([(100, True)])
    yield "basic", basic.seed()

    indirect = Driver(16)
    indirect.indirect([(None, 16, False), (None, 200, False), (None, 1, True)])
    indirect.chain([(64, False)])
    yield "indirect_event_idx_slices", indirect.seed(F_INDIRECT | F_EVENT_IDX | F_SLICES, chunk=7)

    wrap = Driver(4, start=0xFFFE)
    for _ in range(3):
        wrap.chain([(10, False), (10, True)])
    yield "index_wrap", wrap.seed(F_EVENT_IDX, chunk=3)

    # 257 buffers of 16 MiB: past 2^32 bytes, refused.
    big = Driver(8)
    big.indirect([(HIGH_RAM, HIGH_RAM, True)] * 257)
    yield "length_overflow", big.seed(F_INDIRECT)

    loop = Driver(8)
    loop.set_desc(0, loop.alloc(8), 8, NEXT, 1)
    loop.set_desc(1, loop.alloc(8), 8, NEXT, 0)
    loop.publish(0)
    yield "loop", loop.seed()

    unvalidated = Driver(6)  # not a power of two, used without validation
    unvalidated.chain([(8, False), (8, True)])
    yield "unvalidated_size", unvalidated.seed(F_SKIP_VALIDATION)


# fuzz_console script steps: the call in the low 3 bits, its argument above.
RXQ, TXQ, ENQUEUE, BACKEND, SET_SIZE, WRITE_CONFIG, READ_CONFIG, RESET = range(8)
C_INDIRECT, C_EVENT_IDX, C_SIZE, C_RX_NOT_READY, C_TX_NOT_READY = 1, 2, 4, 8, 16


def step(op, arg=0):
    return op | (arg << 3)


def console_pair(size=8):
    """receiveq and transmitq drivers sharing one guest RAM."""
    rx = Driver(size, desc=0x40, avail=0x140, used=0x180)
    tx = Driver(size, desc=0x240, avail=0x340, used=0x380)
    tx.ram = rx.ram  # one bytearray, grown in place by either
    rx.data, tx.data = 0x1000, 0x2000  # buffers clear of both rings
    return rx, tx


def console_seed(rx, tx, script, flags=0):
    header = struct.pack("<BBHHHHHHHH", flags, len(script), rx.size, tx.size, rx.desc,
                         rx.avail, rx.used, tx.desc, tx.avail, tx.used)
    header += bytes(script).ljust(14, b"\0")
    return header + bytes(rx.ram)


def console_seeds():
    rx, tx = console_pair()
    for length in (4, 8, 64):
        rx.chain([(length, True)])
    tx.chain([(6, False), (5, False)])
    tx.chain([(2, False)])
    yield "echo", console_seed(rx, tx, [
        step(TXQ), step(ENQUEUE), step(BACKEND), step(RXQ), step(SET_SIZE, 5),
        step(WRITE_CONFIG, 8), step(READ_CONFIG, 0), step(RESET), step(RXQ), step(TXQ)],
        C_SIZE)

    rx, tx = console_pair(16)
    rx.indirect([(None, 16, True), (None, 100, True)])
    rx.chain([(1, False)])  # a driver bug: readable buffer on receiveq
    tx.indirect([(None, 32, False), (None, 8, True)])
    yield "indirect_event_idx", console_seed(rx, tx, [
        step(ENQUEUE, 31), step(ENQUEUE, 31), step(RXQ), step(BACKEND), step(TXQ),
        step(SET_SIZE, 1), step(SET_SIZE, 2)], C_INDIRECT | C_EVENT_IDX | C_SIZE)

    rx, tx = console_pair()
    rx.publish(200)  # head beyond the queue size
    tx.chain([(4, False)])
    yield "broken_rx", console_seed(rx, tx, [
        step(ENQUEUE), step(BACKEND), step(ENQUEUE), step(BACKEND), step(TXQ), step(RESET),
        step(BACKEND)])

    rx, tx = console_pair()
    rx.chain([(16, True)])
    yield "tx_not_ready", console_seed(rx, tx, [
        step(ENQUEUE), step(TXQ), step(BACKEND), step(WRITE_CONFIG, 9)], C_TX_NOT_READY)


F_NET_MRG, F_NET_TSO = 4, 8


def net_seed(rx, tx, frames, flags=0, rounds=2):
    """fuzz_net input: header, the host's frames, then guest RAM."""
    header = struct.pack("<HHBBBBHHHHHHHH", rx.size, tx.size, flags, rounds, len(frames), 0,
                         rx.desc, rx.avail, rx.used, tx.desc, tx.avail, tx.used, 0, 0)
    body = b"".join(struct.pack("<H", len(f)) + f for f in frames)
    return header + body + bytes(rx.ram)


def net_seeds():
    frame = bytes(12) + bytes(range(60))  # vnet header + a small frame
    big = bytes(12) + bytes(3000)
    rx, tx = console_pair()
    rx.chain([(1526, True)])
    tx.chain([(12, False), (60, False)])
    yield "rx_tx", net_seed(rx, tx, [frame])

    rx, tx = console_pair()
    for _ in range(4):
        rx.chain([(1024, True)])
    yield "mergeable", net_seed(rx, tx, [big, frame], F_NET_MRG | F_NET_TSO)

    rx, tx = console_pair()
    rx.chain([(8, True)])  # smaller than the header
    tx.chain([(6, False)])
    yield "short_buffers", net_seed(rx, tx, [frame], F_NET_MRG)

    rx, tx = console_pair()
    tx.chain([(12, False), (64, True)])  # writable descriptor on transmit
    yield "tx_writable", net_seed(rx, tx, [])


def http_seeds():
    """fuzz_http input: one client's byte stream, requests as Firecracker clients send them."""
    body = b'{"drive_id": "rootfs", "path_on_host": "/tmp/rootfs.ext4", "is_root_device": true}'
    put = b"PUT /drives/rootfs HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
    put += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    yield "get", b"GET /machine-config HTTP/1.1\r\nHost: localhost\r\n\r\n"
    yield "put", put
    yield "pipelined", (b"GET / HTTP/1.1\r\n\r\n" + put +
                        b"PATCH /vm HTTP/1.1\r\nContent-Length: 20\r\n\r\n"
                        b'{"state": "Paused"}\n' + b"GET /throw HTTP/1.1\r\nConnection: close\r\n\r\n")
    yield "chunked", (b"PUT /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"10\r\n{\"action_type\": \r\n10;ext=1\r\n\"InstanceStart\"}\r\n0\r\n\r\n")
    yield "expect", (b"PUT /boot-source HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 40\r\n"
                     b"\r\n")
    yield "http10", b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n"
    yield "too_large", b"PUT /logger HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n{"


# fuzz_mmio: a driver's register accesses (kind, width, offset, value).
M_WRITE, M_READ, M_IO_TURN, M_RAM, M_REG, M_HOST = range(6)
ACK, DRV, FEATURES_OK, DRIVER_OK = 1, 2, 8, 4


def mreg(offset, value):
    return (M_REG, 3, offset, value)


def mmio_init(queues, features_low=0):
    """The Linux driver's probe: status steps, features, each queue's layout."""
    steps = [(M_READ, 3, 0x000, 0), (M_READ, 3, 0x004, 0), (M_READ, 3, 0x008, 0),
             mreg(0x70, 0), mreg(0x70, ACK), mreg(0x70, ACK | DRV),
             mreg(0x14, 1), (M_READ, 3, 0x010, 0), mreg(0x14, 0), (M_READ, 3, 0x010, 0),
             mreg(0x24, 1), mreg(0x20, 1), mreg(0x24, 0), mreg(0x20, features_low),
             mreg(0x70, ACK | DRV | FEATURES_OK), (M_READ, 3, 0x070, 0)]
    for index, driver in enumerate(queues):
        steps += [mreg(0x30, index), (M_READ, 3, 0x034, 0), mreg(0x38, driver.size),
                  mreg(0x80, driver.desc), mreg(0x84, 0), mreg(0x90, driver.avail),
                  mreg(0x94, 0), mreg(0xa0, driver.used), mreg(0xa4, 0), mreg(0x44, 1)]
    steps.append(mreg(0x70, ACK | DRV | FEATURES_OK | DRIVER_OK))
    return steps


def mmio_seed(device, steps, ram):
    body = b"".join(struct.pack("<BBHI", *step) for step in steps)
    return struct.pack("<BBH", device, len(steps), 0) + body + bytes(ram)


BLK_IN, BLK_OUT, BLK_FLUSH, BLK_GET_ID, BLK_DISCARD, BLK_WRITE_ZEROES = 0, 1, 4, 8, 11, 13


def block_request(driver, kind, sector, data_length, data_writable):
    """One virtio-blk request: header, data, status byte."""
    header = struct.pack("<IIQ", kind, 0, sector)
    head = driver.next_desc
    buffers = [(len(header), False)]
    if data_length:
        buffers.append((data_length, data_writable))
    buffers.append((1, True))
    driver.chain(buffers)
    # chain() filled the buffers with a pattern: put the real header in.
    desc = driver.ram[driver.desc + 16 * head:driver.desc + 16 * head + 16]
    address = struct.unpack("<Q", desc[:8])[0]
    driver.ram[address:address + len(header)] = header


def mmio_seeds():
    features = (1 << 28) | (1 << 29)  # INDIRECT_DESC, EVENT_IDX
    rng = Driver(8)
    rng.chain([(64, True)])
    rng.chain([(16, True), (16, True)])
    yield "rng", mmio_seed(0, mmio_init([rng], features) + [
        mreg(0x50, 0), (M_IO_TURN, 0, 0, 0), (M_READ, 3, 0x060, 0), mreg(0x64, 1),
        (M_RAM, 0, rng.avail + 2, 3), mreg(0x50, 0), (M_IO_TURN, 0, 0, 0), mreg(0x70, 0)],
        rng.ram)

    blk = Driver(16)  # three descriptors a request
    block_request(blk, BLK_OUT, 1, 512, False)
    block_request(blk, BLK_IN, 1, 512, True)
    block_request(blk, BLK_GET_ID, 0, 20, True)
    block_request(blk, BLK_FLUSH, 0, 0, False)
    yield "block", mmio_seed(1, mmio_init([blk], features) + [
        (M_READ, 7, 0x100, 0), (M_READ, 3, 0x114, 0), (M_WRITE, 0, 0x120, 1),
        mreg(0x50, 0), (M_IO_TURN, 0, 0, 0), (M_READ, 3, 0x060, 0), mreg(0x64, 3),
        mreg(0x38, 4), mreg(0x70, 0), (M_READ, 3, 0x070, 0)], blk.ram)
    yield "block_read_only", mmio_seed(2, mmio_init([blk]) + [
        mreg(0x50, 0), (M_IO_TURN, 0, 0, 0), mreg(0x70, 0x80), mreg(0x70, 0)], blk.ram)

    rx, tx = console_pair()
    rx.chain([(64, True)])
    tx.chain([(5, False)])
    yield "console", mmio_seed(3, mmio_init([rx, tx], 1) + [
        (M_READ, 1, 0x100, 0), mreg(0x50, 1), mreg(0x50, 0), (M_IO_TURN, 0, 0, 0),
        (M_HOST, 0, 9, 0), (M_IO_TURN, 0, 0, 0), (M_HOST, 1, 0, (25 << 16) | 80),
        (M_READ, 3, 0x0fc, 0), (M_READ, 3, 0x060, 0), mreg(0x64, 2), (M_HOST, 0, 4095, 0),
        (M_IO_TURN, 0, 0, 0), mreg(0x50, 7), mreg(0x70, 0), (M_HOST, 0, 3, 0)], rx.ram)

    bad = Driver(8, desc=0x44)  # misaligned descriptor table: NEEDS_RESET
    bad.chain([(8, True)])
    yield "needs_reset", mmio_seed(0, mmio_init([bad]) + [
        (M_READ, 3, 0x070, 0), mreg(0x50, 0), (M_IO_TURN, 0, 0, 0), mreg(0x70, 0),
        mreg(0x70, DRIVER_OK), mreg(0x70, ACK | DRV | FEATURES_OK)], bad.ram)


# fuzz_legacy: port accesses (kind, width, port, value).
L_OUT, L_IN, L_HOST_INPUT, L_CTRL_ALT_DEL, L_MMIO_WRITE, L_MMIO_READ = 0, 1, 4, 5, 6, 7


def legacy_seed(steps):
    return b"".join(struct.pack("<BBHI", *step) for step in steps)


def legacy_seeds():
    com = 0x3f8
    yield "serial", legacy_seed([
        (L_OUT, 0, com + 3, 0x80), (L_OUT, 0, com, 0x01), (L_OUT, 0, com + 1, 0),
        (L_OUT, 0, com + 3, 0x03), (L_OUT, 0, com + 4, 0x0b), (L_OUT, 0, com + 2, 0xc7),
        (L_OUT, 0, com + 1, 0x03), (L_IN, 0, com + 2, 0), (L_IN, 0, com + 5, 0),
        (L_OUT, 0, com, ord("h")), (L_OUT, 0, com, ord("i")), (L_HOST_INPUT, 0, ord("x"), 5),
        (L_IN, 0, com + 2, 0), (L_IN, 0, com, 0), (L_IN, 0, com + 5, 0),
        (L_OUT, 0, com + 4, 0x1f), (L_OUT, 0, com, 0x41), (L_IN, 0, com + 6, 0),
        (L_IN, 0, com, 0), (L_OUT, 0, com + 7, 0x5a), (L_IN, 0, com + 7, 0),
        (L_HOST_INPUT, 0, 0x79, 0x80000000), (L_OUT, 0, com + 2, 0x02),
        (L_OUT, 2 | 4, com, 0x41424344), (L_IN, 1, com + 4, 0)])
    kbd, cmd = 0x60, 0x64
    yield "i8042", legacy_seed([
        (L_OUT, 0, cmd, 0xaa), (L_IN, 0, cmd, 0), (L_IN, 0, kbd, 0), (L_OUT, 0, cmd, 0x20),
        (L_IN, 0, kbd, 0), (L_OUT, 0, cmd, 0x60), (L_OUT, 0, kbd, 0x47), (L_OUT, 0, cmd, 0xa9),
        (L_IN, 0, kbd, 0), (L_OUT, 0, kbd, 0xff), (L_IN, 0, kbd, 0), (L_IN, 0, kbd, 0),
        (L_OUT, 0, kbd, 0xf2), (L_IN, 0, kbd, 0), (L_OUT, 0, kbd, 0xed), (L_OUT, 0, kbd, 0x07),
        (L_OUT, 0, kbd, 0xfe), (L_CTRL_ALT_DEL, 0, 0, 0), (L_IN, 0, kbd, 0),
        (L_OUT, 0, cmd, 0xd2), (L_OUT, 0, kbd, 0x1c), (L_OUT, 0, cmd, 0xd3), (L_OUT, 0, kbd, 1),
        (L_OUT, 0, cmd, 0xad), (L_CTRL_ALT_DEL, 0, 0, 0), (L_OUT, 0, cmd, 0xae),
        (L_OUT, 0, kbd, 0xf5), (L_CTRL_ALT_DEL, 0, 0, 0), (L_OUT, 0, cmd, 0xd1),
        (L_OUT, 0, kbd, 0x02), (L_OUT, 0, cmd, 0xfe), (L_IN, 1, kbd, 0)])
    yield "exit_power_off", legacy_seed([
        (L_OUT, 0, 0xf5, 0), (L_IN, 0, 0xf4, 0), (L_OUT, 1, 0xf4, 0x2a), (L_OUT, 0, 0xf4, 7),
        (L_IN, 0, 0x3c0, 0), (L_OUT, 0, 0x3c0, 0x80), (L_OUT, 0, 0x3c0, 0x34),
        (L_OUT, 1, 0x3c0, 0x34), (L_OUT, 0, 0x3c0, 0x14), (L_IN, 2, 0x3fe, 0),
        (L_MMIO_WRITE, 0, 0, 0), (L_MMIO_WRITE, 3, 4, 3), (L_MMIO_READ, 7, 0xffc, 0),
        (L_OUT, 0, 0x80, 0), (L_IN, 2, 0x5c, 0)])


# fuzz_kernel: header, command line, kernel file.
K_LINUX64, K_PVH, K_INITRD = 1, 2, 4
K_MEM_2M, K_MEM_4M, K_MEM_16M, K_MEM_3G = 0, 8, 16, 24


def kernel_seed(flags, cmdline, kernel, initrd_size=0):
    return struct.pack("<BBHI", flags, 0, len(cmdline), initrd_size) + cmdline + kernel


def elf_kernel(pvh=True):
    """A vmlinux: one PT_LOAD at 1 MiB linked high, and the Xen PVH note."""
    vaddr, paddr, code = 0xffffffff81000000, 0x100000, b"\xf4" * 16
    phnum = 2 if pvh else 1
    note_name, note_desc = b"Xen\0", struct.pack("<I", paddr)
    note = struct.pack("<III", len(note_name), len(note_desc), 18) + note_name + note_desc
    phoff = 64
    data_off = phoff + 56 * phnum
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, vaddr, phoff, 0, 0, 64, 56, phnum,
                               0, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 7, data_off, vaddr, paddr, len(code), 0x2000, 0x1000)
    phdrs = load
    if pvh:
        phdrs += struct.pack("<IIQQQQQQ", 4, 4, data_off + len(code), 0, 0, len(note),
                             len(note), 4)
    return ehdr + phdrs + code + (note if pvh else b"")


def bzimage(init_size=0x100000, relocatable=1, version=0x020F):
    """A bzImage: one setup sector after the boot sector, 1 KiB of kernel."""
    image = bytearray(1024 + 1024)
    kernel_bytes = 1024

    def put(offset, fmt, value):
        struct.pack_into(fmt, image, offset, value)

    put(0x1F1, "<B", 1)  # setup_sects
    put(0x1F4, "<I", kernel_bytes // 16)  # syssize
    put(0x1FE, "<H", 0xAA55)
    image[0x200:0x202] = bytes([0xEB, 0x6A])  # jump past the header
    image[0x202:0x206] = b"HdrS"
    put(0x206, "<H", version)
    put(0x211, "<B", 1)  # LOADED_HIGH
    put(0x22C, "<I", 0x7FFFFFFF)  # initrd_addr_max
    put(0x230, "<I", 0x200000)  # kernel_alignment
    put(0x234, "<B", relocatable)
    put(0x236, "<H", 1)  # XLF_KERNEL_64
    put(0x238, "<I", 2047)  # cmdline_size
    put(0x258, "<Q", 0x100000)  # pref_address
    put(0x260, "<I", init_size)
    return bytes(image)


def kernel_seeds():
    cmdline = b"console=ttyS0 reboot=k panic=-1"
    yield "elf_pvh_initrd", kernel_seed(K_INITRD | K_MEM_4M, cmdline, elf_kernel(), 4096)
    yield "elf_linux64", kernel_seed(K_LINUX64 | K_MEM_2M, cmdline, elf_kernel(False))
    yield "elf_pvh_3g", kernel_seed(K_PVH | K_INITRD | K_MEM_3G, b"", elf_kernel(), 5000)
    yield "bzimage_initrd", kernel_seed(K_INITRD | K_MEM_4M, cmdline, bzimage(), 8192)
    yield "bzimage_16m", kernel_seed(K_LINUX64 | K_MEM_16M, cmdline, bzimage(0x800000, 0))
    yield "bzimage_too_big", kernel_seed(K_MEM_2M, cmdline, bzimage(0x400000))


def rng_seed(driver, flags=0, rounds=1):
    header = struct.pack("<HBBHHHHHH", driver.size, flags, rounds, driver.desc, driver.avail,
                         driver.used, driver.start, driver.start, 0)
    return header + bytes(driver.ram)


RNG_HIGH = 1 << 20  # fuzz_rng's second region: 128 KiB


def rng_seeds():
    basic = Driver(8)
    basic.chain([(64, True)])
    basic.chain([(8, False), (32, True)])  # a readable buffer is skipped
    basic.chain([(16, False)])  # nothing writable: length 0
    yield "basic", rng_seed(basic)

    big = Driver(16)
    big.indirect([(RNG_HIGH, 0x18000, True), (None, 64, True)])  # past the 64 KiB cap
    big.chain([(4, True)] * 3)
    yield "indirect_cap", rng_seed(big, 3, 2)

    wrap = Driver(4, start=0xFFFE)
    for _ in range(3):
        wrap.chain([(10, True)])
    yield "index_wrap", rng_seed(wrap, 2)


def uring_seed(driver, script, flags=0):
    header = struct.pack("<HBBHHHHHH", driver.size, flags, len(script), driver.desc,
                         driver.avail, driver.used, driver.start, driver.start, 0)
    return header + bytes(script) + bytes(driver.ram)


U_QUEUE, U_WAIT, U_DRAIN, U_SHRINK, U_RESTORE, U_RESET, U_PUBLISH, U_BACKEND = range(8)


def uring_seeds():
    blk = Driver(16)
    block_request(blk, BLK_OUT, 2, 1024, False)
    block_request(blk, BLK_IN, 2, 1024, True)
    block_request(blk, BLK_FLUSH, 0, 0, False)
    block_request(blk, BLK_IN, 60, 2048, True)
    yield "read_write_flush", uring_seed(blk, [
        step(U_QUEUE), step(U_WAIT), step(U_WAIT), step(U_BACKEND), step(U_DRAIN)])
    yield "shrunk_image", uring_seed(blk, [
        step(U_SHRINK, 3), step(U_QUEUE), step(U_WAIT), step(U_WAIT), step(U_RESTORE),
        step(U_PUBLISH, 3), step(U_QUEUE), step(U_DRAIN), step(U_SHRINK, 0), step(U_RESET),
        step(U_QUEUE), step(U_WAIT)])
    # Writes at 1 KiB past the image's first 16 KiB: cut short by RLIMIT_FSIZE.
    big = Driver(16)
    block_request(big, BLK_OUT, 30, 2048, False)
    block_request(big, BLK_OUT, 40, 512, False)
    block_request(big, BLK_IN, 30, 2048, True)
    yield "file_size_limit", uring_seed(big, [
        step(U_RESTORE, 1), step(U_QUEUE), step(U_WAIT), step(U_WAIT), step(U_DRAIN),
        step(U_RESTORE, 0), step(U_RESET)])
    yield "reset_in_flight", uring_seed(blk, [
        step(U_QUEUE), step(U_RESET), step(U_PUBLISH, 0), step(U_QUEUE), step(U_QUEUE),
        step(U_BACKEND), step(U_DRAIN)], 3)
    ro = Driver(16)
    block_request(ro, BLK_OUT, 0, 512, False)
    block_request(ro, BLK_DISCARD, 0, 16, False)
    block_request(ro, BLK_GET_ID, 0, 20, True)
    yield "read_only", uring_seed(ro, [step(U_QUEUE), step(U_WAIT), step(U_DRAIN)], 4)


def config_seeds():
    document = (b'{"boot-source":{"kernel_image_path":"/k","initrd_path":"/i",'
                b'"boot_args":"console=ttyS0"},"drives":[{"drive_id":"rootfs",'
                b'"path_on_host":"/r","is_root_device":true,"is_read_only":false}],'
                b'"machine-config":{"vcpu_count":2,"mem_size_mib":256},'
                b'"network-interfaces":[{"iface_id":"eth0","host_dev_name":"tap0",'
                b'"guest_mac":"02:00:00:00:00:01"}],"entropy":{},'
                b'"logger":{"level":"Debug"},"metrics":{"metrics_path":"/m"}}')
    yield "document", b"\x00" + document
    arguments = [b"--kernel", b"/k", b"--mem", b"256", b"--cpus", b"2", b"--initrd", b"/i",
                 b"--drive", b"path=/d,ro,id=data,io=uring", b"--net",
                 b"tap=tap0,mac=02:00:00:00:00:01", b"--cpuid-mask", b"avx2,rdrand",
                 b"--console", b"virtio", b"--acpi", b"--boot-entry", b"pvh", b"--cmdline",
                 b"console=hvc0", b"--level", b"Debug", b"--rootfs", b"/r"]
    yield "command_line", b"\x01" + b"\x00".join(arguments)
    yield "command_line_api", b"\x01" + b"\x00".join([
        b"--api-sock", b"/tmp/s", b"--id", b"vm1", b"--http-api-max-payload-size", b"4096",
        b"--no-rng", b"--log-path", b"/tmp/l", b"--show-level", b"--metrics-path", b"/m"])
    yield "command_line_bad", b"\x01" + b"\x00".join([b"--kernel", b"/k", b"--mem", b"-5"])
    yield "drive", b"\x02path=/d,ro,id=0123456789,io=sync"
    yield "net_tap", b"\x03tap=tap0,mac=02:00:00:00:00:01"
    yield "net_fd", b"\x03fd=3"
    yield "option_list", b"\x04a=b,,c,d=e=f,="
    yield "cpuid_mask", b"\x05avx2,rdrand,x2apic"


def write_seeds(name, blobs):
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "corpus", name)
    os.makedirs(out, exist_ok=True)
    for seed_name, blob in blobs:
        with open(os.path.join(out, seed_name), "wb") as f:
            f.write(blob)


def main():
    write_seeds("virtqueue", seeds())
    write_seeds("console", console_seeds())
    write_seeds("net", net_seeds())
    write_seeds("http", http_seeds())
    write_seeds("mmio", mmio_seeds())
    write_seeds("legacy", legacy_seeds())
    write_seeds("kernel", kernel_seeds())
    write_seeds("rng", rng_seeds())
    write_seeds("uring", uring_seeds())
    write_seeds("config", config_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
