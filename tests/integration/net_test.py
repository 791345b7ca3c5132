#!/usr/bin/env python3
"""virtio-net integration tests: test guests against a real tap.

    net_test.py VMM GUEST_DIR CASE

Every case builds a private network namespace with tap0 = 10.0.2.1/24
(netns.py) and deletes it on every path. Cases:
  ping           virtio_net: ARP and ICMP echo through the tap.
  fd             the same with --net fd=N: the tap opened here, as an
                 orchestrator would, and handed over.
  norx           virtio_net_norx: no receive buffers while the host floods the
                 tap; the VMM's I/O thread stays near idle, the serial port
                 keeps going, and traffic resumes once buffers are posted.
  hostile-NAME   virtio_net_hostile case=NAME: NEEDS_RESET (or a harmless
                 use), then recovery; the VMM keeps serving.
  link-down      the tap is deleted while the guest pings: the VMM logs the
                 link going down once and keeps running until the guest ends.
  sigterm-during-io  SIGTERM while the guest pings: status 143 within 1 s.
  no-permission  a tap the VMM may not attach to (no CAP_NET_ADMIN): one line.
  not-vnet-hdr   --net fd=N of a tap opened without IFF_VNET_HDR: one line.
  not-a-tap      --net fd=N of /dev/null: one line.
Without root or namespaces the test is skipped (77), loudly; with
VMM_REQUIRE_KVM=1 a missing /dev/kvm fails it.
"""
import fcntl
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import NetNamespace  # noqa: E402

SKIP = 77
TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def fail(message, output=""):
    print("FAIL: " + message)
    if output:
        print("--- output (last 60 lines) ---")
        print("\n".join(output.splitlines()[-60:]))
    return 1


def one_line_error(proc, pattern):
    err = proc.stderr.strip()
    lines = [line for line in err.splitlines() if not line.startswith("vmm: note:")]
    if proc.returncode == 0:
        return fail("expected a non-zero exit", proc.stdout + proc.stderr)
    if len(lines) != 1 or not re.search(pattern, lines[0]):
        return fail(f"expected one error line matching /{pattern}/, got {lines}")
    print(f"ok: exit {proc.returncode} with: {lines[0]}")
    return 0


