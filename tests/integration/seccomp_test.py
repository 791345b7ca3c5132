#!/usr/bin/env python3
"""Seccomp filters on every thread, end to end.

Usage: seccomp_test.py VMM GUESTS CASE
  installed       a 2-vCPU guest running: every thread of the VMM (main and
                  each vCPU) is in seccomp filter mode with one filter; with
                  --no-seccomp none is.
  api-start       with --api-sock nothing is filtered before InstanceStart;
                  after it every thread is, and the API still answers.
  vcpu-violation  a --seccomp-filter without KVM_RUN for vCPUs: the process
                  dies of SIGSYS and stderr names the thread (vcpu0), its
                  filter, the syscall (ioctl) and the request (0xae80).
  vmm-violation   a --seccomp-filter whose vmm filter lacks epoll_wait and
                  epoll_pwait: the main thread's event loop dies of SIGSYS
                  with one line naming it.
  api-merge       the same vmm filter plus Firecracker's "api" thread kind
                  holding epoll_wait/epoll_pwait: allowed (the main thread
                  serves the API, so it gets the api rules too).
  bad-file        invalid JSON, a missing thread kind, an unknown syscall, a
                  bad action, a FIFO, a directory, a 2 MiB file: each one
                  line naming --seccomp-filter, exit status 1, no hang.
Exit 77 (skipped) without a usable /dev/kvm (bad-file needs none).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


def fail(message, stderr=""):
    print(f"FAIL: {message}")
    if stderr:
        print(f"--- stderr (tail) ---\n{stderr[-3000:]}")
    sys.exit(1)


def default_filters(vmm):
    out = subprocess.run([vmm, "--print-seccomp-filter"], capture_output=True, text=True,
                         timeout=10)
    if out.returncode != 0:
        fail(f"--print-seccomp-filter exit status {out.returncode}", out.stderr)
    filters = json.loads(out.stdout)
    if set(filters) != {"vmm", "vcpu"}:
        fail(f"built-in filters for {sorted(filters)}, expected vmm and vcpu")
    return filters


def without(rules, names, request=None):
    """rules minus the named syscalls (or only their rule for one ioctl request)."""
    kept = []
    for rule in rules:
        if rule["syscall"] in names:
            if request is None:
                continue
            if any(arg.get("val") == request for arg in rule.get("args", [])):
                continue
        kept.append(rule)
    return kept


def write_filter(tmp, filters, name="filter.json"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(filters, f)
    return path


def seccomp_modes(pid):
    """{thread name: (Seccomp mode, filter count)} for every thread of pid."""
    modes = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = {}
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
        except OSError:
            continue
        modes[f"{fields['Name']}/{tid}"] = (int(fields["Seccomp"]),
                                            int(fields.get("Seccomp_filters", "0")))
    return modes


def start_spin(vmm, guests, extra):
    proc = subprocess.Popen([vmm, "--kernel", os.path.join(guests, "spin.elf"), "--cpus", "2"]
                            + extra, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + 60
    os.set_blocking(proc.stdout.fileno(), False)
    while b"spinning" not in seen:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            fail(f"the spin guest did not come up (status {proc.poll()})",
                 proc.stderr.read().decode(errors="replace"))
        try:
            seen += proc.stdout.read() or b""
        except BlockingIOError:
            pass
        time.sleep(0.05)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("the VMM ignored SIGTERM")


def case_installed(vmm, guests, tmp):
    for extra, want in (([], (2, 1)), (["--no-seccomp"], (0, 0))):
        proc = start_spin(vmm, guests, extra)
        time.sleep(0.3)  # the main thread installs its filter right after start
        modes = seccomp_modes(proc.pid)
        stop(proc)
        print(f"{' '.join(extra) or 'default'}: {modes}")
        names = [name.split("/")[0] for name in modes]
        if names.count("vmm") != 1 or not {"vcpu0", "vcpu1"} <= set(names):
            fail(f"expected threads vmm, vcpu0 and vcpu1, found {sorted(names)}")
        wrong = {name: mode for name, mode in modes.items() if mode != want}
        if wrong:
            fail(f"{' '.join(extra) or 'default'}: threads not in seccomp state {want} "
                 f"(mode, filters): {wrong}")


def http(sock_path, method, target, body=None):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sock_path)
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
              f"Content-Type: application/json\r\n\r\n".encode() + data)
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    return int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def case_api_start(vmm, guests, tmp):
    sock = os.path.join(tmp, "api.sock")
    proc = subprocess.Popen([vmm, "--api-sock", sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            if time.monotonic() > deadline or proc.poll() is not None:
                fail("the API socket never appeared")
            time.sleep(0.05)
        before = seccomp_modes(proc.pid)
        if any(mode != (0, 0) for mode in before.values()):
            fail(f"filtered before InstanceStart: {before}")
        for method, target, body in (
                ("PUT", "/boot-source", {"kernel_image_path": os.path.join(guests, "spin.elf")}),
                ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128}),
                ("PUT", "/actions", {"action_type": "InstanceStart"})):
            status = http(sock, method, target, body)
            if status != 204:
                fail(f"{method} {target}: HTTP {status}")
        time.sleep(0.5)
        after = seccomp_modes(proc.pid)
        print(f"before InstanceStart: {before}\nafter: {after}")
        if len(after) < 3 or any(mode != (2, 1) for mode in after.values()):
            fail(f"not every thread filtered after InstanceStart: {after}")
        if http(sock, "GET", "/") != 200:
            fail("GET / after InstanceStart did not answer 200")
    finally:
        if proc.poll() is None:
            stop(proc)


def expect_sigsys(vmm, guests, filter_path, want):
    proc = subprocess.run([vmm, "--kernel", os.path.join(guests, "spin.elf"),
                           "--seccomp-filter", filter_path], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    print(f"exit status {proc.returncode}\n{proc.stderr.strip()}")
    if proc.returncode != -signal.SIGSYS:
        fail(f"exit status {proc.returncode}, expected death by SIGSYS", proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if "seccomp" in line]
    if len(lines) != 1 or not all(w in lines[0] for w in want):
        fail(f"expected one seccomp line with {want}", proc.stderr)


def case_vcpu_violation(vmm, guests, tmp):
    filters = default_filters(vmm)
    filters["vcpu"]["filter"] = without(filters["vcpu"]["filter"], {"ioctl"}, 0xAE80)
    expect_sigsys(vmm, guests, write_filter(tmp, filters),
                  ["thread vcpu0 (vcpu filter)", "called ioctl (syscall 16", "0xae80"])


def case_vmm_violation(vmm, guests, tmp):
    filters = default_filters(vmm)
    filters["vmm"]["filter"] = without(filters["vmm"]["filter"], {"epoll_wait", "epoll_pwait"})
    expect_sigsys(vmm, guests, write_filter(tmp, filters),
                  ["thread vmm (vmm filter)", "called epoll_"])


def case_api_merge(vmm, guests, tmp):
    filters = default_filters(vmm)
    filters["vmm"]["filter"] = without(filters["vmm"]["filter"], {"epoll_wait", "epoll_pwait"})
    filters["api"] = {"default_action": "trap", "filter_action": "allow",
                      "filter": [{"syscall": "epoll_wait"}, {"syscall": "epoll_pwait"}]}
    proc = start_spin(vmm, guests, ["--seccomp-filter", write_filter(tmp, filters)])
    time.sleep(0.5)
    if proc.poll() is not None:
        fail(f"the VMM died ({proc.returncode}) although the api rules allow epoll_wait",
             proc.stderr.read().decode(errors="replace"))
    stop(proc)


def case_bad_file(vmm, guests, tmp):
    filters = default_filters(vmm)
    no_vcpu = {"vmm": filters["vmm"]}
    unknown = json.loads(json.dumps(filters))
    unknown["vcpu"]["filter"].append({"syscall": "no_such_syscall"})
    bad_action = json.loads(json.dumps(filters))
    bad_action["vcpu"]["default_action"] = "explode"
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    big = os.path.join(tmp, "big.json")
    with open(big, "w") as f:
        f.write(" " * (2 << 20) + "{}")
    garbage = os.path.join(tmp, "garbage.json")
    with open(garbage, "w") as f:
        f.write("{ not json")
    cases = [
        (garbage, "not valid JSON"),
        (write_filter(tmp, no_vcpu, "no_vcpu.json"), 'no "vcpu" filter'),
        (write_filter(tmp, unknown, "unknown.json"), 'unknown syscall "no_such_syscall"'),
        (write_filter(tmp, bad_action, "action.json"), "vcpu.default_action"),
        (fifo, "not a regular file"),
        (tmp, "not a regular file"),
        (big, "larger than"),
        (os.path.join(tmp, "missing.json"), "No such file"),
    ]
    for path, want in cases:
        proc = subprocess.run([vmm, "--kernel", os.path.join(guests, "hello.elf"),
                               "--seccomp-filter", path], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=20)
        lines = proc.stderr.strip().splitlines()
        print(f"{os.path.basename(path)}: exit {proc.returncode}: {proc.stderr.strip()}")
        if proc.returncode != 1 or len(lines) != 1 or "--seccomp-filter" not in lines[0] \
                or want not in lines[0]:
            fail(f"{path}: expected exit 1 and one line with '--seccomp-filter' and '{want}'",
                 proc.stderr)


CASES = {
    "installed": case_installed,
    "api-start": case_api_start,
    "vcpu-violation": case_vcpu_violation,
    "vmm-violation": case_vmm_violation,
    "api-merge": case_api_merge,
    "bad-file": case_bad_file,
}


def main():
    vmm, guests, case = sys.argv[1:4]
    if case != "bad-file" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        if os.environ.get("VMM_REQUIRE_KVM") == "1":
            fail("/dev/kvm is not usable and VMM_REQUIRE_KVM=1")
        print("*** SKIPPED: /dev/kvm is missing or not accessible; this test needs KVM ***")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="vmm-seccomp-") as tmp:
        CASES[case](vmm, guests, tmp)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
