#!/usr/bin/env python3
"""Writes the seed corpus of the libFuzzer targets (tests/fuzz/corpus/).

fuzz_virtqueue seeds: a 16-byte header (see fuzz_virtqueue.cpp) followed by
the start of guest RAM, laid out by a small model of a virtio driver.
fuzz_console seeds: a 32-byte header (both queues and a script of device
calls, see fuzz_console.cpp) followed by guest RAM with both queues.
fuzz_net seeds: a 24-byte header (both queues, see fuzz_net.cpp), the
frames the host sends, then guest RAM with both queues.
fuzz_http seeds: the bytes a client sends to the API socket. Run it
after changing an input format; the output is committed.
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
