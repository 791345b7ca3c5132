#!/usr/bin/env python3
"""Snapshot restore latency on this host's KVM, with a test guest.

    restore_latency.py VMM GUEST_DIR [RUNS] [MEM_MIB...]

For each memory size (default 128 and 1024 MiB): boots the pause_counters
test guest through the API, pauses it, takes a Full snapshot, then RUNS
times (default 10) starts a new VMM and times PUT /snapshot/load (File
backend, resume_vm) from request to its 204, which comes once the vCPUs run;
each restored guest must then tick. Prints the median, minimum and maximum
per size. No peer: QEMU cannot load our snapshot, and the Linux-guest
comparison with QEMU is tools/bench's "snapshot" metric (nested tier). On a
PVM host guest code is emulated, but the restore path measured here is the
VMM's and the host kernel's, so the figure is a real one.
"""
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import snapshot_test as st  # noqa: E402
from api_client import call  # noqa: E402


def main():
    vmm, guests = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    sizes = [int(m) for m in sys.argv[4:]] or [128, 1024]
    kernel = os.path.join(guests, "pause_counters-pvh.elf")
    for mem in sizes:
        with tempfile.TemporaryDirectory(prefix="vmm-restore-") as workdir:
            vms = st.Vms(vmm, guests, workdir)
            vm, sock = vms.api_vmm()
            st.expect_api(sock, "PUT", "/boot-source",
                          {"kernel_image_path": kernel, "boot_args": "cpus=1 ticks=400"}, 204,
                          "boot source")
            st.expect_api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mem},
                          204, "machine config")
            st.expect_api(sock, "PUT", "/actions", {"action_type": "InstanceStart"}, 204,
                          "started")
            state, memory = vms.snapshot(vm, sock, 3, "s")
            vm.proc.kill()
            vm.finish()
            times = []
            for _ in range(runs):
                restored, sock2 = vms.api_vmm()
                start = time.monotonic()
                status, text = call(sock2, "PUT", "/snapshot/load",
                                    {"snapshot_path": state, "resume_vm": True,
                                     "mem_backend": {"backend_type": "File",
                                                     "backend_path": memory}})
                times.append((time.monotonic() - start) * 1000)
                ticked = restored.wait_for(r"pause_counters: tick", 60)
                restored.proc.kill()
                restored.finish()
                if status != 204 or not ticked:
                    print(f"restore failed: {status} {text}\n{restored.text[-500:]}")
                    return 1
            print(f"{mem} MiB: PUT /snapshot/load -> running: median {statistics.median(times):.2f}"
                  f" ms, min {min(times):.2f}, max {max(times):.2f} ({runs} runs)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
