#!/usr/bin/env python3
"""The builder's vCPU step, end to end: the --boot-trace line and its errors.

Usage: vcpu_setup_test.py VMM GUESTS CASE
  trace-N[-tT]  the smp guest with N vCPUs (VMM_VCPU_SETUP_THREADS=T when
                given) comes up and passes; the "vcpu setup" line names N
                vCPUs and the threads used, and its numbers add up: KVM
                calls + own code = thread time, own code per vCPU = own
                code / N; serially the wall time is the thread time.
  emfile-tT     file descriptors run out in the middle of creating 32 vCPUs
                (RLIMIT_NOFILE): one line, "KVM_CREATE_VCPU <id>: Too many
                open files" for a vCPU after the boot CPU, exit status 1,
                nothing left running, whichever setup thread hit it.
Exit 77 (skipped) without a usable /dev/kvm.
"""
import os
import re
import resource
import subprocess
import sys

SKIP = 77
LINE = re.compile(
    r"^boot-trace: vcpu setup: (?P<vcpus>\d+) vCPUs on (?P<threads>\d+) threads? in "
    r"(?P<wall>\d+) us wall: (?P<kvm>\d+) us in KVM calls \+ (?P<own>\d+) us own code = "
    r"(?P<busy>\d+) us thread time; (?P<per_vcpu>[\d.]+) us own code per vCPU$", re.M)


def fail(message, proc=None):
    print(f"FAIL: {message}")
    if proc is not None:
        print(f"--- stdout (tail) ---\n{proc.stdout[-2000:]}\n--- stderr ---\n{proc.stderr[-3000:]}")
    sys.exit(1)


def run(argv, threads=None, nofile=None, timeout=120):
    env = dict(os.environ)
    env.pop("VMM_VCPU_SETUP_THREADS", None)
    if threads is not None:
        env["VMM_VCPU_SETUP_THREADS"] = str(threads)

    def limit():
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    print("$", " ".join(argv), f"(threads {threads}, nofile {nofile})")
    return subprocess.run(argv, env=env, preexec_fn=limit, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def trace_case(vmm, guests, n, threads):
    proc = run([vmm, "--kernel", os.path.join(guests, "smp-pvh.elf"), "--cpus", str(n),
                "--boot-trace", "--cmdline", f"cpus={n} acpi=0"], threads)
    if proc.returncode != 0:
        fail(f"exit status {proc.returncode}", proc)
    for want in (f"smp: {n} cpus online", "smp: PASS"):
        if want not in proc.stdout:
            fail(f"no '{want}' on stdout", proc)
    m = LINE.search(proc.stderr)
    if not m:
        fail("no well-formed 'boot-trace: vcpu setup' line", proc)
    print(m.group(0))
    v = {k: (float(x) if k == "per_vcpu" else int(x)) for k, x in m.groupdict().items()}
    if v["vcpus"] != n:
        fail(f"{v['vcpus']} vCPUs reported, {n} asked for")
    # The boot CPU first and alone; the others shared among the threads.
    want_threads = 1 if threads is None or n - 1 < 2 else min(threads, n - 1)
    if threads is not None and v["threads"] != want_threads:
        fail(f"{v['threads']} threads used, {want_threads} expected")
    if v["kvm"] + v["own"] != v["busy"]:
        fail("KVM calls + own code != thread time")
    if v["kvm"] <= 0 or v["wall"] <= 0:
        fail("no time in KVM calls, or none at all")
    if abs(v["per_vcpu"] - v["own"] / n) > 0.05 + 1.0 / n:
        fail(f"own code per vCPU {v['per_vcpu']} is not {v['own']} us / {n}")
    if v["threads"] == 1 and v["wall"] != v["busy"]:
        fail("serially, the wall time must be the thread time")
    print("PASS")


def emfile_case(vmm, guests, threads):
    argv = [vmm, "--kernel", os.path.join(guests, "smp-pvh.elf"), "--cpus", "32",
            "--cmdline", "cpus=32 acpi=0"]
    error = re.compile(r"^vmm: error: KVM_CREATE_VCPU (\d+): Too many open files$")
    # How many descriptors the VMM holds before its vCPUs depends on the
    # build (event loop, devices): raise the limit until the boot CPU is
    # made, then give it a few more so that a later vCPU runs out.
    for nofile in range(8, 200):
        proc = run(argv, threads, nofile)
        lines = proc.stderr.strip().splitlines()
        m = error.match(lines[0]) if len(lines) == 1 else None
        if m and int(m.group(1)) == 0:
            break
    else:
        fail("no RLIMIT_NOFILE makes the boot CPU's KVM_CREATE_VCPU fail")
    for extra in (3, 11, 20):
        proc = run(argv, threads, nofile + extra)
        lines = proc.stderr.strip().splitlines()
        if proc.returncode != 1:
            fail(f"exit status {proc.returncode}, expected 1", proc)
        m = error.match(lines[0]) if len(lines) == 1 else None
        if not m:
            fail("stderr is not exactly one 'KVM_CREATE_VCPU <id>: Too many open files' line",
                 proc)
        if int(m.group(1)) < 1:
            fail(f"the error names vCPU {m.group(1)}, expected one after the boot CPU", proc)
        print(lines[0])
    print("PASS")


def main():
    vmm, guests, case = sys.argv[1:4]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        if os.environ.get("VMM_REQUIRE_KVM") == "1":
            fail("/dev/kvm is not usable and VMM_REQUIRE_KVM=1")
        print("*** SKIPPED: /dev/kvm is missing or not accessible; this test needs KVM ***")
        return SKIP
    m = re.fullmatch(r"trace-(\d+)(?:-t(\d+))?", case)
    if m:
        trace_case(vmm, guests, int(m.group(1)), int(m.group(2)) if m.group(2) else None)
        return 0
    m = re.fullmatch(r"emfile(?:-t(\d+))?", case)
    if m:
        emfile_case(vmm, guests, int(m.group(1)) if m.group(1) else None)
        return 0
    fail(f"unknown case {case}")


if __name__ == "__main__":
    sys.exit(main())
