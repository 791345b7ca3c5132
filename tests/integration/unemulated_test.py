#!/usr/bin/env python3
"""cmpxchg16b under whichever KVM this test gets, decided at run time.

Usage: unemulated_test.py VMM GUEST_ELF

PVM's instruction emulator lacks cmpxchg16b: there the VMM must report the
emulation failure (instruction bytes, registers, that the host is PVM) and
exit 3. A real KVM runs it natively with the host CPU profile. The choice is
made here rather than when the build is configured, because one build runs
on both (tools/test runs it on a PVM host and again in the nested tier).
"""
import os
import subprocess
import sys

vmm, guest = sys.argv[1], sys.argv[2]
expect = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "expect.py"),
          "--needs-kvm"]
if os.path.exists("/sys/module/kvm_pvm"):
    print("this host's KVM is PVM: the emulation failure must be reported")
    expect += ["--exit", "3",
               "--stderr", "KVM could not emulate an instruction .*instruction bytes: f0 48 0f c7",
               "--stderr", "rip=0x0000000000", "--stderr", "host's KVM is PVM",
               "--", vmm, "--kernel", guest]
else:
    print("a real KVM: cmpxchg16b must run natively")
    expect += ["--exit", "0", "--stdout", "cmpxchg16b ran",
               "--", vmm, "--kernel", guest, "--cpu-profile", "host"]
sys.exit(subprocess.call(expect))
