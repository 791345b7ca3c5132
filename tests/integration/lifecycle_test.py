#!/usr/bin/env python3
"""Pause/resume and stopping, seen from outside the VMM.

    lifecycle_test.py VMM GUEST_DIR CASE
  pause-resume   the spin guest on 2 vCPUs: five pause/resume cycles
                 (SIGUSR1/SIGUSR2; each pause saves and each resume writes back
                 every vCPU's state); the guest keeps running, and the VMM's
                 thread and fd counts are the same after the cycles as before
                 (nothing leaks); then SIGTERM while paused exits within 1 s
                 with status 143.
  pause-during-startup  smp on 8 vCPUs, paused and resumed every 50 ms while
                 the boot CPU sends INIT/SIPI: every AP still comes up.
  counters       pause_counters on 2 vCPUs, paused and resumed (state written
                 back) ten times while the CPUs count: no increment lost, no
                 register corrupted (the guest checks), exit 0.
  exit-at-once   exit_now on 32 vCPUs, 20 times: the boot CPU's exit kicks
                 vCPUs whose threads are still being started; every run must
                 end with the guest's status 0 (a kick once signalled thread
                 handle 0: SIGSEGV in 19 runs of 20).
"""
import os
import re
import selectors
import signal
import subprocess
import sys
import time

SKIP = 77


def fail(message, output=""):
    print("FAIL: " + message)
    if output:
        print("--- output (last 40 lines) ---")
        print("\n".join(output.splitlines()[-40:]))
    return 1


class Running:
    """The VMM with stdout and stderr read line by line as they come."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.sel.register(self.proc.stderr, selectors.EVENT_READ)
        self.text = ""

    def read_available(self, timeout):
        """Appends what the pipes hold now. Never waits for a whole line: a
        paused guest can leave its serial output in the middle of one."""
        got = False
        for key, _ in self.sel.select(timeout=timeout):
            chunk = os.read(key.fileobj.fileno(), 65536)
            if chunk:
                self.text += chunk.decode(errors="replace")
                got = True
            else:
                self.sel.unregister(key.fileobj)
        return got

    def wait_for(self, pattern, timeout=30, start=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.text[start:], re.M):
                return True
            if not self.sel.get_map():
                break
            self.read_available(0.1)
        return bool(re.search(pattern, self.text[start:], re.M))

    def counts(self):
        pid = self.proc.pid
        return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))

    def finish(self, timeout=30):
        """Reads until both pipes close (a full pipe would stall the VMM),
        then reaps; kills the VMM after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.sel.get_map() and time.monotonic() < deadline:
            self.read_available(0.1)
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode


def pause_cycle(vm, cycles):
    for i in range(cycles):
        mark = len(vm.text)
        vm.proc.send_signal(signal.SIGUSR1)
        if not vm.wait_for(r"vmm: paused: 2 vCPU\(s\) out of KVM_RUN", 10, mark):
            return f"pause {i + 1}: no 'paused' line"
        mark = len(vm.text)
        vm.proc.send_signal(signal.SIGUSR2)
        if not vm.wait_for(r"vmm: resumed", 10, mark):
            return f"resume {i + 1}: no 'resumed' line"
    return None


def case_pause_resume(vmm, guests):
    vm = Running([vmm, "--kernel", os.path.join(guests, "spin-pvh.elf"), "--cpus", "2"])
    if not vm.wait_for(r"spinning"):
        vm.proc.kill()
        return fail("the spin guest never started", vm.text)
    before = vm.counts()
    error = pause_cycle(vm, 5)
    if error:
        vm.proc.kill()
        return fail(error, vm.text)
    after = vm.counts()
    print(f"ok: 5 pause/resume cycles; threads, fds before {before}, after {after}")
    if before != after:
        vm.proc.kill()
        return fail(f"threads/fds changed across pause/resume: {before} -> {after}", vm.text)
    mark = len(vm.text)
    vm.proc.send_signal(signal.SIGUSR1)
    if not vm.wait_for(r"vmm: paused", 10, mark):
        vm.proc.kill()
        return fail("no pause before SIGTERM", vm.text)
    start = time.monotonic()
    vm.proc.send_signal(signal.SIGTERM)
    status = vm.finish(timeout=5)
    took = time.monotonic() - start
    if status != 143 or took > 1.0:
        return fail(f"SIGTERM while paused: status {status} after {took:.2f} s "
                    "(expected 143 within 1 s)", vm.text)
    print(f"ok: SIGTERM while paused: status 143 after {took * 1000:.0f} ms")
    return 0


def case_counters(vmm, guests):
    vm = Running([vmm, "--kernel", os.path.join(guests, "pause_counters-pvh.elf"), "--cpus", "2",
                  "--cmdline", "cpus=2 ticks=40"])
    if not vm.wait_for(r"pause_counters: tick 3 ", 60):
        vm.proc.kill()
        return fail("pause_counters never got going", vm.text)
    error = pause_cycle(vm, 10)
    if error:
        vm.proc.kill()
        return fail(error, vm.text)
    status = vm.finish(timeout=90)
    if status != 0 or "pause_counters: PASS" not in vm.text:
        return fail(f"pause_counters did not pass (exit {status})", vm.text)
    print("ok: 10 pause/resume cycles; pause_counters: PASS")
    return 0


def case_pause_during_startup(vmm, guests):
    """Pauses every 50 ms while the boot CPU starts 8 APs: no INIT/SIPI is lost."""
    vm = Running([vmm, "--kernel", os.path.join(guests, "smp-pvh.elf"), "--cpus", "8",
                  "--cmdline", "cpus=8 acpi=0"])
    if not vm.wait_for(r"smp: expecting 8 cpus", 30):
        vm.proc.kill()
        return fail("the smp guest never started", vm.text)
    pauses = 0
    while vm.proc.poll() is None and "cpus online" not in vm.text and pauses < 200:
        vm.proc.send_signal(signal.SIGUSR1)
        vm.wait_for(r"$^", 0.025)
        vm.proc.send_signal(signal.SIGUSR2)
        vm.wait_for(r"$^", 0.025)
        pauses += 1
    status = vm.finish(timeout=60)
    if status != 0 or "smp: 8 cpus online" not in vm.text or "smp: PASS" not in vm.text:
        return fail(f"smp with pauses during AP start-up failed (exit {status})", vm.text)
    print(f"ok: 8 CPUs came online across {pauses} pause/resume cycles during start-up")
    return 0


def case_exit_at_once(vmm, guests):
    kernel = os.path.join(guests, "exit_now-pvh.elf")
    for run in range(1, 21):
        vm = Running([vmm, "--kernel", kernel, "--cpus", "32"])
        status = vm.finish(timeout=60)
        if status != 0:
            return fail(f"run {run}: status {status} (expected the guest's 0; negative: killed "
                        "by that signal)", vm.text)
    print("ok: 20 runs of a guest that exits at once on 32 vCPUs, each with status 0")
    return 0


def main():
    vmm, guests, case = sys.argv[1:4]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIPPED: /dev/kvm is missing ***")
        return 1 if os.environ.get("VMM_REQUIRE_KVM") == "1" else SKIP
    if case == "pause-resume":
        return case_pause_resume(vmm, guests)
    if case == "counters":
        return case_counters(vmm, guests)
    if case == "pause-during-startup":
        return case_pause_during_startup(vmm, guests)
    if case == "exit-at-once":
        return case_exit_at_once(vmm, guests)
    print(f"unknown case {case}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
