#!/usr/bin/env python3
"""Snapshot restore of a Linux guest, ours against QEMU's, runs alternating.

    snapshot_bench.py VMM VMLINUX INITRD RUNS MEM_MIB...

For each memory size both sides boot the same kernel and initramfs once;
the guest prints READY and then answers every console line L with "ECHO L".
Ours is paused and snapshotted (PUT /snapshot/create, Full), QEMU stopped and
migrated to a file (`migrate "exec:cat > FILE"`). Then RUNS restores per side,
alternating, each in a new process:

  ours: vmm --api-sock; PUT /snapshot/load (resume_vm; the File backend,
        then the Uffd one with tools' uffd-handler serving the memory file);
        a console line; its echo. Measured: process start -> echo ("answer"),
        load request -> 204 ("running": the vCPUs were started) and load
        request -> echo.
  qemu: the same command line plus -incoming "exec:cat FILE"; "cont" once
        the state is in (the source was stopped, and QEMU keeps that run
        state); a console line; its echo. Measured: process start -> echo ("answer").

Prints one JSON line per measurement: {"side", "mem_mib", ["backend"],
"answer_s", ["running_s", "request_answer_s"]} or {"side", "mem_mib", "error"}. Only
ratios mean anything in the nested tier (tools/bench runs this there).
"""
import base64
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time

CMDLINE = "console=ttyS0 reboot=k panic=-1"
SCRIPT = "echo READY; while read line; do echo ECHO $line; done"
TIMEOUT = 180
GUEST_CMDLINE = f"{CMDLINE} vmm.run={base64.b64encode(SCRIPT.encode()).decode()}"


class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path_ = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path_)


