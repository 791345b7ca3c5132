#!/usr/bin/env python3
"""A guest that floods virtio-blk with chains it may not make, seen from
outside: the VMM must stay a well-behaved process.

    blk_flood_test.py VMM GUEST_DIR ENGINE      (ENGINE: uring or sync)

The virtio_blk_hostile guest (case=flood) makes every entry of a queue of
256 an INDIRECT chain into one shared table of 65536 descriptors (a 1 MiB
read in 65534 segments), notifies once, then halts. While it sits there:
  - the device calls the chains a protocol violation (needs_reset);
  - the VMM's resident memory stays under 96 MiB (kept iovecs of such
    chains once cost 268 MB);
  - the API answers GET / within 1 s, asked every 50 ms from boot on;
  - SIGTERM ends the VMM with status 143 within 2 s (drain() once waited
    for completions that never came, and SIGTERM went unheard).
"""
import os
import signal
import socket
import sys
import tempfile
import threading
import time

from lifecycle_test import SKIP, Running, fail

RSS_LIMIT_KIB = 96 * 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def api_get_root(path, timeout):
    """Seconds GET / took and its status line."""
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while b"\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    return time.monotonic() - start, answer.split(b"\r\n")[0].decode(errors="replace")


class ApiPoller(threading.Thread):
    """Asks GET / every 50 ms until stopped; keeps the slowest answer."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.slowest = 0.0
        self.answers = 0
        self.errors = []

    def run(self):
        while not self.stop.wait(0.05):
            if not os.path.exists(self.path):
                continue
            try:
                took, status = api_get_root(self.path, 10)
            except OSError as e:
                self.errors.append(str(e))
                continue
            if not status.startswith("HTTP/1.1 200"):
                self.errors.append(status)
            self.slowest = max(self.slowest, took)
            self.answers += 1


def main():
    vmm, guests, engine = sys.argv[1:4]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIPPED: /dev/kvm is missing ***")
        return 1 if os.environ.get("VMM_REQUIRE_KVM") == "1" else SKIP
    with tempfile.TemporaryDirectory(prefix="vmm-flood-") as tmp:
        image = os.path.join(tmp, "disk.img")
        with open(image, "wb") as f:
            f.truncate(2048 * 512)
        sock = os.path.join(tmp, "api.sock")
        vm = Running([vmm, "--kernel", os.path.join(guests, "virtio_blk_hostile-pvh.elf"),
                      "--mem", "128", "--api-sock", sock,
                      "--drive", f"path={image},io={engine}", "--cmdline", "case=flood mem_mib=128"])
        poller = ApiPoller(sock)
        poller.start()
        try:
            if not vm.wait_for(r"virtio_blk_hostile: flood: spinning", 60):
                return fail("the flood guest never got to spin", vm.text)
            # Every check is made and reported, not just the first to fail.
            problems = []
            # Not the line's start: the VMM's own report of the violation
            # goes to stderr at that moment and can split the guest's line.
            if not vm.wait_for(r"flood: needs_reset", 0):
                problems.append("the device did not call the flood a protocol violation")
            time.sleep(0.5)  # time for anything still queued on the I/O thread
            rss = rss_kib(vm.proc.pid)
            print(f"info: VmRSS {rss} KiB after the flood")
            if rss > RSS_LIMIT_KIB:
                problems.append(f"VmRSS {rss} KiB after the flood, more than {RSS_LIMIT_KIB}")
            poller.stop.set()
            poller.join()
            print(f"info: the API answered GET / {poller.answers} times, the slowest in "
                  f"{poller.slowest * 1000:.0f} ms")
            if poller.errors or poller.answers == 0 or poller.slowest > 1.0:
                problems.append(f"GET /: {poller.answers} answers, the slowest after "
                                f"{poller.slowest:.2f} s (expected within 1 s), errors "
                                f"{poller.errors[:3]}")
            start = time.monotonic()
            vm.proc.send_signal(signal.SIGTERM)
            code = vm.finish(timeout=10)
            took = time.monotonic() - start
            print(f"info: SIGTERM: status {code} after {took * 1000:.0f} ms")
            if code != 143 or took > 2.0:
                problems.append(f"SIGTERM: status {code} after {took:.2f} s "
                                "(expected 143 within 2 s)")
            if problems:
                return fail("; ".join(problems), vm.text)
            print(f"ok: flood with io={engine}: needs_reset, VmRSS {rss} KiB, "
                  f"SIGTERM: 143 after {took * 1000:.0f} ms")
            return 0
        finally:
            poller.stop.set()
            if vm.proc.poll() is None:
                vm.proc.kill()
                vm.proc.wait()


if __name__ == "__main__":
    sys.exit(main())
