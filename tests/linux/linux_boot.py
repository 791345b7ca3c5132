#!/usr/bin/env python3
"""Boots the project's guest kernel under the VMM and checks what it did.

Usage: linux_boot.py VMM SCENARIO
  smoke:      vmlinux + initramfs with the default devices (virtio-rng among them).
  rootfs_rw:  the ext4 image as a read-write root, a second drive as vdb.
  rootfs_ro:  the same with a read-only root drive.
  config_file: the rootfs, 2 vCPUs and virtio-rng from a Firecracker-style
              --config-file (boot-source, drives, machine-config, entropy).
  net:        virtio-net on a tap in a private namespace: ip= configures eth0,
              netconsole sends the kernel log to the host side as UDP.
  hvc:        --console virtio with console=hvc0: the boot log over virtio-console.
  smp2, smp4: --cpus 2 / 4: the kernel finds every CPU in the MP table and
              brings them all online (on real hosts nproc agrees).

Kernel and images come from $VMM_TEST_KERNEL_DIR and $VMM_TEST_ROOTFS_DIR
(tools/test sets them from kernel-images/build-kernel and build-rootfs);
without them the test is skipped (status 77) with a loud message.

On a real KVM host the guest must reach userspace (init's marker line) and
power off through the exit register with status 0. On a PVM host userspace
cannot run (KVM's emulator mishandles SYSCALL from user mode), so the test
checks what the kernel does by itself: it boots with the pvm CPU profile,
sees the VMM's e820 map and command line, unpacks the initramfs, reaches
`Run /init`, and the VMM then ends cleanly: either the guest's panic reboot
(status 0) or a reported emulation failure (status 3), never a hang or a
signal.
"""
import base64
import hashlib
import json
import os
import shutil
import tempfile
import re
import subprocess
import sys
import time

SKIP = 77
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from netns import NetNamespace  # noqa: E402


def is_pvm_host():
    return os.path.exists("/sys/module/kvm_pvm")


def fail(message, output):
    print("FAIL: " + message)
    print("--- output (last 80 lines) ---")
    print("\n".join(output.splitlines()[-80:]))
    return 1


def main():
    vmm, scenario = sys.argv[1], sys.argv[2]
    kernel_dir = os.environ.get("VMM_TEST_KERNEL_DIR")
    rootfs_dir = os.environ.get("VMM_TEST_ROOTFS_DIR")
    if not kernel_dir or not rootfs_dir:
        print("*** SKIPPED: VMM_TEST_KERNEL_DIR / VMM_TEST_ROOTFS_DIR not set "
              "(run tools/test, which builds the guest kernel) ***")
        return SKIP
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIPPED: /dev/kvm is missing ***")
        return 1 if os.environ.get("VMM_REQUIRE_KVM") == "1" else SKIP
    pvm = is_pvm_host()
    workdir = tempfile.mkdtemp(prefix="vmm-linux-")
    try:
        return run_scenario(vmm, scenario, kernel_dir, rootfs_dir, workdir, pvm)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def mount_count(image):
    out = subprocess.run(["dumpe2fs", "-h", image], capture_output=True, text=True).stdout
    m = re.search(r"^Mount count:\s+(\d+)", out, re.M)
    return int(m.group(1)) if m else None


