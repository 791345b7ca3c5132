#!/usr/bin/env python3
"""Snapshots of a Linux guest in userspace, restored in new VMM processes.

Usage: linux_snapshot.py VMM SCENARIO

  snapshot         a guest counting on an ext4 root drive is paused and
                   snapshotted (Full, File backend), its VMM killed; a new VMM
                   restores it: the count goes on from where it stopped, guest
                   time moved forward, the file written before the snapshot
                   reads back, the file written after it is in the image.
                   Creating while running and loading after a boot are refused.
  snapshot_net     a guest serving TCP on its tap in one network namespace is
                   snapshotted; restored in another namespace with
                   network_overrides naming a different tap, it answers TCP
                   there (an override for an interface it lacks is a 400).
  snapshot_clones  one snapshot of an initramfs guest, which then goes on
                   running, restored into two VMMs at once, one from the
                   memory file, one with the Uffd backend (uffd-handler serving
                   its pages): both count to the end; the second loads paused
                   (no ticks) until resumed.

Needs a real KVM, like linux_boot.py (tools/test runs it in the nested tier).
"""
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from api_client import call, wait_for_socket  # noqa: E402
from netns import GUEST_IP, HOST_IP, NetNamespace  # noqa: E402
from linux_boot import (BAD_SIGNS, CMDLINE, MARKER, Failure, Run, Scenario, b64,  # noqa: E402
                        main, wait_for)

TICKS = 60
# A tick's number (whole: a space follows), and its uptime unless a kernel
# message cut into the line (after a restore the guest's clocksource
# watchdog may print mid-line).
TICK_LINE = re.compile(r"^TICK (\d+) (?:([0-9]+\.[0-9]+)\s*$)?")
# Both namespaces' taps get this MAC: the restored guest's ARP cache still
# holds the one it learnt before the snapshot.
HOST_TAP_MAC = "06:00:0a:00:02:01"
GUEST_MAC = "06:00:0a:00:02:0f"
TCP_PORT = 7000
# Connects from the host side until the guest answers (its first frames after
# the restore may meet a stale neighbour entry); prints what it got.
TCP_PROBE = f"""
import socket, sys, time
deadline = time.monotonic() + 60
while True:
    try:
        with socket.create_connection(("{GUEST_IP}", {TCP_PORT}), timeout=5) as s:
            print("GOT", s.recv(100).decode().strip()); break
    except OSError as e:
        if time.monotonic() > deadline:
            print("NO ANSWER", e); sys.exit(1)
        time.sleep(0.5)
"""


def counting_script(prefix="", suffix=""):
    """Counts to TICKS, each line with the guest's uptime, then runs `suffix`."""
    return (f"{prefix}i=0; while [ $i -lt {TICKS} ]; do i=$((i+1)); "
            "echo TICK $i $(cut -d' ' -f1 /proc/uptime); sleep 0.2; done; " + suffix)


class Ticks:
    """The TICK lines of one VMM's output, as (number, guest uptime)."""

    def __init__(self):
        self.seen = []

    def on_line(self, line, proc):
        m = TICK_LINE.match(line)
        if m:
            self.seen.append((int(m.group(1)), float(m.group(2)) if m.group(2) else None))

    def last(self):
        return self.seen[-1] if self.seen else (0, 0.0)

    def uptimes(self):
        return [uptime for _, uptime in self.seen if uptime is not None]


def expect_api(sock, method, target, body, status, what):
    got, text = call(sock, method, target, body)
    if got != status:
        raise Failure(f"{method} {target}: {got} {text}, expected {status} ({what})")
    print(f"ok: {what} ({got})")
    return text


