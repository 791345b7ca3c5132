#!/usr/bin/env python3
"""Boots the project's guest kernel under the VMM and checks what its
userspace did.

Usage: linux_boot.py VMM SCENARIO

Every scenario needs a real KVM: on a machine without one (no /dev/kvm, or
PVM, whose emulator runs no guest userspace) tools/test runs this in the
nested tier (tools/nested). The guest's /init (kernel-images/init) runs the
shell command given as vmm.run=BASE64 and ends the VMM with its exit status.

  smoke          initramfs, default devices: userspace, /dev/hwrng reads
  bzimage        the same from the bzImage instead of the vmlinux
  rootfs_rw      write a file on an ext4 root, sync, stop; boot again and
                 read it back; the host's e2fsck finds the image clean
  rootfs_ro      a read-only root drive: writes fail with EROFS, image unchanged
  drives         a read-only second drive (EROFS on its filesystem and its
                 device) and a scratch drive that the guest discards and
                 write-zeroes (blkdiscard, BLKZEROOUT); the host checks the bytes
  net            TCP both ways and ping with a tap in a namespace, netconsole;
                 the driver negotiated checksum and segmentation offloads
  hvc            a login shell on hvc0 (virtio-console) answers a command
  smp1 .. smp8   nproc = N, and every CPU takes timer interrupts
  pause_resume   PATCH /vm Paused stops a counting guest, Resumed goes on; three
                 short pauses after it leave the guest's clocks agreeing
  reboot         `reboot -f` ends the VMM with status 0 (i8042 reset)
  poweroff       `poweroff -f` with --acpi ends the VMM with status 0
  config_file    a Firecracker-style --config-file: root drive, 2 vCPUs, entropy
  rate_limits    a drive at 10 MiB/s (one-time burst at full speed, PATCHed to
                 20 MiB/s while running) and a net interface at 20 Mbit/s each
                 way, as rates the guest measures, within 10%
  drive_swap     a stub drive PATCHed (path_on_host) to an ext4 image while the
                 guest runs: it sees the new size and mounts the new contents;
                 a PATCH to a missing file answers 400
  jailed         the jailer (next to the vmm) starts it with --api-sock in a
                 chroot as an unprivileged uid; kernel and initramfs are placed
                 in the jail, the API configures and boots them; a drive on
                 /etc/shadow is refused (outside the jail); userspace runs

Kernel and images come from $VMM_TEST_KERNEL_DIR and $VMM_TEST_ROOTFS_DIR
(tools/test sets them).
"""
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from netns import NetNamespace  # noqa: E402

MARKER = "VMM-GUEST: userspace up"
CMDLINE = "console=ttyS0 reboot=k panic=-1"
# Seconds per boot: a few natively, up to ~10 in the nested tier under load.
BOOT_TIMEOUT = 180
# What a healthy boot never prints (an XSAVE/CPUID inconsistency among them).
BAD_SIGNS = r"(Call Trace:|WARNING: CPU|BUG: |XSAVE consistency|xstate.*mismatch|Kernel panic)"


class Failure(Exception):
    pass


def b64(script):
    return base64.b64encode(script.encode()).decode()


class Run:
    """One VMM run: its command, output and exit status."""

    def __init__(self, command, stdin=None, timeout=BOOT_TIMEOUT, on_line=None):
        print("running: " + " ".join(command), flush=True)
        self.command = command
        start = time.monotonic()
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        chunks = []
        lines_seen = [0]

        def pump():
            buf = b""
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                chunks.append(chunk)
                if on_line:
                    buf += chunk
                    *complete, buf = buf.split(b"\n")
                    for line in complete:
                        lines_seen[0] += 1
                        on_line(line.decode(errors="replace").rstrip("\r"), proc)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            if stdin is not None:
                try:
                    stdin(proc)
                except Failure as e:
                    # What the guest printed says why the driver gave up.
                    proc.kill()
                    proc.wait()
                    reader.join(5)
                    self.output = b"".join(chunks).decode(errors="replace")
                    raise Failure(f"{e}\n" + self.tail()) from None
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            self.output = b"".join(chunks).decode(errors="replace")
            raise Failure(f"no exit within {timeout} s\n" + self.tail())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(10)
        self.status = proc.returncode
        self.output = b"".join(chunks).decode(errors="replace")
        print(f"vmm exited with status {self.status} after {time.monotonic() - start:.1f} s",
              flush=True)

    def tail(self, n=80):
        return "--- output (last lines) ---\n" + "\n".join(self.output.splitlines()[-n:])

    def expect(self, pattern, what):
        match = re.search(pattern, self.output, re.M)
        if not match:
            raise Failure(f"missing: {what} (/{pattern}/)\n" + self.tail())
        print(f"ok: {what}")
        return match

    def expect_not(self, pattern, what):
        match = re.search(pattern, self.output, re.M)
        if match:
            raise Failure(f"unexpected: {match.group(0)!r}: {what}\n" + self.tail())
        print(f"ok: {what}")

    def expect_status(self, status):
        if self.status != status:
            raise Failure(f"exit status {self.status}, expected {status}\n" + self.tail())
        print(f"ok: exit status {status}")

    def healthy_userspace(self, status=0):
        """Userspace ran, the kernel complained about nothing, the status came back."""
        self.expect(re.escape(MARKER), "userspace ran (init's marker line)")
        self.expect_not(BAD_SIGNS, "no kernel warning, oops or panic")
        self.expect_status(status)