def open_tap_in(ns, flags):
    """Opens tap0 inside the namespace (setns in a helper thread is not
    possible for the whole process, so a child opens it and passes the fd)."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    code = ("import fcntl,os,socket,struct,sys,array;"
            "fd=os.open('/dev/net/tun',os.O_RDWR);"
            f"fcntl.ioctl(fd,{TUNSETIFF},struct.pack('16sH',b'tap0',{flags}));"
            "s=socket.socket(fileno=int(sys.argv[1]));"
            "s.sendmsg([b'x'],[(socket.SOL_SOCKET,socket.SCM_RIGHTS,array.array('i',[fd]))])")
    subprocess.run(ns.wrap([sys.executable, "-c", code, str(child.fileno())]),
                   pass_fds=[child.fileno()], check=True)
    msg, ancdata, _, _ = parent.recvmsg(1, socket.CMSG_LEN(4))
    child.close()
    parent.close()
    return struct.unpack("i", ancdata[0][2][:4])[0]


def thread_cpu_seconds(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def flood(ns, stop):
    """Broadcast frames into the tap from the host side until stopped."""
    code = ("import socket,sys,time;"
            "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);s.bind(('tap0',0));"
            "f=b'\\xff'*6+b'\\x02\\x00\\x00\\x00\\x00\\x01'+b'\\x88\\xb5'+b'flood'*100;"
            "end=time.time()+float(sys.argv[1]);n=0\n"
            "while time.time()<end:\n"
            " try: s.send(f);n+=1\n"
            " except OSError: time.sleep(0.0001)\n"
            "print(n)")
    return subprocess.Popen(ns.wrap([sys.executable, "-c", code, "60"]), stdout=subprocess.PIPE,
                            text=True)


def run_guest(ns, vmm, kernel, args, timeout=120):
    return subprocess.run(ns.wrap([vmm, "--kernel", kernel, *args]), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def expect_pass(proc, who, extra=()):
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or f"{who}: PASS" not in proc.stdout:
        return fail(f"{who} did not pass (exit {proc.returncode})", out)
    for pattern in extra:
        if not re.search(pattern, out, re.M):
            return fail(f"missing /{pattern}/", out)
    print(f"ok: {who}: PASS")
    return 0


def case_norx(ns, vmm, guests):
    ticks = 20
    command = ns.wrap([vmm, "--kernel", os.path.join(guests, "virtio_net_norx-pvh.elf"),
                       "--net", "tap=tap0", "-v", "--cmdline",
                       f"norx_ticks={ticks} tick_polls=20000 expect_frames=1"])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    lines, flooder, measured = [], None, None
    tid = None
    try:
        start_cpu = start_wall = None
        for line in proc.stdout:
            lines.append(line)
            if "virtio_net_norx: ready" in line:
                flooder = flood(ns, None)
                time.sleep(0.5)  # let the tap's queue fill
                # The VMM runs in the namespace as a child of `ip netns exec`,
                # which execs it: same pid. Its main thread is the I/O thread.
                tid = proc.pid
                start_cpu, start_wall = thread_cpu_seconds(proc.pid, tid), time.monotonic()
            if f"tick {ticks - 1}/{ticks}" in line and start_cpu is not None:
                measured = (thread_cpu_seconds(proc.pid, tid) - start_cpu,
                            time.monotonic() - start_wall)
        proc.wait(timeout=120)
    finally:
        if flooder:
            flooder.kill()
            flooder.wait()
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + proc.stderr.read()
    if proc.returncode != 0 or "virtio_net_norx: PASS" not in out:
        return fail(f"virtio_net_norx did not pass (exit {proc.returncode})", out)
    if measured is None:
        return fail("the flood was never measured (no ready/tick lines)", out)
    cpu, wall = measured
    ticks_seen = len(re.findall(r"virtio_net_norx: tick \d+/", out))
    print(f"ok: {ticks_seen} serial tick lines during the flood")
    print(f"ok: I/O thread CPU during {wall:.2f} s of flood: {cpu:.2f} s ({100 * cpu / wall:.1f}%)")
    if cpu > 0.2 * wall:
        return fail(f"the I/O thread spun while the guest had no buffers ({cpu:.2f} s CPU "
                    f"in {wall:.2f} s)", out)
    if "traffic resumed" not in out:
        return fail("traffic did not resume once buffers came", out)
    print("ok: traffic resumed once the guest posted buffers")
    return 0


def case_link_down(ns, vmm, guests):
    command = ns.wrap([vmm, "--kernel", os.path.join(guests, "virtio_net-pvh.elf"),
                       "--net", "tap=tap0", "--cmdline", "net_count=1000 poll_iters=20000"])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "ping reply seq=3 " in line:
                ns.run("link", "del", "tap0")
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    out = "".join(lines) + err
    if proc.returncode < 0:
        return fail(f"vmm died of signal {-proc.returncode}", out)
    downs = re.findall(r"vmm: net0: tap 'tap0' failed .*: link down", err)
    if len(downs) != 1:
        return fail(f"expected one link-down line, got {len(downs)}", out)
    print(f"ok: logged once: {downs[0]}")
    if "ping reply seq=3 " not in out:
        return fail("the guest never pinged before the tap went away", out)
    # The VMM kept running: the guest went on and ended by itself.
    if "virtio_net: FAIL" not in out and "virtio_net: PASS" not in out:
        return fail("the guest did not get to finish after the tap went away", out)
    print(f"ok: the VMM kept running until the guest ended (exit {proc.returncode})")
    return 0


def case_sigterm_during_io(ns, vmm, guests):
    """SIGTERM while the guest keeps the net device busy: out within 1 s, status 143."""
    command = ns.wrap([vmm, "--kernel", os.path.join(guests, "virtio_net-pvh.elf"),
                       "--net", "tap=tap0", "--cmdline", "net_count=1000"])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    lines = []
    took = None
    for line in proc.stdout:
        lines.append(line)
        if "ping reply seq=5 " in line:
            start = time.monotonic()
            proc.send_signal(15)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
            took = time.monotonic() - start
            break
    proc.wait()
    out = "".join(lines) + proc.stdout.read() + proc.stderr.read()
    if took is None:
        return fail("the guest never got to ping 5", out)
    if proc.returncode != 143 or took > 1.0:
        return fail(f"status {proc.returncode} after {took:.2f} s (expected 143 within 1 s)", out)
    print(f"ok: SIGTERM during network I/O: status 143 after {took * 1000:.0f} ms")
    return 0


def main():
    vmm, guests, case = sys.argv[1], sys.argv[2], sys.argv[3]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIPPED: /dev/kvm is missing ***")
        return 1 if os.environ.get("VMM_REQUIRE_KVM") == "1" else SKIP
    why = NetNamespace.available()
    if why:
        print(f"*** SKIPPED: network namespaces unavailable: {why} ***")
        return SKIP
    ping_guest = os.path.join(guests, "virtio_net-pvh.elf")
    with NetNamespace() as ns:
        if case == "ping":
            return expect_pass(run_guest(ns, vmm, ping_guest,
                                         ["--net", "tap=tap0,mac=06:00:0a:00:02:0f", "-v",
                                          "--cmdline", "net_count=3"]),
                               "virtio_net", [r"virtio_net: mac 06:00:0a:00:02:0f \(from device\)",
                                              r"virtio_net: link up",
                                              r"virtio-net net0: rx_frames=[1-9]"])
        if case == "fd":
            fd = open_tap_in(ns, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
            proc = subprocess.run(ns.wrap([vmm, "--kernel", ping_guest, "--net", f"fd={fd}",
                                           "--cmdline", "net_count=2"]),
                                  capture_output=True, text=True, timeout=120, pass_fds=[fd],
                                  stdin=subprocess.DEVNULL)
            return expect_pass(proc, "virtio_net")
        if case == "norx":
            return case_norx(ns, vmm, guests)
        if case.startswith("hostile-"):
            name = case[len("hostile-"):]
            proc = run_guest(ns, vmm, os.path.join(guests, "virtio_net_hostile-pvh.elf"),
                             ["--net", "tap=tap0", "--cmdline", f"case={name} tap=1"])
            out = proc.stdout + proc.stderr
            for pattern in (rf"virtio_net_hostile: {name}: needs_reset",
                            r"virtio_net_hostile: recovered", r"virtio_net_hostile: still alive",
                            r"vmm: virtio-net net0: guest broke the virtio protocol"):
                if not re.search(pattern, out):
                    return fail(f"missing /{pattern}/", out)
            if proc.returncode != 0:
                return fail(f"exit {proc.returncode}", out)
            print(f"ok: {name}: NEEDS_RESET, recovered, the VMM kept serving")
            return 0
        if case == "link-down":
            return case_link_down(ns, vmm, guests)
        if case == "sigterm-during-io":
            return case_sigterm_during_io(ns, vmm, guests)
        if case == "no-permission":
            # A tap owned by another user, and no CAP_NET_ADMIN to override that.
            ns.run("tuntap", "del", "tap0", "mode", "tap")
            ns.run("tuntap", "add", "tap0", "mode", "tap", "user", "4242")
            proc = subprocess.run(
                ns.wrap(["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", vmm,
                         "--kernel", ping_guest, "--net", "tap=tap0"]),
                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            return one_line_error(proc, r"^vmm: error: tap 'tap0': permission denied")
        if case == "not-a-tap":
            fd = os.open("/dev/null", os.O_RDWR)
            proc = subprocess.run([vmm, "--kernel", ping_guest, "--net", f"fd={fd}"],
                                  capture_output=True, text=True, timeout=60, pass_fds=[fd],
                                  stdin=subprocess.DEVNULL)
            return one_line_error(proc, rf"^vmm: error: --net fd={fd}: not a tap device")
        if case == "not-vnet-hdr":
            fd = open_tap_in(ns, IFF_TAP | IFF_NO_PI)
            proc = subprocess.run(ns.wrap([vmm, "--kernel", ping_guest, "--net", f"fd={fd}"]),
                                  capture_output=True, text=True, timeout=60, pass_fds=[fd],
                                  stdin=subprocess.DEVNULL)
            return one_line_error(proc, rf"^vmm: error: --net fd={fd}: .*without IFF_VNET_HDR")
    print(f"unknown case {case}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