def api(sock, method, target, body=None):
    conn = Unix(sock)
    conn.request(method, target, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    if response.status >= 300:
        raise RuntimeError(f"{method} {target}: {response.status} {text}")


class Process:
    """A VMM with its console on pipes."""

    def __init__(self, argv):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.seen = b""

    def wait_for(self, text):
        deadline = self.start + TIMEOUT
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no {text!r} within {TIMEOUT} s")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    tail = self.seen.decode(errors="replace").strip().splitlines()[-2:]
                    raise RuntimeError(f"exited ({self.proc.wait()}) before {text!r}: {tail}")
                self.seen = (self.seen + chunk)[-65536:]
        return time.monotonic()

    def say(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def wait_socket(path):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
                return
        except OSError:
            time.sleep(0.001)
    raise RuntimeError(f"no API socket {path}")


def qemu_argv(vmlinux, initrd, mem, monitor):
    return ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", str(mem),
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
            "-kernel", vmlinux, "-initrd", initrd, "-append", GUEST_CMDLINE,
            "-monitor", f"unix:{monitor},server=on,wait=off"]


def hmp(monitor, command):
    """One human monitor command; its output up to the prompt that follows it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(monitor)
        s.settimeout(60)
        s.sendall(command.encode() + b"\n")
        out = b""
        # The banner ends in a prompt, and so does the command's output.
        while out.count(b"(qemu)") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")


class Sides:
    def __init__(self, vmm, vmlinux, initrd, workdir):
        self.vmm, self.vmlinux, self.initrd, self.workdir = vmm, vmlinux, initrd, workdir
        self.count = 0

    def path(self, name):
        self.count += 1
        return os.path.join(self.workdir, f"{self.count}-{name}")

    def ours_snapshot(self, mem):
        sock = self.path("api.sock")
        vm = Process([self.vmm, "--kernel", self.vmlinux, "--initrd", self.initrd, "--mem",
                      str(mem), "--cmdline", GUEST_CMDLINE, "--api-sock", sock])
        try:
            vm.wait_for(b"READY")
            wait_socket(sock)
            api(sock, "PATCH", "/vm", {"state": "Paused"})
            state, memory = self.path("vm.state"), self.path("vm.mem")
            api(sock, "PUT", "/snapshot/create",
                {"snapshot_type": "Full", "snapshot_path": state, "mem_file_path": memory})
            return state, memory
        finally:
            vm.close()

    def ours_restore(self, snapshot, backend="File"):
        state, memory = snapshot
        sock = self.path("api.sock")
        handler = None
        backend_path = memory
        if backend == "Uffd":
            # The reference page-fault handler, ready before the VMM starts
            # (its start is not part of the restore, as with Firecracker's).
            backend_path = self.path("uffd.sock")
            handler = subprocess.Popen(
                [os.path.join(os.path.dirname(self.vmm), "uffd-handler"), "--socket",
                 backend_path, "--mem-file", memory],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + TIMEOUT
            while not os.path.exists(backend_path):
                if handler.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("uffd-handler did not open its socket")
                time.sleep(0.001)
        vm = Process([self.vmm, "--api-sock", sock])
        try:
            wait_socket(sock)
            request = time.monotonic()
            api(sock, "PUT", "/snapshot/load",
                {"snapshot_path": state, "resume_vm": True,
                 "mem_backend": {"backend_type": backend, "backend_path": backend_path}})
            running = time.monotonic()
            vm.say("ping")
            answered = vm.wait_for(b"ECHO ping")
            return {"answer_s": answered - vm.start, "running_s": running - request,
                    "request_answer_s": answered - request}
        finally:
            vm.close()
            if handler is not None:
                handler.kill()
                handler.wait()

    def qemu_snapshot(self, mem):
        monitor, image = self.path("monitor.sock"), self.path("qemu.migration")
        vm = Process(qemu_argv(self.vmlinux, self.initrd, mem, monitor))
        try:
            vm.wait_for(b"READY")
            hmp(monitor, "stop")
            hmp(monitor, f'migrate "exec:cat > {image}"')
            deadline = time.monotonic() + TIMEOUT
            while "Migration status: completed" not in hmp(monitor, "info migrate"):
                if time.monotonic() > deadline:
                    raise RuntimeError("QEMU's migration to a file did not complete")
                time.sleep(0.1)
            return image
        finally:
            vm.close()

    def qemu_restore(self, image, mem):
        monitor = self.path("monitor.sock")
        vm = Process(qemu_argv(self.vmlinux, self.initrd, mem, monitor)
                     + ["-incoming", f"exec:cat {image}"])
        try:
            # A line sent before the incoming state is loaded would be lost.
            wait_socket(monitor)
            while True:
                status = hmp(monitor, "info status")
                if "VM status: running" in status:
                    break
                # The source was stopped before it migrated, and QEMU restores
                # that run state instead of starting: it needs a "cont" (as
                # our resume_vm does), counted in its time.
                if "VM status: paused" in status and "inmigrate" not in status:
                    hmp(monitor, "cont")
                    continue
                if time.monotonic() > vm.start + 60:
                    raise RuntimeError(f"QEMU did not run the incoming state: {status.strip()}")
                time.sleep(0.005)
            vm.say("ping")
            answered = vm.wait_for(b"ECHO ping")
            return {"answer_s": answered - vm.start}
        finally:
            vm.close()


def main():
    vmm, vmlinux, initrd, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sizes = [int(m) for m in sys.argv[5:]] or [128]
    with tempfile.TemporaryDirectory(prefix="vmm-snapshot-bench-") as workdir:
        sides = Sides(vmm, vmlinux, initrd, workdir)
        for mem in sizes:
            snapshots = {}
            for side, make in (("ours", sides.ours_snapshot), ("qemu", sides.qemu_snapshot)):
                try:
                    snapshots[side] = make(mem)
                except Exception as e:  # one side failing must not hide the other
                    print(json.dumps({"side": side, "mem_mib": mem, "error": f"snapshot: {e}"}),
                          flush=True)
            for _ in range(runs):
                for side, backend in (("ours", "File"), ("ours", "Uffd"), ("qemu", None)):
                    if side not in snapshots:
                        continue
                    try:
                        row = sides.ours_restore(snapshots[side], backend) if side == "ours" \
                            else sides.qemu_restore(snapshots[side], mem)
                        row.update(side=side, mem_mib=mem)
                        if backend:
                            row["backend"] = backend
                    except Exception as e:
                        row = {"side": side, "mem_mib": mem, "error": str(e)}
                        if backend:
                            row["backend"] = backend
                    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