class Scenario:
    def __init__(self, vmm, kernel_dir, rootfs_dir, workdir):
        self.vmm = vmm
        self.kernel_dir = kernel_dir
        self.rootfs_dir = rootfs_dir
        self.workdir = workdir

    def path(self, name):
        return os.path.join(self.workdir, name)

    def vmlinux(self):
        return os.path.join(self.kernel_dir, "vmlinux")

    def initrd(self):
        return os.path.join(self.rootfs_dir, "initramfs.cpio.gz")

    def base(self, *extra, kernel=None):
        return [self.vmm, "--kernel", kernel or self.vmlinux(), "--mem", "256", "-v", *extra]

    def scripted(self, script, *extra, cmdline=CMDLINE, initrd=True, kernel=None, **kwargs):
        """Boots the initramfs (or a root drive in `extra`) and runs `script`."""
        command = self.base(kernel=kernel)
        if initrd:
            command += ["--initrd", self.initrd()]
        command += ["--cmdline", f"{cmdline} vmm.run={b64(script)}", *extra]
        return Run(command, **kwargs)

    def copy_rootfs(self, name="rootfs.ext4"):
        image = self.path(name)
        shutil.copyfile(os.path.join(self.rootfs_dir, "rootfs.ext4"), image)
        return image

    def configured_with_api(self, boot_args, drives=(), nets=()):
        """A --config-file (the initramfs, 1 vCPU, 256 MiB, `drives`, `nets`)
        plus an API socket for changes while it runs: (command, socket)."""
        document = {
            "boot-source": {"kernel_image_path": self.vmlinux(), "initrd_path": self.initrd(),
                            "boot_args": boot_args},
            "drives": list(drives),
            "network-interfaces": list(nets),
            "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
        }
        config = self.path("vm-config.json")
        with open(config, "w") as f:
            json.dump(document, f)
        sock = self.path("api.sock")
        return [self.vmm, "--config-file", config, "--api-sock", sock, "-v"], sock

    @contextlib.contextmanager
    def net_peer(self, payload):
        """A network namespace with tap0 and net_peer.py serving `payload`
        there: yields (namespace, peer process), kills the peer after."""
        with NetNamespace() as ns:
            peer = subprocess.Popen(ns.wrap([sys.executable, os.path.join(HERE, "net_peer.py"),
                                             self.workdir, payload]))
            try:
                # Python starts slowly in the nested tier, slower still next
                # to a parallel test: wait for the peer's sockets, not a guess.
                wait_for(lambda: os.path.exists(self.path("ready")) or peer.poll() is not None,
                         120, "the host-side peer (net_peer.py)")
                if peer.poll() is not None:
                    raise Failure(f"net_peer.py exited with status {peer.returncode} before it "
                                  "was ready")
                yield ns, peer
            finally:
                peer.kill()
                peer.wait()

    # ---- scenarios ----

    def smoke(self, kernel=None):
        run = self.scripted("echo HWRNG-BYTES $(head -c 64 /dev/hwrng | wc -c); "
                            "echo RNG-CURRENT $(cat /sys/class/misc/hw_random/rng_current)",
                            kernel=kernel)
        run.expect(r"Linux version 6\.1", "the kernel printed its banner")
        run.expect(r"BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable",
                   "the e820 map has 256 MiB of RAM from 1 MiB")
        run.expect(r"Hypervisor detected: KVM", "the guest detected KVM from CPUID")
        run.expect(r"Run /init as init process", "the kernel ran /init from the initramfs")
        run.expect(r"^HWRNG-BYTES 64\s*$", "/dev/hwrng gave 64 bytes")
        run.expect(r"^RNG-CURRENT virtio_rng", "the hwrng is virtio-rng")
        run.expect(r"vmm: virtio-rng: requests=[1-9]\d* bytes=[1-9]\d*",
                   "the VMM served entropy requests")
        run.healthy_userspace()

    def bzimage(self):
        self.smoke(kernel=os.path.join(self.kernel_dir, "bzImage"))

    def rootfs_rw(self):
        image = self.copy_rootfs()
        token = secrets.token_hex(16)
        # remount read-only so the image is clean without a full shutdown,
        # then stop the hard way: what was synced must be on the disk.
        first = self.scripted(f"echo {token} > /persist.txt && sync && "
                              "mount -o remount,ro / && echo WROTE && reboot -f",
                              "--rootfs", image, initrd=False)
        first.expect(r"VFS: Mounted root \(ext4 filesystem\) on device", "the ext4 root mounted")
        first.expect(r"^WROTE\s*$", "the guest wrote, synced and remounted read-only")
        first.expect_not(r"VMM-GUEST: exit status", "reboot -f stopped the guest, not init")
        first.expect(re.escape(MARKER), "userspace ran")
        first.expect_status(0)
        fsck = subprocess.run(["e2fsck", "-fn", image], capture_output=True, text=True)
        if fsck.returncode != 0:
            raise Failure(f"e2fsck -fn found problems (status {fsck.returncode}):\n"
                          + fsck.stdout + fsck.stderr)
        print("ok: e2fsck -fn finds the image clean")
        cat = subprocess.run(["debugfs", "-R", "cat /persist.txt", image],
                             capture_output=True, text=True)
        if token not in cat.stdout:
            raise Failure("the host does not read the guest's file from the image (debugfs)")
        print("ok: the host reads the guest's file back from the image")
        second = self.scripted("echo READ-BACK $(cat /persist.txt)", "--rootfs", image,
                               initrd=False)
        second.expect(rf"^READ-BACK {token}\s*$", "a second boot reads the file back")
        second.healthy_userspace()

    def rootfs_ro(self):
        image = self.copy_rootfs()
        before = sha256(image)
        run = self.scripted("echo x > /new-file; echo FILE-WRITE $?; "
                            "dd if=/dev/zero of=/dev/vda bs=512 count=1 conv=fsync; "
                            "echo DEV-WRITE $?; echo RO-FLAG $(cat /sys/block/vda/ro)",
                            "--drive", f"path={image},ro,id=rootfs",
                            cmdline=CMDLINE + " root=/dev/vda ro", initrd=False)
        run.expect(r"VFS: Mounted root \(ext4 filesystem\) readonly", "the root mounted read-only")
        run.expect(r"Read-only file system", "the file write failed with EROFS")
        run.expect(r"^FILE-WRITE [1-9]", "the shell saw the write fail")
        run.expect(r"^DEV-WRITE [1-9]", "a raw write to /dev/vda failed")
        run.expect(r"^RO-FLAG 1\s*$", "the kernel knows vda is read-only (VIRTIO_BLK_F_RO)")
        run.healthy_userspace()
        if sha256(image) != before:
            raise Failure("the read-only image changed")
        print("ok: the image is unchanged")

    def drives(self):
        root = self.copy_rootfs()
        ro_image = self.copy_rootfs("second.ext4")
        ro_before = sha256(ro_image)
        scratch = self.path("scratch.img")
        mib = 1 << 20
        with open(scratch, "wb") as f:
            f.write(b"\xaa" * (8 * mib))
        script = (
            # the read-only second drive: its filesystem and its device refuse writes
            "mount /dev/vdb /mnt && echo MOUNTED $(grep '^/dev/vdb ' /proc/mounts); "
            "touch /mnt/x; echo TOUCH $?; umount /mnt; "
            "echo VDB-RO $(cat /sys/block/vdb/ro); "
            # the scratch drive: discard 1-2 MiB, write-zeroes 3-4 MiB
            "echo DISCARD-MAX $(cat /sys/block/vdc/queue/discard_max_bytes); "
            "echo ZEROES-MAX $(cat /sys/block/vdc/queue/write_zeroes_max_bytes); "
            f"blkdiscard -o {mib} -l {mib} /dev/vdc; echo BLKDISCARD $?; "
            f"zeroout /dev/vdc {3 * mib} {mib}; echo ZEROOUT $?; "
            f"echo ZEROED-SUM $(dd if=/dev/vdc bs=1M skip=3 count=1 2>/dev/null | md5sum)")
        run = self.scripted(script, "--rootfs", root, "--drive", f"path={ro_image},ro,id=ro",
                            "--drive", f"path={scratch},id=scratch", initrd=False)
        run.expect(r"^MOUNTED /dev/vdb /mnt ext4 ro[, ]",
                   "the read-only drive's ext4 mounted, read-only even when asked for rw")
        run.expect(r"Read-only file system", "writing to it failed with EROFS")
        run.expect(r"^TOUCH [1-9]", "the shell saw the write fail")
        run.expect(r"^VDB-RO 1\s*$", "the kernel knows vdb is read-only")
        run.expect(r"^DISCARD-MAX [1-9]", "the scratch drive offers discard")
        run.expect(r"^ZEROES-MAX [1-9]", "the scratch drive offers write-zeroes")
        run.expect(r"^BLKDISCARD 0\s*$", "blkdiscard succeeded")
        run.expect(r"^ZEROOUT 0\s*$", "BLKZEROOUT succeeded")
        zero_sum = hashlib.md5(b"\0" * mib).hexdigest()
        run.expect(rf"^ZEROED-SUM {zero_sum}", "the guest reads zeros where it wrote zeroes")
        run.expect(r"vmm: virtio-blk scratch: .*discards=[1-9]", "the VMM saw discard requests")
        run.expect(r"vmm: virtio-blk scratch: .*write_zeroes=[1-9]",
                   "the VMM saw write-zeroes requests")
        run.healthy_userspace()
        data = open(scratch, "rb").read()
        if len(data) != 8 * mib:
            raise Failure(f"the scratch image changed size: {len(data)} bytes")
        expected = {0: 0xaa, 1: 0, 2: 0xaa, 3: 0, 4: 0xaa, 5: 0xaa, 6: 0xaa, 7: 0xaa}
        for i, byte in expected.items():
            if data[i * mib:(i + 1) * mib] != bytes([byte]) * mib:
                raise Failure(f"scratch MiB {i} on the host is not all 0x{byte:02x}")
        print("ok: the host sees the discarded and zeroed MiB as zeros, the rest untouched")
        if sha256(ro_image) != ro_before:
            raise Failure("the read-only image changed")
        print("ok: the read-only image is unchanged")

    def net(self):
        why = NetNamespace.available()
        if why:
            raise Failure(f"network namespaces unavailable: {why}")
        mac = "06:00:0a:00:02:0f"
        guest, host = "10.0.2.15", "10.0.2.1"
        payload = self.path("payload.bin")
        with open(payload, "wb") as f:
            f.write(os.urandom(8 << 20))
        payload_sha = sha256(payload)
        script = (f"ping -c 3 -W 2 {host} && echo NET-PING-OK; "
                  "dd if=/dev/urandom of=/tmp/up bs=64k count=128 2>/dev/null; "
                  "echo UP-SHA $(sha256sum /tmp/up); "
                  f"nc {host} 5001 < /tmp/up; "
                  f"nc {host} 5002 > /tmp/down; echo DOWN-SHA $(sha256sum /tmp/down); "
                  "echo FEATURES $(cat /sys/class/net/eth0/device/features)")
        cmdline = (f"{CMDLINE} ip={guest}::{host}:255.255.255.0:vmmguest:eth0:off "
                   f"netconsole=6665@{guest}/eth0,6666@{host}/")
        with self.net_peer(payload) as (ns, peer):
            command = ns.wrap(self.base("--initrd", self.initrd(), "--cmdline",
                                        f"{cmdline} vmm.run={b64(script)}",
                                        "--net", f"tap=tap0,mac={mac}"))
            run = Run(command)
            # The peer hashes the upload on a thread of its own, which in
            # the nested tier can still be busy after the VMM exited.
            upload = self.path("upload.sha256")
            deadline = time.monotonic() + 60
            while not os.path.exists(upload) and peer.poll() is None and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
        run.expect(rf"device=eth0, hwaddr={mac}, ipaddr={re.escape(guest)}",
                   "eth0 has the VMM's MAC and the static address")
        run.expect(r"^NET-PING-OK\s*$", "the guest pinged the host")
        up = run.expect(r"^UP-SHA ([0-9a-f]{64})", "the guest hashed its upload").group(1)
        if not os.path.exists(self.path("upload.sha256")):
            raise Failure("guest-to-host TCP: the host saw no complete upload\n" + run.tail())
        got, received, _ = open(self.path("upload.sha256")).read().split()
        if got != up:
            raise Failure(f"guest-to-host TCP: the host received different data ({received} "
                          f"bytes of {128 * 64 * 1024})\n" + run.tail())
        print("ok: guest-to-host TCP arrived intact (8 MiB)")
        run.expect(rf"^DOWN-SHA {payload_sha}", "host-to-guest TCP arrived intact (8 MiB)")
        log = open(self.path("netconsole.log"), "rb").read().decode(errors="replace") \
            if os.path.exists(self.path("netconsole.log")) else ""
        if "network logging started" not in log:
            raise Failure("netconsole's UDP lines did not reach the host side")
        print("ok: the kernel log arrived as UDP on the host side (netconsole)")
        counters = run.expect(r"vmm: virtio-net net0: rx_frames=(\d+) rx_bytes=(\d+) "
                              r"rx_dropped=0 tx_frames=(\d+) tx_bytes=(\d+)",
                              "the VMM counted the traffic, nothing dropped")
        rx_frames, rx_bytes, tx_frames, tx_bytes = map(int, counters.groups())
        # The driver's negotiated feature bits (virtio 1.2, 5.1.3): checksum
        # offload both ways and TSO both ways, so TCP travels in frames above
        # the MTU (how far above depends on the moment's congestion window).
        bits = run.expect(r"^FEATURES ([01]{32,})", "the guest's negotiated virtio-net features")
        wanted = {0: "CSUM", 1: "GUEST_CSUM", 7: "GUEST_TSO4", 11: "HOST_TSO4", 15: "MRG_RXBUF"}
        missing = [name for bit, name in wanted.items() if bits.group(1)[bit] != "1"]
        if missing:
            raise Failure(f"offloads not negotiated: {', '.join(missing)}\n" + run.tail())
        print(f"ok: offloads negotiated ({', '.join(wanted.values())}); average frame "
              f"tx {tx_bytes // max(tx_frames, 1)} B, rx {rx_bytes // max(rx_frames, 1)} B")
        run.healthy_userspace()

    def hvc(self):
        def converse(proc):
            wait_for(lambda: "starting shell" in proc_output(proc), 120, "the shell prompt")
            proc.stdin.write(b"echo HVC-$((6*7)) $(tty)\n")
            proc.stdin.flush()
            wait_for(lambda: "HVC-42" in proc_output(proc), 60, "the shell's answer")
            proc.stdin.write(b"exit 7\n")
            proc.stdin.flush()
            proc.stdin.close()

        captured = []

        def on_line(line, proc):
            captured.append(line)

        def proc_output(proc):
            return "\n".join(captured)

        run = Run(self.base("--initrd", self.initrd(), "--console", "virtio", "--cmdline",
                            "console=hvc0 reboot=k panic=-1 vmm.shell"),
                  stdin=converse, on_line=on_line)
        run.expect(r"^HVC-42\b", "the shell on hvc0 answered a command")
        run.expect(r"vmm: virtio-console: .*rx_bytes=[1-9].*tx_bytes=[1-9]",
                   "input and output went over virtio-console")
        run.healthy_userspace(status=7)

    def smp(self, n):
        run = self.scripted("echo NPROC $(nproc); sleep 1; grep '^ *LOC:' /proc/interrupts",
                            "--cpus", str(n))
        run.expect(rf"smp: Brought up 1 node, {n} CPUs?", f"the kernel brought up {n} CPUs")
        run.expect(rf"^NPROC {n}\s*$", f"userspace sees {n} CPUs (nproc)")
        loc = run.expect(r"^\s*LOC:((\s+\d+)+)", "the local timer interrupt counts")
        counts = [int(c) for c in loc.group(1).split()]
        if len(counts) != n or min(counts) == 0:
            raise Failure(f"LOC counts per CPU {counts}: not all {n} CPUs take interrupts")
        print(f"ok: every CPU took timer interrupts {counts}")
        run.healthy_userspace()

    def pause_resume(self):
        sys.path.insert(0, os.path.join(HERE, "..", "integration"))
        from api_client import call as api_call, wait_for_socket
        sock = self.path("api.sock")
        ticks = []
        events = {}

        def on_line(line, proc):
            m = re.match(r"^TICK (\d+)\s*$", line)
            if m:
                ticks.append((time.monotonic(), int(m.group(1))))

        def call(method, target, body=None):
            return api_call(sock, method, target, body)

        def drive(proc):
            if not wait_for_socket(sock, 30):
                raise Failure("the API socket did not appear")
            wait_for(lambda: len(ticks) >= 5, 120, "five ticks")
            status, _ = call("PATCH", "/vm", {"state": "Paused"})
            events["paused_status"] = status
            events["state_paused"] = call("GET", "/")[1]
            count = len(ticks)
            time.sleep(2.0)
            events["during_pause"] = len(ticks) - count
            status, _ = call("PATCH", "/vm", {"state": "Resumed"})
            events["resumed_status"] = status
            events["state_running"] = call("GET", "/")[1]
            events["resumed_at"] = time.monotonic()
            # Short pauses too: under a second KVM's TSC-sync heuristic keeps
            # the TSC's offset, so any clock written back would disagree
            # with it and the guest would mark its TSC unstable.
            for _ in range(3):
                count = len(ticks)
                wait_for(lambda: len(ticks) >= count + 2, 60, "two ticks after resuming")
                call("PATCH", "/vm", {"state": "Paused"})
                time.sleep(0.3)
                call("PATCH", "/vm", {"state": "Resumed"})

        script = "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo TICK $i; sleep 0.1; done"
        run = Run(self.base("--initrd", self.initrd(), "--api-sock", sock, "--cmdline",
                            f"{CMDLINE} vmm.run={b64(script)}"), stdin=drive, on_line=on_line)
        if events.get("paused_status") != 204 or events.get("resumed_status") != 204:
            raise Failure(f"PATCH /vm answered {events}\n" + run.tail())
        if '"Paused"' not in events["state_paused"] or '"Running"' not in events["state_running"]:
            raise Failure(f"GET / did not report the state: {events}")
        print("ok: PATCH /vm Paused and Resumed answered 204; GET / reported each state")
        if events["during_pause"] > 1:
            raise Failure(f"{events['during_pause']} ticks arrived while paused")
        print(f"ok: the guest was stopped while paused ({events['during_pause']} ticks in 2 s)")
        numbers = [n for _, n in ticks]
        if numbers != list(range(1, 61)):
            raise Failure(f"ticks out of order or missing: {numbers}")
        after = [n for t, n in ticks if t > events["resumed_at"]]
        if len(after) < 10:
            raise Failure(f"only {len(after)} ticks after resuming")
        print(f"ok: the loop went on after resuming ({len(after)} ticks, all 60 in order)")
        run.expect_not(r"Marking clocksource", "the guest's clocks agreed through 4 pauses")
        run.healthy_userspace()

    def reboot(self):
        run = self.scripted("sync; reboot -f; sleep 30; echo STILL-RUNNING")
        run.expect(re.escape(MARKER), "userspace ran")
        run.expect_not(r"STILL-RUNNING|VMM-GUEST: exit status", "reboot -f stopped the guest")
        run.expect(r"vmm: .*guest reset", "the VMM saw the guest's reset")
        run.expect_not(BAD_SIGNS, "no kernel warning, oops or panic")
        run.expect_status(0)

    def poweroff(self):
        run = self.scripted("sync; poweroff -f; sleep 30; echo STILL-RUNNING", "--acpi")
        run.expect(re.escape(MARKER), "userspace ran")
        run.expect(r"ACPI: .*tables", "the kernel used the VMM's ACPI tables")
        run.expect_not(r"STILL-RUNNING|VMM-GUEST: exit status", "poweroff -f stopped the guest")
        run.expect(r"vmm: .*guest powered off", "the VMM saw the guest power off")
        run.expect_not(BAD_SIGNS, "no kernel warning, oops or panic")
        run.expect_status(0)

    def config_file(self):
        image = self.copy_rootfs()
        script = ("echo NPROC $(nproc); echo ROOT $(grep ' / ' /proc/mounts); "
                  "echo HWRNG-BYTES $(head -c 32 /dev/hwrng | wc -c)")
        document = {
            "boot-source": {"kernel_image_path": self.vmlinux(),
                            "boot_args": f"{CMDLINE} vmm.run={b64(script)}"},
            "drives": [{"drive_id": "rootfs", "path_on_host": image,
                        "is_root_device": True, "is_read_only": False}],
            "machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
            "entropy": {},
        }
        config = self.path("vm-config.json")
        with open(config, "w") as f:
            json.dump(document, f)
        run = Run([self.vmm, "--config-file", config, "-v"])
        run.expect(r"Command line: .*root=/dev/vda rw", "the kernel got boot_args plus the root")
        run.expect(r"^NPROC 2\s*$", "both vCPUs of machine-config are online")
        run.expect(r"^ROOT /dev/root / ext4 rw", "the root drive is the ext4 root, read-write")
        run.expect(r"^HWRNG-BYTES 32\s*$", "the entropy device gave bytes")
        run.healthy_userspace()


    def rate_limits(self):
        """Token buckets as the guest sees them: a drive at 10 MiB/s with a
        16 MiB one-time burst, raised to 20 MiB/s by PATCH while running; a
        net interface at 20 Mbit/s each way. Rates within 10%."""
        sys.path.insert(0, os.path.join(HERE, "..", "integration"))
        from api_client import call as api_call, wait_for_socket
        why = NetNamespace.available()
        if why:
            raise Failure(f"network namespaces unavailable: {why}")
        mib = 1 << 20
        scratch = self.path("scratch.img")
        with open(scratch, "wb") as f:
            f.truncate(128 * mib)
        payload = self.path("payload.bin")
        net_bytes = 12_500_000  # 5 s at 20 Mbit/s
        with open(payload, "wb") as f:
            f.write(os.urandom(net_bytes))
        guest, host = "10.0.2.15", "10.0.2.1"
        # dd of whole 512 KiB requests with O_DIRECT: no page cache, no
        # readahead, each region read once. Times from /proc/uptime.
        script = (
            "up() { cut -d' ' -f1 /proc/uptime; }; "
            "rd() { s=$(up); dd if=/dev/vda of=/dev/null bs=512k skip=$1 count=$2 "
            "iflag=direct 2>/dev/null; r=$?; echo \"$3 $s $(up) $r\"; }; "
            "rd 0 32 BLK-BURST; rd 32 100 BLK-LIMITED; "
            "echo BLK-PATCH-ME; read line; rd 132 100 BLK-PATCHED; "
            f"s=$(up); n=$(nc {host} 5002 | wc -c); echo \"NET-RX $s $(up) $n\"; "
            # The host says when the upload arrived: nc's close does not wait.
            f"dd if=/dev/zero bs=50000 count=250 2>/dev/null | nc {host} 5001; "
            "echo NET-TX-SENT; read line")
        bandwidth = {"size": mib, "one_time_burst": 16 * mib, "refill_time": 100}
        net_limit = {"bandwidth": {"size": 250_000, "refill_time": 100}}  # 20 Mbit/s
        command, sock = self.configured_with_api(
            f"{CMDLINE} ip={guest}::{host}:255.255.255.0:vmmguest:eth0:off vmm.run={b64(script)}",
            drives=[{"drive_id": "limited", "path_on_host": scratch, "is_root_device": False,
                     "rate_limiter": {"bandwidth": bandwidth}}],
            nets=[{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:0a:00:02:0f",
                   "rx_rate_limiter": net_limit, "tx_rate_limiter": net_limit}])
        events = {}

        def drive(proc):
            if not wait_for_socket(sock, 60):
                raise Failure("the API socket did not appear")
            wait_for(lambda: b"BLK-PATCH-ME" in b"".join(lines), 180, "the guest's first reads")
            faster = {"drive_id": "limited",
                      "rate_limiter": {"bandwidth": {"size": 2 * mib, "refill_time": 100}}}
            events["patch"] = api_call(sock, "PATCH", "/drives/limited", faster)[0]
            events["config"] = api_call(sock, "GET", "/vm/config")[1]
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            wait_for(lambda: os.path.exists(self.path("upload.sha256")), 180,
                     "the guest's upload at the host-side peer")
            proc.stdin.write(b"end\n")
            proc.stdin.flush()

        lines = []
        with self.net_peer(payload) as (ns, _):
            run = Run(ns.wrap(command), stdin=drive,
                      on_line=lambda line, proc: lines.append(line.encode()))
        if events.get("patch") != 204:
            raise Failure(f"PATCH /drives/limited answered {events.get('patch')}\n" + run.tail())
        shown = json.loads(events["config"])["drives"][0].get("rate_limiter", {})
        if shown.get("bandwidth", {}).get("size") != 2 * mib:
            raise Failure(f"GET /vm/config after the PATCH shows {shown}")
        print("ok: PATCH /drives/limited answered 204 and GET /vm/config shows the new bucket")

        def seconds(name):
            m = run.expect(rf"^{name} ([0-9.]+) ([0-9.]+) (\d+)\s*$", f"the guest timed {name}")
            return float(m.group(2)) - float(m.group(1)), int(m.group(3))

        def check_rate(what, amount, took, limit, unit):
            rate = amount / took
            print(f"{what}: {amount} {unit} in {took:.2f} s = {rate:.2f} {unit}/s "
                  f"(limit {limit})")
            if not 0.9 * limit <= rate <= 1.1 * limit:
                raise Failure(f"{what}: {rate:.2f} {unit}/s is not within 10% of {limit}\n" +
                              run.tail())
            print(f"ok: {what} within 10% of the limit")

        burst, status = seconds("BLK-BURST")
        if status != 0:
            raise Failure(f"dd failed ({status})\n" + run.tail())
        # 16 MiB at the 10 MiB/s limit would take 1.5 s after the full bucket.
        if burst >= 0.75:
            raise Failure(f"16 MiB inside the one-time burst took {burst:.2f} s")
        print(f"ok: the one-time burst went at full speed (16 MiB in {burst:.2f} s)")
        check_rate("drive at 10 MiB/s", 50, seconds("BLK-LIMITED")[0], 10, "MiB")
        check_rate("drive PATCHed to 20 MiB/s", 50, seconds("BLK-PATCHED")[0], 20, "MiB")
        took, received = seconds("NET-RX")
        if received != net_bytes:
            raise Failure(f"the guest received {received} of {net_bytes} bytes\n" + run.tail())
        check_rate("host to guest at 20 Mbit/s", net_bytes * 8 / 1e6, took, 20, "Mbit")
        run.expect(r"^NET-TX-SENT", "the guest sent its upload")
        _, sent, tx_took = open(self.path("upload.sha256")).read().split()
        if int(sent) != 12_500_000:
            raise Failure(f"the peer received {sent} of 12500000 bytes")
        check_rate("guest to host at 20 Mbit/s", int(sent) * 8 / 1e6, float(tx_took), 20, "Mbit")
        run.expect(r"vmm: virtio-blk limited: .*rate_limiter_throttled=[1-9]",
                   "the VMM counted the drive's throttling")
        run.expect(r"vmm: virtio-net eth0: .*rx_rate_limiter_throttled=[1-9]\d* "
                   r"tx_rate_limiter_throttled=[1-9]", "the VMM counted the interface's throttling")
        run.healthy_userspace()

    def drive_swap(self):
        """firecracker-containerd's way: a stub drive at boot, PATCHed to a real
        image while the guest runs; the guest sees the new size and mounts it."""
        sys.path.insert(0, os.path.join(HERE, "..", "integration"))
        from api_client import call as api_call, wait_for_socket
        stub = self.path("stub.img")
        with open(stub, "wb") as f:
            f.truncate(1 << 20)
        real = self.copy_rootfs("real.ext4")
        real_sectors = os.path.getsize(real) // 512
        script = ("echo SIZE-BEFORE $(cat /sys/block/vda/size); echo SWAP-ME; read line; "
                  # The guest read the stub (partition scan): drop those buffers.
                  "blockdev --flushbufs /dev/vda; echo SIZE-AFTER $(cat /sys/block/vda/size); "
                  "mount -o ro /dev/vda /mnt && echo MOUNTED $(ls /mnt/etc/passwd); "
                  "umount /mnt; echo ENDED")
        command, sock = self.configured_with_api(
            f"{CMDLINE} vmm.run={b64(script)}",
            drives=[{"drive_id": "containers", "path_on_host": stub, "is_root_device": False,
                     "is_read_only": True}])
        lines = []
        events = {}

        def drive(proc):
            if not wait_for_socket(sock, 60):
                raise Failure("the API socket did not appear")
            wait_for(lambda: "SWAP-ME" in lines, 180, "the guest's first look at the stub")
            events["missing"] = api_call(sock, "PATCH", "/drives/containers",
                                         {"drive_id": "containers",
                                          "path_on_host": self.path("no-such.img")})
            events["patch"] = api_call(sock, "PATCH", "/drives/containers",
                                       {"drive_id": "containers", "path_on_host": real})[0]
            events["config"] = api_call(sock, "GET", "/vm/config")[1]
            proc.stdin.write(b"go\n")
            proc.stdin.flush()

        run = Run(command, stdin=drive, on_line=lambda line, proc: lines.append(line.strip()))
        status, body = events.get("missing", (None, ""))
        if status != 400 or "no-such.img" not in body:
            raise Failure(f"PATCH to a missing file answered {status} {body}")
        print("ok: a PATCH to a missing file answered 400 naming it")
        if events.get("patch") != 204:
            raise Failure(f"PATCH path_on_host answered {events.get('patch')}\n" + run.tail())
        shown = json.loads(events["config"])["drives"][0]["path_on_host"]
        if shown != real:
            raise Failure(f"GET /vm/config shows path_on_host {shown}")
        print("ok: PATCH path_on_host answered 204 and GET /vm/config shows the new file")
        run.expect(r"^SIZE-BEFORE 2048\s*$", "the guest saw the 1 MiB stub")
        run.expect(r"virtio_blk virtio0: \[vda\] new size", "the driver took the config change")
        run.expect(rf"^SIZE-AFTER {real_sectors}\s*$", "the guest sees the new image's size")
        run.expect(r"^MOUNTED /mnt/etc/passwd\s*$", "the guest mounted the new image's ext4")
        run.expect(r"^ENDED", "the script went on")
        run.healthy_userspace()

    def jailed(self):
        sys.path.insert(0, os.path.join(HERE, "..", "integration"))
        from api_client import call as api_call, wait_for_socket
        jailer = os.path.join(os.path.dirname(os.path.abspath(self.vmm)), "jailer")
        if not os.access(jailer, os.X_OK):
            raise Failure(f"no jailer next to the vmm ({jailer})")
        uid, gid, vm_id = 41234, 41235, "linux-jailed"
        base = self.path("jails")
        root = os.path.join(base, os.path.basename(self.vmm), vm_id, "root")
        os.makedirs(root)
        # What an orchestrator does: the guest's files go into the jail
        # first (a hard link where the file system allows, else a copy).
        # The jailed uid reads them: a link keeps the cache's mode, so a file
        # others cannot read is copied (never chmod a link: that is the cache).
        for source, name in ((self.vmlinux(), "vmlinux"), (self.initrd(), "initrd.gz")):
            target = os.path.join(root, name)
            try:
                if not os.stat(source).st_mode & 0o004:
                    raise OSError("not readable by others")
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
                os.chmod(target, 0o644)
        sock = os.path.join(root, "run", "api.sock")
        seen = {}

        def call(method, target, body=None):
            return api_call(sock, method, target, body, timeout=30)

        def drive(proc):
            if not wait_for_socket(sock, 60):
                raise Failure("the API socket did not appear in the jail")
            seen["shadow"] = call("PUT", "/drives/shadow",
                                  {"drive_id": "shadow", "path_on_host": "/etc/shadow",
                                   "is_root_device": False, "is_read_only": True})
            script = "echo JAILED-GUEST $(uname -s) $(cat /proc/sys/kernel/osrelease)"
            steps = [
                ("PUT", "/boot-source", {"kernel_image_path": "/vmlinux",
                                         "initrd_path": "/initrd.gz",
                                         "boot_args": f"{CMDLINE} vmm.run={b64(script)}"}),
                ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}),
                ("PUT", "/actions", {"action_type": "InstanceStart"}),
            ]
            for method, target, body in steps:
                status, data = call(method, target, body)
                if status != 204:
                    raise Failure(f"{method} {target}: {status} {data}")
            # The jailer exec'd the vmm in place: its pid is the vmm's.
            with open(f"/proc/{proc.pid}/status") as f:
                seen["status"] = f.read()

        run = Run([jailer, "--id", vm_id, "--exec-file", self.vmm, "--uid", str(uid), "--gid",
                   str(gid), "--chroot-base-dir", base, "--", "--api-sock", "/run/api.sock"],
                  stdin=drive)
        shadow_status, shadow_body = seen.get("shadow", (None, ""))
        if shadow_status != 400 or "No such file" not in shadow_body:
            raise Failure(f"PUT /drives with /etc/shadow: {shadow_status} {shadow_body}\n"
                          + run.tail())
        print(f"ok: a drive on /etc/shadow is refused in the jail: {shadow_body.strip()}")
        status = seen.get("status", "")
        for pattern, what in ((rf"^Uid:\t{uid}\t{uid}\t{uid}\t{uid}$", f"the vmm ran as uid {uid}"),
                              (rf"^Gid:\t{gid}\t{gid}\t{gid}\t{gid}$", f"and gid {gid}"),
                              (r"^CapEff:\t0+$", "with no effective capability"),
                              (r"^CapPrm:\t0+$", "no permitted capability"),
                              (r"^CapBnd:\t0+$", "an empty bounding set")):
            if not re.search(pattern, status, re.M):
                raise Failure(f"/proc/PID/status: {what}: no /{pattern}/\n{status}")
            print(f"ok: {what}")
        run.expect(r"^JAILED-GUEST Linux 6\.1", "the guest's userspace ran the command")
        run.healthy_userspace()


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SCENARIOS = ["smoke", "bzimage", "rootfs_rw", "rootfs_ro", "drives", "net", "hvc", "smp1",
             "smp2", "smp4", "smp8", "pause_resume", "reboot", "poweroff", "config_file",
             "jailed", "rate_limits", "drive_swap"]


