#!/usr/bin/env python3
"""Snapshot and restore with the project's test guests, on any KVM (PVM too).

Usage: snapshot_test.py VMM GUESTS_DIR CASE

  restore-counters  pause_counters on 2 vCPUs (every CPU checks its registers,
                    flags and memory counter each iteration) is snapshotted at
                    tick 5, its VMM killed, restored in a new VMM, snapshotted
                    again there and restored in a third: it counts on and
                    passes. A snapshot while running, and one over the memory
                    file the VM was restored from, are refused (400).
  bad-snapshots     a corrupt, truncated, other-version and other-architecture
                    state file, a memory file shorter than guest memory, a
                    missing file and a directory: each load is a 400 naming
                    the problem; `vmm --describe-snapshot` names the version
                    and architecture of the intact ones, a one-line error else;
                    the same VMM then loads the good snapshot and runs it.
  diff              with track_dirty_pages: a Full snapshot at tick 3, a Diff at
                    tick 8 that holds far fewer pages, merged onto the Full's
                    memory file with rebase-snap; the Diff's state with the
                    merged memory restores and passes.
  uffd              the Uffd backend: a load with no handler on the socket is a
                    400 naming it; then uffd-handler (tools/) serves the pages
                    from the memory file and the restored guest passes.
  create-errors     a snapshot into a missing directory and a Diff snapshot
                    without dirty page tracking are refused; the paused VM
                    resumes and finishes.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_client import call, wait_for_socket  # noqa: E402
from lifecycle_test import SKIP, Running  # noqa: E402

HEADER = 24  # magic, version, architecture, state size; then state, CRC-64
CRC_POLY = 0xC96C5795D7870F42  # ECMA-182, reflected (vmm/snapshot/crc64.cpp)


class Failure(Exception):
    pass


def crc64(data):
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ CRC_POLY if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFFFFFFFFFF


def expect_api(sock, method, target, body, status, what, contains=None):
    got, text = call(sock, method, target, body, timeout=60)
    if got != status or (contains and contains not in text):
        raise Failure(f"{method} {target}: {got} {text}; expected {status}"
                      + (f" mentioning {contains!r}" if contains else "") + f" ({what})")
    print(f"ok: {what} ({got}{': ' + json.loads(text)['fault_message'] if got >= 400 else ''})")
    return text


class Vms:
    def __init__(self, vmm, guests, workdir):
        self.vmm, self.guests, self.workdir = vmm, guests, workdir
        self.count = 0
        self.running = []

    def path(self, name):
        return os.path.join(self.workdir, name)

    def api_vmm(self):
        self.count += 1
        sock = self.path(f"api{self.count}.sock")
        vm = Running([self.vmm, "--api-sock", sock])
        self.running.append(vm)
        if not wait_for_socket(sock, 30):
            vm.proc.kill()
            raise Failure("the API socket did not appear\n" + vm.text)
        return vm, sock

    def boot_counters(self, track_dirty_pages=False):
        vm, sock = self.api_vmm()
        kernel = os.path.join(self.guests, "pause_counters-pvh.elf")
        expect_api(sock, "PUT", "/boot-source",
                   # A vCPU lost by a restore stays stuck; one that waits
                   # a few hundred ms for pages on a loaded host (the Uffd
                   # handler is another process) must not fail the test.
                   {"kernel_image_path": kernel, "boot_args": "cpus=2 ticks=40 stall_ticks=10"},
                   204, "kernel")
        expect_api(sock, "PUT", "/machine-config",
                   {"vcpu_count": 2, "mem_size_mib": 64, "track_dirty_pages": track_dirty_pages},
                   204, "machine config")
        expect_api(sock, "PUT", "/actions", {"action_type": "InstanceStart"}, 204, "started")
        return vm, sock

    def snapshot(self, vm, sock, at_tick, name, kind="Full"):
        if not vm.wait_for(rf"pause_counters: tick {at_tick} ", 120):
            raise Failure(f"no tick {at_tick}\n" + vm.text[-3000:])
        state, memory = self.path(f"{name}.state"), self.path(f"{name}.mem")
        expect_api(sock, "PATCH", "/vm", {"state": "Paused"}, 204, "paused")
        expect_api(sock, "PUT", "/snapshot/create",
                   {"snapshot_type": kind, "snapshot_path": state, "mem_file_path": memory},
                   204, f"{kind} snapshot {name} created")
        return state, memory

    def load(self, sock, state, memory, status=204, contains=None, what="snapshot loaded",
             backend="File"):
        return expect_api(sock, "PUT", "/snapshot/load",
                          {"snapshot_path": state, "resume_vm": True,
                           "mem_backend": {"backend_type": backend, "backend_path": memory}},
                          status, what, contains)

    def finish_passing(self, vm, what):
        status = vm.finish(timeout=120)
        if status != 0 or "pause_counters: PASS" not in vm.text:
            raise Failure(f"{what}: exit {status}, no PASS\n" + vm.text[-3000:])
        print(f"ok: {what}: pause_counters: PASS, exit 0")


def case_restore_counters(vms):
    vm, sock = vms.boot_counters()
    if not vm.wait_for(r"pause_counters: tick 2 ", 120):
        raise Failure("pause_counters never got going\n" + vm.text)
    expect_api(sock, "PUT", "/snapshot/create",
               {"snapshot_path": vms.path("x"), "mem_file_path": vms.path("y")}, 400,
               "a snapshot while running is refused", "pause it first")
    state, memory = vms.snapshot(vm, sock, 5, "first")
    vm.proc.kill()
    vm.finish()

    second, sock2 = vms.api_vmm()
    vms.load(sock2, state, memory)
    expect_api(sock2, "PUT", "/snapshot/load",
               {"snapshot_path": state, "mem_backend": {"backend_type": "File",
                                                        "backend_path": memory}},
               400, "a second load is refused", "after starting the microVM")
    mark = len(second.text)
    if not second.wait_for(r"pause_counters: tick (\d+) ", 60, mark):
        raise Failure("the restored guest does not tick\n" + second.text)
    if not second.wait_for(r"pause_counters: tick 12 ", 120):
        raise Failure("no tick 12 after the restore\n" + second.text[-3000:])
    expect_api(sock2, "PATCH", "/vm", {"state": "Paused"}, 204, "paused")
    expect_api(sock2, "PUT", "/snapshot/create",
               {"snapshot_path": vms.path("again.state"), "mem_file_path": memory}, 400,
               "a snapshot over the memory file the VM was restored from is refused",
               "restored from")
    expect_api(sock2, "PATCH", "/vm", {"state": "Resumed"}, 204, "resumed")
    state2, memory2 = vms.snapshot(second, sock2, 15, "second")
    second.proc.kill()
    second.finish()

    third, sock3 = vms.api_vmm()
    vms.load(sock3, state2, memory2, what="the snapshot of a restored VM loaded")
    vms.finish_passing(third, "restored twice")
    ticks = [int(t) for t in re.findall(r"pause_counters: tick (\d+) ", third.text)]
    if not ticks or ticks[0] < 15:
        raise Failure(f"the third VMM's ticks start at {ticks[:1]}, not after 15")
    print(f"ok: the third VMM went on from tick {ticks[0]} to {ticks[-1]}")


def rewrite(source, target, change):
    data = bytearray(open(source, "rb").read())
    change(data)
    with open(target, "wb") as f:
        f.write(data)


def fix_crc(data):
    data[-8:] = struct.pack("<Q", crc64(bytes(data[:-8])))


def case_bad_snapshots(vms):
    vm, sock = vms.boot_counters()
    state, memory = vms.snapshot(vm, sock, 3, "good")
    vm.proc.kill()
    vm.finish()
    p = vms.path
    rewrite(state, p("corrupt"), lambda d: d.__setitem__(HEADER + 100, d[HEADER + 100] ^ 0x40))
    rewrite(state, p("truncated"), lambda d: d.__delitem__(slice(len(d) // 2, None)))

    def version(d):
        d[8:12] = struct.pack("<I", 99)
        fix_crc(d)

    def arch(d):
        d[12:16] = struct.pack("<I", 2)
        fix_crc(d)

    rewrite(state, p("version"), version)
    rewrite(state, p("arch"), arch)
    rewrite(memory, p("short.mem"), lambda d: d.__delitem__(slice(len(d) // 2, None)))
    os.mkdir(p("a-directory"))
    cases = [
        ("corrupt", memory, "is corrupt: CRC"),
        ("truncated", memory, "truncated or corrupt"),
        ("version", memory, "format version 99"),
        ("arch", memory, "taken on aarch64"),
        ("missing", memory, "missing"),
        ("a-directory", memory, "directory"),
        (None, p("short.mem"), "shorter than the snapshot's guest memory"),
    ]
    # The version this VMM writes, from the good file's header.
    current = struct.unpack("<I", open(state, "rb").read()[8:12])[0]
    restorer, sock2 = vms.api_vmm()
    for name, mem, message in cases:
        path = p(name) if name else state
        vms.load(sock2, path, mem, 400, message, f"load refused: {name or 'short memory file'}")
        if not name:
            continue
        run = subprocess.run([vms.vmm, "--describe-snapshot", path], capture_output=True,
                             text=True, timeout=30)
        # Describing is for telling versions apart: it reads any intact file.
        described = {"version": "v99 (x86_64", "arch": f"v{current} (aarch64"}.get(name)
        if described:
            if run.returncode != 0 or described not in run.stdout:
                raise Failure(f"--describe-snapshot {name}: {run.returncode} {run.stdout!r}")
        elif run.returncode == 0 or len(run.stderr.strip().splitlines()) != 1 or run.stdout:
            raise Failure(f"--describe-snapshot {name}: status {run.returncode}, stdout "
                          f"{run.stdout!r}, stderr {run.stderr!r}")
    print("ok: --describe-snapshot names the version and architecture of intact files and "
          "refuses the others with one line and a non-zero status")
    run = subprocess.run([vms.vmm, "--describe-snapshot", state], capture_output=True, text=True,
                         timeout=30)
    if run.returncode != 0 or f"v{current} (x86_64" not in run.stdout:
        raise Failure(f"--describe-snapshot of a good file: {run.returncode} {run.stdout!r} "
                      f"{run.stderr!r}")
    print(f"ok: --describe-snapshot: {run.stdout.strip()}")
    vms.load(sock2, state, memory, what="the same VMM then loads the good snapshot")
    vms.finish_passing(restorer, "restored after seven refused loads")


def allocated(path):
    return os.stat(path).st_blocks * 512


def case_diff(vms):
    vm, sock = vms.boot_counters(track_dirty_pages=True)
    full_state, full_memory = vms.snapshot(vm, sock, 3, "full")
    expect_api(sock, "PATCH", "/vm", {"state": "Resumed"}, 204, "resumed")
    diff_state, diff_memory = vms.snapshot(vm, sock, 8, "diff", kind="Diff")
    vm.proc.kill()
    vm.finish()
    full, diff = allocated(full_memory), allocated(diff_memory)
    if os.path.getsize(diff_memory) != os.path.getsize(full_memory):
        raise Failure("the Diff memory file is not as large as guest memory")
    if not 0 < diff < full // 4:
        raise Failure(f"the Diff memory file holds {diff} bytes, the Full one {full}: "
                      "not only the dirtied pages")
    print(f"ok: the Diff memory file holds {diff >> 10} KiB, the Full one {full >> 10} KiB")
    rebase = os.path.join(os.path.dirname(vms.vmm), "rebase-snap")
    run = subprocess.run([rebase, "--base-file", full_memory, "--diff-file", diff_memory],
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        raise Failure(f"rebase-snap failed: {run.stdout}{run.stderr}")
    print(f"ok: {run.stdout.strip()}")
    restorer, sock2 = vms.api_vmm()
    vms.load(sock2, diff_state, full_memory, what="the Diff state with the merged memory loaded")
    vms.finish_passing(restorer, "restored from Full + Diff")
    ticks = [int(t) for t in re.findall(r"pause_counters: tick (\d+) ", restorer.text)]
    if not ticks or ticks[0] < 8:
        raise Failure(f"the restored ticks start at {ticks[:1]}, not after 8")
    print(f"ok: the restored guest went on from tick {ticks[0]}")


def case_uffd(vms):
    vm, sock = vms.boot_counters()
    state, memory = vms.snapshot(vm, sock, 3, "uffd")
    vm.proc.kill()
    vm.finish()
    restorer, sock2 = vms.api_vmm()
    handler_sock = vms.path("handler.sock")
    vms.load(sock2, state, handler_sock, 400, "cannot connect to the Uffd page-fault handler",
             "a load with no Uffd handler is refused", backend="Uffd")
    handler = subprocess.Popen([os.path.join(os.path.dirname(vms.vmm), "uffd-handler"),
                                "--socket", handler_sock, "--mem-file", memory],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if not wait_for_socket(handler_sock, 30):
            raise Failure("uffd-handler did not listen")
        vms.load(sock2, state, handler_sock, what="loaded with the Uffd backend", backend="Uffd")
        vms.finish_passing(restorer, "restored with pages served by uffd-handler")
        out, _ = handler.communicate(timeout=30)
    finally:
        if handler.poll() is None:
            handler.kill()
            handler.wait()
    served = re.search(r"served (\d+) pages", out)
    if handler.returncode != 0 or not served or int(served.group(1)) == 0:
        raise Failure(f"uffd-handler: status {handler.returncode}: {out}")
    print(f"ok: uffd-handler served {served.group(1)} pages and exited with the VMM")


def case_create_errors(vms):
    vm, sock = vms.boot_counters()
    if not vm.wait_for(r"pause_counters: tick 3 ", 120):
        raise Failure("pause_counters never got going\n" + vm.text)
    expect_api(sock, "PATCH", "/vm", {"state": "Paused"}, 204, "paused")
    expect_api(sock, "PUT", "/snapshot/create",
               {"snapshot_path": vms.path("no/such/dir/s"), "mem_file_path": vms.path("m")},
               400, "a snapshot into a missing directory is refused", "no/such/dir")
    expect_api(sock, "PUT", "/snapshot/create",
               {"snapshot_type": "Diff", "snapshot_path": vms.path("s"),
                "mem_file_path": vms.path("m")},
               400, "a Diff snapshot without dirty page tracking is refused", "track_dirty_pages")
    expect_api(sock, "PATCH", "/vm", {"state": "Resumed"}, 204, "resumed")
    vms.finish_passing(vm, "the VM after refused snapshots")


CASES = {"restore-counters": case_restore_counters, "bad-snapshots": case_bad_snapshots,
         "diff": case_diff, "uffd": case_uffd, "create-errors": case_create_errors}


def main():
    vmm, guests, case = sys.argv[1:4]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIPPED: /dev/kvm is missing ***")
        return 1 if os.environ.get("VMM_REQUIRE_KVM") == "1" else SKIP
    workdir = tempfile.mkdtemp(prefix="vmm-snapshot-")
    vms = Vms(vmm, guests, workdir)
    try:
        CASES[case](vms)
    except Failure as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        for vm in vms.running:
            if vm.proc.poll() is None:
                vm.proc.kill()
                vm.proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
