#!/usr/bin/env python3
"""Firecracker's jailer passes its start times (--start-time-us,
--start-time-cpu-us, --parent-cpu-time-us): the metrics' api_server group
then reports process_startup_time_us and process_startup_time_cpu_us, the
parent's CPU time included.

Usage: startup_time_test.py VMM GUESTS. Exit 77 without a usable /dev/kvm.
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    vmm, guests = sys.argv[1:3]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        if os.environ.get("VMM_REQUIRE_KVM") == "1":
            print("FAIL: /dev/kvm is not usable and VMM_REQUIRE_KVM=1")
            return 1
        print("*** SKIPPED: /dev/kvm is missing or not accessible ***")
        return 77
    with tempfile.TemporaryDirectory(prefix="vmm-startup-") as tmp:
        metrics = os.path.join(tmp, "metrics.json")
        proc = subprocess.run([vmm, "--kernel", os.path.join(guests, "hello.elf"),
                               "--metrics-path", metrics, "--start-time-us", "0",
                               "--start-time-cpu-us", "0", "--parent-cpu-time-us", "1000000"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)
        if proc.returncode != 0:
            print(f"FAIL: exit status {proc.returncode}\n{proc.stderr}")
            return 1
        lines = [json.loads(line) for line in open(metrics) if line.strip()]
        if not lines:
            print(f"FAIL: no metrics line in {metrics}\n{proc.stderr}")
            return 1
        api = lines[-1]["api_server"]
        print(f"api_server: {api}")
        wall = api.get("process_startup_time_us", 0)
        cpu = api.get("process_startup_time_cpu_us", 0)
        if wall <= 0 or cpu < 1000000:
            print(f"FAIL: process_startup_time_us {wall} (expected > 0), "
                  f"process_startup_time_cpu_us {cpu} (expected >= 1000000)")
            return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