def check_continuation(before, after, what):
    """`after` goes on from `before`: consecutive numbers to TICKS, uptime forward."""
    if not before.seen or not after.seen:
        raise Failure(f"{what}: no ticks before ({before.seen}) or after ({after.seen})")
    last, _ = before.last()
    first, _ = after.seen[0]
    last_uptime = (before.uptimes() or [0.0])[-1]
    first_uptime = (after.uptimes() or [float("inf")])[0]
    # The line being printed at the snapshot may be cut in two: its number
    # comes again whole after the restore.
    if first not in (last, last + 1):
        raise Failure(f"{what}: the count went from {last} to {first}")
    numbers = [n for n, _ in after.seen]
    if numbers != list(range(first, TICKS + 1)):
        raise Failure(f"{what}: ticks after the restore skip or repeat: {numbers}")
    if first_uptime < last_uptime:
        raise Failure(f"{what}: guest time went back, {last_uptime} s -> {first_uptime} s")
    print(f"ok: {what}: the count went on {last} -> {first} .. {TICKS}, guest uptime "
          f"{last_uptime} s -> {first_uptime} s")


class SnapshotScenario(Scenario):
    def snapshot_and_stop(self, command, sock, state, memory, resume_after=False):
        """Runs `command` until five ticks, snapshots it, then kills or resumes it."""
        ticks = Ticks()
        result = {}

        def drive(proc):
            if not wait_for_socket(sock, 60):
                raise Failure("the API socket did not appear")
            wait_for(lambda: len(ticks.seen) >= 5, 180, "five ticks")
            expect_api(sock, "PUT", "/snapshot/create",
                       {"snapshot_path": state, "mem_file_path": memory}, 400,
                       "a snapshot of a running VM is refused")
            expect_api(sock, "PUT", "/snapshot/load",
                       {"snapshot_path": state, "mem_backend": {
                           "backend_type": "File", "backend_path": memory}}, 400,
                       "a load after boot is refused")
            expect_api(sock, "PATCH", "/vm", {"state": "Paused"}, 204, "paused")
            start = time.monotonic()
            expect_api(sock, "PUT", "/snapshot/create",
                       {"snapshot_type": "Full", "snapshot_path": state,
                        "mem_file_path": memory}, 204, "snapshot created")
            result["create_s"] = time.monotonic() - start
            time.sleep(0.5)  # what the guest printed reaches us
            result["before"] = list(ticks.seen)
            if resume_after:
                expect_api(sock, "PATCH", "/vm", {"state": "Resumed"}, 204,
                           "the source VM resumed after its snapshot")
            else:
                proc.kill()

        run = Run(command, stdin=drive, on_line=ticks.on_line)
        run.expect_not(BAD_SIGNS, "no kernel warning before the snapshot")
        before = Ticks()
        # A killed VMM's whole output has been read now: every tick it
        # printed counts, however slowly the reader kept up (in the nested
        # tier it lagged more than the half second above once).
        before.seen = result["before"] if resume_after else list(ticks.seen)
        print(f"snapshot created in {result['create_s'] * 1000:.0f} ms (API round trip); "
              f"state {os.path.getsize(state)} bytes, memory file {os.path.getsize(memory)} "
              f"bytes ({os.stat(memory).st_blocks * 512} allocated)")
        return run, before, ticks

    def restore(self, sock, state, memory, resume=True, after_load=None, overrides=None,
                wrap=lambda command: command, backend="File"):
        """A new VMM that loads the snapshot; returns its run and ticks."""
        ticks = Ticks()

        def drive(proc):
            if not wait_for_socket(sock, 60):
                raise Failure("the restoring VMM's API socket did not appear")
            body = {"snapshot_path": state, "resume_vm": resume,
                    "mem_backend": {"backend_type": backend, "backend_path": memory}}
            if overrides:
                body["network_overrides"] = [{"iface_id": "eth9", "host_dev_name": "tap9"}]
                expect_api(sock, "PUT", "/snapshot/load", body, 400,
                           "an override for an interface the snapshot lacks is refused")
                body["network_overrides"] = overrides
            expect_api(sock, "PUT", "/snapshot/load", body, 204, "snapshot loaded")
            config = expect_api(sock, "GET", "/vm/config", None, 200, "GET /vm/config")
            if json.loads(config).get("machine-config", {}).get("mem_size_mib") != 256:
                raise Failure(f"GET /vm/config does not describe the restored VM: {config}")
            print("ok: GET /vm/config describes the restored VM (256 MiB)")
            if after_load:  # while the restored guest runs (or waits, loaded paused)
                after_load(sock, ticks)

        run = Run(wrap([self.vmm, "--api-sock", sock, "-v"]), stdin=drive,
                  on_line=ticks.on_line)
        return run, ticks

    def snapshot(self):
        image = self.copy_rootfs()
        token = secrets.token_hex(8)
        state, memory = self.path("vm.state"), self.path("vm.mem")
        script = counting_script(
            prefix=f"echo {token} > /before.txt && sync && ",
            suffix=(f"echo READ-BACK $(cat /before.txt); echo after-{token} > /after.txt && "
                    "sync && mount -o remount,ro / && echo DONE"))
        sock = self.path("first.sock")
        command = self.base("--rootfs", image, "--api-sock", sock, "--cmdline",
                            f"{CMDLINE} vmm.run={b64(script)}")
        first, before, _ = self.snapshot_and_stop(command, sock, state, memory)
        first.expect(re.escape(MARKER), "the first VMM booted to userspace")

        restored, after = self.restore(self.path("second.sock"), state, memory)
        restored.expect_not(r"Linux version", "the restored VMM did not boot a kernel")
        restored.expect(rf"^READ-BACK {token}\s*$", "the file written before the snapshot reads back")
        restored.expect(r"^DONE\s*$", "the guest wrote a file after the restore and synced it")
        restored.expect_not(BAD_SIGNS, "no kernel warning after the restore")
        restored.expect_status(0)
        check_continuation(before, after, "restored VMM")
        fsck = subprocess.run(["e2fsck", "-fn", image], capture_output=True, text=True)
        if fsck.returncode != 0:
            raise Failure(f"e2fsck -fn found problems:\n{fsck.stdout}{fsck.stderr}")
        print("ok: e2fsck -fn finds the image clean")
        cat = subprocess.run(["debugfs", "-R", "cat /after.txt", image], capture_output=True,
                             text=True)
        if f"after-{token}" not in cat.stdout:
            raise Failure("the file written after the restore is not in the image (debugfs)")
        print("ok: the file written after the restore is in the image")

    def snapshot_net(self):
        why = NetNamespace.available()
        if why:
            raise Failure(f"network namespaces unavailable: {why}")
        state, memory = self.path("vm.state"), self.path("vm.mem")
        server = f"(while true; do echo PONG | nc -l -p {TCP_PORT}; done) & "
        cmdline = (f"{CMDLINE} ip={GUEST_IP}::{HOST_IP}:255.255.255.0:vmmguest:eth0:off "
                   f"vmm.run={b64(counting_script(prefix=server, suffix='echo NET-DONE'))}")
        sock = self.path("first.sock")
        with NetNamespace(tap="tap0", prefix="vmmsnapa") as first_ns:
            first_ns.run("link", "set", "tap0", "address", HOST_TAP_MAC)
            command = first_ns.wrap(self.base("--initrd", self.initrd(), "--api-sock", sock,
                                              "--cmdline", cmdline, "--net",
                                              f"tap=tap0,mac={GUEST_MAC}"))
            first, before, _ = self.snapshot_and_stop(command, sock, state, memory)
        first.expect(re.escape(MARKER), "the first VMM booted to userspace")

        with NetNamespace(tap="tap1", prefix="vmmsnapb") as second_ns:
            second_ns.run("link", "set", "tap1", "address", HOST_TAP_MAC)
            answers = {}

            def talk(sock, ticks):
                probe = subprocess.run(second_ns.wrap([sys.executable, "-c", TCP_PROBE]),
                                       capture_output=True, text=True, timeout=120)
                answers["probe"] = probe.stdout.strip()

            restored, after = self.restore(
                self.path("second.sock"), state, memory, after_load=talk,
                overrides=[{"iface_id": "net0", "host_dev_name": "tap1"}], wrap=second_ns.wrap)
        if answers.get("probe") != "GOT PONG":
            raise Failure(f"the restored guest did not answer TCP on tap1: {answers}\n"
                          + restored.tail())
        print("ok: the restored guest answered TCP on the overriding tap (tap1)")
        restored.expect(r"^NET-DONE\s*$", "the restored guest counted to the end")
        restored.expect_not(BAD_SIGNS, "no kernel warning after the restore")
        restored.expect_status(0)
        check_continuation(before, after, "restored VMM")

    def snapshot_clones(self):
        state, memory = self.path("vm.state"), self.path("vm.mem")
        sock = self.path("source.sock")
        command = self.base("--initrd", self.initrd(), "--api-sock", sock, "--cmdline",
                            f"{CMDLINE} vmm.run={b64(counting_script(suffix='echo CLONE-DONE'))}")
        source, before, source_ticks = self.snapshot_and_stop(command, sock, state, memory,
                                                              resume_after=True)
        source.expect(r"^CLONE-DONE\s*$", "the source VM went on to the end after its snapshot")
        source.healthy_userspace()

        def stays_paused(sock, ticks):
            if '"Paused"' not in call(sock, "GET", "/")[1]:
                raise Failure("a VM loaded with resume_vm false is not reported Paused")
            time.sleep(1.0)
            if ticks.seen:
                raise Failure(f"{len(ticks.seen)} ticks from a VM loaded paused")
            print("ok: loaded with resume_vm false: Paused, no ticks in 1 s")
            expect_api(sock, "PATCH", "/vm", {"state": "Resumed"}, 204, "the paused clone resumed")

        runs = {}

        def clone(name, memory=memory, **kwargs):
            try:
                runs[name] = self.restore(self.path(f"{name}.sock"), state, memory, **kwargs)
            except Failure as e:
                runs[name] = e

        # clone2's pages come from uffd-handler (the Uffd backend), clone1's
        # from the memory file mapped privately.
        handler_sock = self.path("uffd.sock")
        handler = subprocess.Popen([os.path.join(os.path.dirname(self.vmm), "uffd-handler"),
                                    "--socket", handler_sock, "--mem-file", memory],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threads = [threading.Thread(target=clone, args=("clone1",)),
                   threading.Thread(target=clone, args=("clone2",),
                                    kwargs={"resume": False, "after_load": stays_paused,
                                            "backend": "Uffd", "memory": handler_sock})]
        try:
            wait_for(lambda: os.path.exists(handler_sock), 60, "uffd-handler's socket")
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            handler_out, _ = handler.communicate(timeout=60)
        finally:
            if handler.poll() is None:
                handler.kill()
                handler.wait()
        served = re.search(r"served (\d+) pages", handler_out)
        if handler.returncode != 0 or not served or int(served.group(1)) == 0:
            raise Failure(f"uffd-handler: status {handler.returncode}: {handler_out}")
        print(f"ok: uffd-handler served clone2's {served.group(1)} pages")
        for name in ("clone1", "clone2"):
            if isinstance(runs.get(name), Failure):
                raise Failure(f"{name}: {runs[name]}")
            run, ticks = runs[name]
            run.expect(r"^CLONE-DONE\s*$", f"{name} counted to the end")
            run.expect_not(BAD_SIGNS, f"{name}: no kernel warning")
            run.expect_status(0)
            check_continuation(before, ticks, name)


SCENARIOS = ["snapshot", "snapshot_net", "snapshot_clones"]


if __name__ == "__main__":
    sys.exit(main(SnapshotScenario, SCENARIOS, "linux_snapshot.py"))