def main(scenario_class=None, scenarios=None, script="linux_boot.py"):
    """Runs the scenario argv names (linux_snapshot.py passes its own)."""
    scenario_class = scenario_class or Scenario
    scenarios = scenarios or SCENARIOS
    if len(sys.argv) != 3 or sys.argv[2] not in scenarios:
        print(f"usage: {script} VMM SCENARIO ({' '.join(scenarios)})")
        return 2
    vmm, name = sys.argv[1], sys.argv[2]
    kernel_dir = os.environ.get("VMM_TEST_KERNEL_DIR")
    rootfs_dir = os.environ.get("VMM_TEST_ROOTFS_DIR")
    if not kernel_dir or not rootfs_dir:
        print("FAIL: VMM_TEST_KERNEL_DIR / VMM_TEST_ROOTFS_DIR not set "
              "(tools/test sets them after building the guest kernel)")
        return 1
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("FAIL: no usable /dev/kvm (tools/test runs these tests in the nested tier)")
        return 1
    if os.path.exists("/sys/module/kvm_pvm"):
        print("FAIL: this KVM is PVM, which runs no guest userspace "
              "(tools/test runs these tests in the nested tier)")
        return 1
    workdir = tempfile.mkdtemp(prefix="vmm-linux-")
    scenario = scenario_class(vmm, kernel_dir, rootfs_dir, workdir)
    try:
        if name.startswith("smp"):
            scenario.smp(int(name[3:]))
        else:
            getattr(scenario, name)()
    except Failure as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