def run_scenario(vmm, scenario, kernel_dir, rootfs_dir, workdir, pvm):
    marker = "VMM-GUEST: userspace up"
    cmdline = "console=ttyS0 reboot=k panic=-1"
    base = [vmm, "--kernel", os.path.join(kernel_dir, "vmlinux"), "--mem", "256",
            "--boot-trace", "-v"]
    checks = [
        (r"Linux version 6\.1", "the kernel started and printed its banner"),
        (r"BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable",
         "the e820 map has 256 MiB of RAM from 1 MiB"),
        (r"Hypervisor detected: KVM", "the guest detected KVM from CPUID"),
        (r"printk: console \[ttyS0\] enabled", "the 8250 console was registered"),
    ]
    root_image = None
    namespace = None
    after_run = []  # checks on what the host side saw: (function -> error or None)

    def uncompressed_initramfs():
        # Under PVM's emulator gunzip alone costs a minute.
        initrd = os.path.join(workdir, "initramfs.cpio")
        with open(initrd, "wb") as out:
            subprocess.run(["gzip", "-dc", os.path.join(rootfs_dir, "initramfs.cpio.gz")],
                           stdout=out, check=True)
        return initrd

    if scenario == "smoke":
        command = base + ["--initrd", uncompressed_initramfs(), "--cmdline", cmdline]
        checks += [
            (r"Command line: " + re.escape(cmdline), "the kernel got the VMM's command line"),
            (r"Unpacking initramfs", "the kernel found the initramfs"),
            (r"Run /init as init process", "the kernel reached init"),
            # The hwrng core reads the device as it registers it (add_early_randomness).
            (r"vmm: virtio-rng: requests=[1-9]\d* bytes=[1-9]\d*",
             "the kernel read entropy from virtio-rng"),
        ]
    elif scenario == "net":
        why = NetNamespace.available()
        if why:
            print(f"*** SKIPPED: network namespaces unavailable: {why} ***")
            return SKIP
        mac = "06:00:0a:00:02:0f"
        guest, host = "10.0.2.15", "10.0.2.1"
        net_cmdline = (f"{cmdline} ip={guest}::{host}:255.255.255.0:vmmguest:eth0:off "
                       f"netconsole=6665@{guest}/eth0,6666@{host}/")
        payload = os.path.join(workdir, "payload.bin")
        with open(payload, "wb") as f:
            f.write(os.urandom(4 << 20))
        with open(payload, "rb") as f:
            payload_sha = hashlib.sha256(f.read()).hexdigest()
        # On a real host userspace runs: ping the host, TCP each way, hwrng.
        script = (f"ping -c 3 -W 2 {host} && echo NET-PING-OK; "
                  "dd if=/dev/urandom of=/up bs=64k count=64 2>/dev/null; "
                  "echo UP-SHA $(sha256sum /up); "
                  f"nc {host} 5001 < /up; "
                  f"nc {host} 5002 > /down; echo DOWN-SHA $(sha256sum /down); "
                  "echo HWRNG-BYTES $(head -c 64 /dev/hwrng | wc -c)")
        run = "" if pvm else " vmm.run=" + base64.b64encode(script.encode()).decode()
        command = base + ["--initrd", uncompressed_initramfs(), "--cmdline", net_cmdline + run,
                          "--net", f"tap=tap0,mac={mac}"]
        checks += [
            (r"IP-Config: Complete:", "the kernel configured eth0 from ip="),
            (rf"device=eth0, hwaddr={mac}, ipaddr={re.escape(guest)}, mask=255\.255\.255\.0",
             "eth0 has the VMM's MAC and the static address"),
            (r"netconsole: network logging started", "netconsole came up on eth0"),
            (r"Run /init as init process", "the kernel reached init"),
            (r"vmm: virtio-net net0: rx_frames=\d+ rx_bytes=\d+ rx_dropped=0 tx_frames=[1-9]",
             "the guest sent frames through the tap"),
        ]
        namespace = NetNamespace()

        def netconsole_arrived():
            path = os.path.join(workdir, "netconsole.log")
            text = open(path, "rb").read().decode(errors="replace") if os.path.exists(path) else ""
            for line in ("network logging started", "Run /init as init process"):
                if line not in text:
                    return f"the host side got no netconsole line '{line}' ({len(text)} bytes)"
            return None
        after_run.append(("the kernel log arrived as UDP on the host side of the tap",
                          netconsole_arrived))
        if not pvm:
            def transfers_ok(out):
                up = re.search(r"UP-SHA ([0-9a-f]{64})", out)
                got = os.path.join(workdir, "upload.sha256")
                if not up or not os.path.exists(got) or open(got).read().strip() != up.group(1):
                    return "the guest-to-host TCP transfer's checksum differs"
                if f"DOWN-SHA {payload_sha}" not in out:
                    return "the host-to-guest TCP transfer's checksum differs"
                return None
            checks += [(r"NET-PING-OK", "the guest pinged the host"),
                       (r"HWRNG-BYTES 64", "/dev/hwrng is readable")]
            after_run.append(("TCP transfers each way arrived intact", transfers_ok))
    elif scenario in ("smp2", "smp4"):
        n = int(scenario[3:])
        command = base + ["--initrd", uncompressed_initramfs(), "--cmdline", cmdline,
                          "--cpus", str(n)]
        if not pvm:
            command[command.index("--cmdline") + 1] = cmdline + " vmm.run=" + base64.b64encode(
                b"echo NPROC $(nproc)").decode()
            checks.append((rf"NPROC {n}\b", "userspace sees every CPU (nproc)"))
        checks += [
            (r"found SMP MP-table at", "the kernel found the VMM's MP table"),
            (rf"smp: Brought up 1 node, {n} CPUs", f"the kernel brought all {n} CPUs online"),
            (r"Run /init as init process", "the kernel reached init"),
        ]
    elif scenario == "hvc":
        hvc_cmdline = "console=hvc0 reboot=k panic=-1"
        command = base + ["--initrd", uncompressed_initramfs(), "--cmdline", hvc_cmdline,
                          "--console", "virtio"]
        script = "echo HVC-LINE-OK > /dev/hvc0"
        if not pvm:
            command[-3] = hvc_cmdline + " vmm.run=" + base64.b64encode(script.encode()).decode()
        # With only console=hvc0 the 8250 is no console: what arrives came over
        # virtio-console. hvc0 has a backend only once virtio_console probes, so
        # the early log (banner, e820) is not replayed: check what follows.
        checks = [
            (r"Run /init as init process", "the boot log arrived over hvc0"),
            (r"vmm: virtio-console: .*tx_bytes=[1-9]", "the VMM carried console output"),
            (r"first serial byte\s+never", "nothing went through the 8250"),
        ]
        if not pvm:
            checks.append((r"HVC-LINE-OK", "a line written to hvc0 in the guest reached stdout"))
    elif scenario in ("rootfs_rw", "rootfs_ro"):
        read_only = scenario == "rootfs_ro"
        root_image = os.path.join(workdir, "rootfs.ext4")
        shutil.copyfile(os.path.join(rootfs_dir, "rootfs.ext4"), root_image)
        second = os.path.join(workdir, "second.img")
        with open(second, "wb") as f:
            f.truncate(3 * 1024 * 1024)  # 6144 sectors
        # On a real host userspace runs: write a file (which must fail on a
        # read-only root), report vdb's size, and let the host check the image.
        script = ("cat /sys/block/vdb/size > /dev/console; "
                  "echo vmm-test-data > /written.txt && sync")
        run = " vmm.run=" + base64.b64encode(script.encode()).decode()
        if pvm:
            run = ""
        if read_only:
            command = base + ["--cmdline", cmdline + " root=/dev/vda ro" + run,
                              "--drive", f"path={root_image},ro,id=rootfs"]
        else:
            command = base + ["--cmdline", cmdline + run, "--rootfs", root_image]
        command += ["--drive", f"path={second},id=second"]
        checks += [
            (r"virtio_blk virtio0: \[vda\] 65536 512-byte logical blocks", "vda has the image's size"),
            (r"virtio_blk virtio1: \[vdb\] 6144 512-byte logical blocks", "vdb has the second image's size"),
            (r"VFS: Mounted root \(ext4 filesystem\)" + (" readonly" if read_only else ""),
             "the ext4 root was mounted " + ("read-only" if read_only else "read-write")),
            (r"Run /sbin/init as init process", "the kernel reached init"),
        ]
    elif scenario == "config_file":
        # The Firecracker-style config file: what an orchestrator would send.
        root_image = os.path.join(workdir, "rootfs.ext4")
        shutil.copyfile(os.path.join(rootfs_dir, "rootfs.ext4"), root_image)
        document = {
            "boot-source": {"kernel_image_path": os.path.join(kernel_dir, "vmlinux"),
                            "boot_args": cmdline},
            "drives": [{"drive_id": "rootfs", "path_on_host": root_image,
                        "is_root_device": True, "is_read_only": False}],
            "machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
            "entropy": {},
        }
        config_path = os.path.join(workdir, "vm-config.json")
        with open(config_path, "w") as f:
            json.dump(document, f)
        command = [vmm, "--config-file", config_path, "--boot-trace", "-v"]
        checks += [
            (r"Command line: " + re.escape(cmdline) + r".*root=/dev/vda rw",
             "the kernel got boot_args plus the root drive"),
            (r"smp: Brought up 1 node, 2 CPUs", "both vCPUs of machine-config came up"),
            (r"virtio_blk virtio0: \[vda\] 65536 512-byte logical blocks", "vda is the root drive"),
            (r"VFS: Mounted root \(ext4 filesystem\)", "the ext4 root was mounted"),
            (r"vmm: virtio-rng: requests=[1-9]\d*", "the entropy device was used"),
        ]
        # On PVM the second vCPU sometimes meets an x87 instruction the
        # emulator lacks (fwait) between the root mount and init; the kernel
        # has done its part by then, so either ending counts there.
        checks.append((r"Run /sbin/init as init process", "the kernel reached init") if not pvm
                      else (r"(Run /sbin/init as init process|KVM could not emulate)",
                            "the kernel reached init, or the emulator stopped after the mount"))
    else:
        print(f"unknown scenario {scenario}")
        return 2
    before = mount_count(root_image) if root_image else None

    # About a minute per boot under PVM's emulator; seconds natively.
    timeout = 600 if pvm else 120
    print("running: " + " ".join(command), flush=True)
    start = time.monotonic()
    peer = None
    try:
        if namespace:
            namespace.__enter__()
            peer = subprocess.Popen(namespace.wrap(
                [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              "net_peer.py"), workdir, payload]))
            for _ in range(100):
                if os.path.exists(os.path.join(workdir, "ready")):
                    break
                time.sleep(0.05)
            command = namespace.wrap(command)
        proc = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        return fail(f"no exit within {timeout} s", out)
    finally:
        if peer:
            peer.kill()
            peer.wait()
        if namespace:
            namespace.__exit__(None, None, None)
    took = time.monotonic() - start
    out = proc.stdout.decode(errors="replace")
    print(f"vmm exited with status {proc.returncode} after {took:.1f} s")

    if pvm:
        checks.append((r"(Attempted to kill init|KVM could not emulate|vmm: )",
                       "the run ended with a reason (init's death or an emulator report)"))
    else:
        checks.append((re.escape(marker), "userspace ran (init's marker line)"))
        if root_image:
            checks.append((r"^6144\s*$", "userspace sees vdb with 6144 sectors"))
            status = r"[1-9][0-9]*" if scenario == "rootfs_ro" else "0"
            checks.append((r"VMM-GUEST: exit status " + status,
                           "the write " + ("failed on the read-only root" if scenario == "rootfs_ro"
                                           else "succeeded")))
    for pattern, what in checks:
        if not re.search(pattern, out, re.M):
            return fail(f"missing: {what} (/{pattern}/)", out)
        print(f"ok: {what}")

    for what, check in after_run:
        error = check(out) if check.__code__.co_argcount == 1 else check()
        if error:
            return fail(error, out)
        print(f"ok: {what}")

    if proc.returncode < 0:
        return fail(f"vmm killed by signal {-proc.returncode}", out)
    allowed = (0, 3) if pvm else (tuple(range(1, 256)) if scenario == "rootfs_ro" else (0,))
    if proc.returncode not in allowed:
        return fail(f"exit status {proc.returncode}, expected one of {allowed}", out)
    print(f"ok: exit status {proc.returncode}")
    if root_image:
        after = mount_count(root_image)
        if scenario == "rootfs_rw" and not (after is not None and before is not None
                                            and after > before):
            return fail(f"ext4 mount count did not rise ({before} -> {after}): "
                        "the root was not mounted read-write", out)
        if scenario == "rootfs_ro" and after != before:
            return fail(f"ext4 mount count changed ({before} -> {after}) on a read-only drive", out)
        print(f"ok: ext4 mount count {before} -> {after}")
        if not pvm and scenario == "rootfs_rw":
            cat = subprocess.run(["debugfs", "-R", "cat /written.txt", root_image],
                                 capture_output=True, text=True)
            if "vmm-test-data" not in cat.stdout:
                return fail("the file the guest wrote and synced is not in the image", out)
            print("ok: the host reads the guest's file back from the image (debugfs)")
    if pvm:
        print("note: PVM host: userspace cannot run here; kernel-side boot verified")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
