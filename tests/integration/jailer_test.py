#!/usr/bin/python3
"""The jailer, running the real vmm with our test guests.

    jailer_test.py JAILER VMM GUEST_DIR CASE
  confined      --api-sock in the jail: the vmm runs as the given uid/gid
                with every capability set empty and no_new_privs, its root is
                the chroot (a copy of vmm, the device nodes, nothing of the
                host's), it has the rlimits, GET / names the jailer's --id; a
                drive on /etc/shadow is refused (not in the jail), one placed
                in the jail is taken; the spin guest boots; SIGTERM ends it.
  cgroups       --cgroup with --cgroup-version 1 (when a v1 pids hierarchy is
                mounted) and 2: the vmm is in <hierarchy>/<parent>/<id> with
                the values written; the folders are removed afterwards.
  config-file   -- --config-file: the hello guest boots from a file in the
                jail, the vmm's exit status is the jailer's.
  daemonize     started as a shell starts a job (a process group leader):
                the jailer returns 0 at once; the vmm (pid file) runs on in a
                session of its own with /dev/null for stdin/out/err.
  daemonize-in-place  started as Kata does (not a group leader; --daemonize
                --netns, -- --config-file --api-sock): the jailer becomes the
                vmm (same pid), detached the same way, in the namespace, and
                the config file in the jail boots the spin guest.
  new-pid-ns    the vmm is pid 1 of a new PID namespace, its host pid in
                <chroot>/vmm.pid; the jailer waits, forwards SIGTERM, and
                ends with the vmm's status (143; 0 for the hello guest).
  netns         --netns: the vmm is in that network namespace and, as the
                unprivileged uid, attaches a tap there through the jail's
                /dev/net/tun.
Needs root and KVM. Every jail, cgroup and namespace is removed on the way
out.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_client import Api, run_case, wait_for_output, wait_for_socket  # noqa: E402
from netns import NetNamespace  # noqa: E402

SKIP = 77
UID = 41234
GID = 41235
EMPTY_CAPS = "0000000000000000"


class Failure(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)
    print("ok: " + message.split(": ")[0])


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def proc_limits(pid):
    with open(f"/proc/{pid}/limits") as f:
        return f.read()


def session_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        # After the command's ")": state ppid pgrp session ...
        return int(f.read().rsplit(")", 1)[1].split()[3])


def wait_gone(pid, timeout=20):
    """Whether pid is gone (or a zombie) within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if proc_status(pid).get("State", "").startswith("Z"):
                return True
        except (FileNotFoundError, ProcessLookupError):
            # Gone before the open, or between the open and the read (ESRCH).
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def wait_for_file(path, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


class Jail:
    """One jailer run's paths: <base>/vmm/<id>/root, and the files an
    orchestrator places there before starting the jailer."""

    def __init__(self, jailer, vmm, guests, tmp, name):
        self.jailer = jailer
        self.vmm = vmm
        self.guests = guests
        self.base = os.path.join(tmp, "jails")
        os.makedirs(self.base, exist_ok=True)
        self.id = f"jt-{name}-{os.getpid()}"
        self.root = os.path.join(self.base, os.path.basename(vmm), self.id, "root")
        self.sock = os.path.join(self.root, "run", "api.sock")
        self.out_path = os.path.join(tmp, f"{name}.out")
        self.proc = None

    def place(self, source, name, mode=0o644):
        """Copies a file into the jail (hard links would share the owner)."""
        os.makedirs(self.root, exist_ok=True)
        target = os.path.join(self.root, name)
        shutil.copyfile(source, target)
        os.chmod(target, mode)
        return "/" + name

    def place_guest(self, image):
        return self.place(os.path.join(self.guests, image), image)

    def command(self, jailer_args=(), vmm_args=()):
        return [self.jailer, "--id", self.id, "--exec-file", self.vmm, "--uid", str(UID),
                "--gid", str(GID), "--chroot-base-dir", self.base, *jailer_args, "--",
                *vmm_args]

    def start(self, jailer_args=(), vmm_args=(), **popen):
        command = self.command(jailer_args, vmm_args)
        print("running: " + " ".join(command), flush=True)
        self.out = open(self.out_path, "w+")
        popen.setdefault("stdout", self.out)
        popen.setdefault("stderr", subprocess.STDOUT)
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, **popen)
        return self.proc

    def output(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def wait_output(self, text, timeout=30):
        return wait_for_output(self.output, self.proc, text, timeout)

    def api(self, schemas):
        if not wait_for_socket(self.sock, timeout=20):
            raise Failure("the API socket never appeared in the jail: " + self.output())
        return Api(self.sock, schemas)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def check_confined(pid, jail):
    status = proc_status(pid)
    check(status["Uid"].split() == [str(UID)] * 4, f"runs as uid {UID}: Uid {status['Uid']}")
    check(status["Gid"].split() == [str(GID)] * 4, f"runs as gid {GID}: Gid {status['Gid']}")
    check(status.get("Groups", "").strip() == "", "no supplementary groups")
    for cap_set in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        check(status[cap_set] == EMPTY_CAPS, f"{cap_set} is empty: {status[cap_set]}")
    check(status["NoNewPrivs"].strip() == "1", "no_new_privs is set")
    root = os.stat(f"/proc/{pid}/root")
    chroot = os.stat(jail.root)
    check((root.st_dev, root.st_ino) == (chroot.st_dev, chroot.st_ino),
          f"its root is the chroot {jail.root}")
    check(not os.path.exists(f"/proc/{pid}/root/etc"), "no host file in its root: no /etc")
    exe = os.path.join(jail.root, "vmm")
    check(os.stat(exe).st_ino != os.stat(jail.vmm).st_ino,
          "vmm in the jail is a copy, not a hard link")
    for node in ("dev/kvm", "dev/net/tun"):
        st = os.stat(os.path.join(jail.root, node))
        host = os.stat("/" + node)
        check(st.st_rdev == host.st_rdev and st.st_uid == UID and st.st_gid == GID and
              (st.st_mode & 0o777) == 0o600,
              f"/{node} in the jail: the host's device, {UID}:{GID}, mode 0600")
    run_dir = os.stat(os.path.join(jail.root, "run"))
    check(run_dir.st_uid == UID and (run_dir.st_mode & 0o777) == 0o700,
          "/run in the jail belongs to the uid, mode 0700")


def case_confined(jailer, vmm, guests, tmp, schemas):
    jail = Jail(jailer, vmm, guests, tmp, "confined")
    kernel = jail.place_guest("spin.elf")
    data = os.path.join(jail.root, "data.img")
    with open(data, "wb") as f:
        f.truncate(1 << 20)
    os.chown(data, UID, GID)
    proc = jail.start(["--resource-limit", "no-file=1024", "--resource-limit",
                       "fsize=104857600"], ["--api-sock", "/run/api.sock"])
    try:
        api = jail.api(schemas)
        info = api.ok("GET", "/", schema="InstanceInfo")
        check(info["id"] == jail.id, f"GET / names the jailer's --id: {info['id']}")
        message = api.fails("PUT", "/drives/shadow",
                            {"drive_id": "shadow", "path_on_host": "/etc/shadow",
                             "is_root_device": False, "is_read_only": True},
                            "no such file")
        check(True, f"a drive on /etc/shadow is refused: {message}")
        api.ok("PUT", "/drives/data", {"drive_id": "data", "path_on_host": "/data.img",
                                      "is_root_device": False, "is_read_only": False})
        check(True, "a drive placed in the jail is taken")
        api.ok("PUT", "/boot-source", {"kernel_image_path": kernel})
        api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        check(jail.wait_output("spinning"), "the spin guest runs: " + jail.output())
        # No fork: the jailer became the vmm.
        check_confined(proc.pid, jail)
        limits = proc_limits(proc.pid)
        check(re.search(r"^Max open files +1024 +1024 ", limits, re.M),
              "RLIMIT_NOFILE is 1024 (soft and hard)")
        check(re.search(r"^Max file size +104857600 +104857600 ", limits, re.M),
              "RLIMIT_FSIZE is 104857600 (soft and hard)")
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=20) == 143, f"SIGTERM ends it with 143: {proc.returncode}")
    finally:
        jail.stop()


def mounted(fs_type):
    with open("/proc/mounts") as f:
        return [line.split() for line in f if line.split()[2] == fs_type]


class Cgroup2Mount:
    """The host's cgroup2 hierarchy, or one mounted in a temporary folder
    where none is (the nested tier's L1 mounts no cgroups)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.own = None

    def __enter__(self):
        mounts = mounted("cgroup2")
        if mounts:
            return mounts[0][1]
        self.own = os.path.join(self.tmp, "cgroup2")
        os.makedirs(self.own)
        subprocess.run(["mount", "-t", "cgroup2", "none", self.own], check=True)
        return self.own

    def __exit__(self, *exc):
        if self.own:
            subprocess.run(["umount", self.own], check=False)
        return False


def remove_cgroup(folders):
    """Removes the vmm's cgroup and its parent once the vmm is gone."""
    for folder in folders:
        for _ in range(100):
            try:
                os.rmdir(folder)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
        if os.path.isdir(folder):
            print(f"warning: could not remove {folder}")


def run_in_cgroup(jail, version, hierarchy, settings, expect_line):
    parent = f"vmm-jailer-test-{os.getpid()}"
    args = ["--cgroup-version", str(version), "--parent-cgroup", parent]
    for name, value in settings:
        args += ["--cgroup", f"{name}={value}"]
    kernel = jail.place_guest("spin.elf")
    folder = os.path.join(hierarchy, parent, jail.id)
    proc = jail.start(args, ["--kernel", kernel])
    try:
        check(jail.wait_output("spinning"), "the spin guest runs: " + jail.output())
        with open(os.path.join(folder, "cgroup.procs")) as f:
            check(str(proc.pid) in f.read().split(),
                  f"cgroup v{version}: the vmm is in {folder}")
        with open(f"/proc/{proc.pid}/cgroup") as f:
            lines = f.read().splitlines()
        check(any(line.endswith(expect_line) for line in lines),
              f"/proc/PID/cgroup names it: {expect_line} in {lines}")
        for name, value in settings:
            with open(os.path.join(folder, name)) as f:
                check(f.read().strip() == value, f"{name} is {value}")
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=20) == 143, f"SIGTERM ends it: {proc.returncode}")
    finally:
        jail.stop()
        remove_cgroup([folder, os.path.join(hierarchy, parent)])


def case_cgroups(jailer, vmm, guests, tmp, schemas):
    parent = f"vmm-jailer-test-{os.getpid()}"
    v1_pids = [m for m in mounted("cgroup") if "pids" in m[3].split(",")]
    if v1_pids:
        jail = Jail(jailer, vmm, guests, tmp, "cgroup1")
        run_in_cgroup(jail, 1, v1_pids[0][1], [("pids.max", "64")],
                      f":pids:/{parent}/{jail.id}")
    else:
        print("note: no cgroup v1 pids hierarchy here: only cgroup v2 is checked")
    with Cgroup2Mount(tmp) as hierarchy:
        with open(os.path.join(hierarchy, "cgroup.controllers")) as f:
            controllers = f.read().split()
        # pids through a controller where v2 has it (the jailer enables it
        # on the way down); else a core file every cgroup has.
        setting = ("pids.max", "32") if "pids" in controllers else \
            ("cgroup.max.descendants", "0")
        jail = Jail(jailer, vmm, guests, tmp, "cgroup2")
        run_in_cgroup(jail, 2, hierarchy, [setting], f"0::/{parent}/{jail.id}")


def case_config_file(jailer, vmm, guests, tmp, schemas):
    jail = Jail(jailer, vmm, guests, tmp, "config")
    kernel = jail.place_guest("hello.elf")
    with open(os.path.join(jail.root, "vm.json"), "w") as f:
        json.dump({"boot-source": {"kernel_image_path": kernel},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}, f)
    proc = jail.start(vmm_args=["--config-file", "/vm.json", "--no-api"])
    try:
        check(proc.wait(timeout=60) == 0, f"the jailer ends with the vmm's 0: {proc.returncode}")
        check("Hello from test guest" in jail.output(),
              "the hello guest booted from the jail's files: " + jail.output())
    finally:
        jail.stop()


def check_detached(pid):
    check(session_of(pid) == pid, "the vmm leads a session of its own")
    for fd in (0, 1, 2):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        check(target == "/dev/null", f"its fd {fd} is /dev/null: {target}")


def wait_running(api, timeout=20):
    """GET / until the state is Running; returns that answer."""
    deadline = time.monotonic() + timeout
    while True:
        info = api.ok("GET", "/", schema="InstanceInfo")
        if info["state"] == "Running":
            return info
        if time.monotonic() > deadline:
            raise Failure(f"the VM never ran: {info}")
        time.sleep(0.05)


def boot_spin_through_api(jail, schemas, kernel):
    api = jail.api(schemas)
    api.ok("PUT", "/boot-source", {"kernel_image_path": kernel})
    api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    wait_running(api)
    check(True, "the VM runs, driven through the jail's API socket")


def case_daemonize(jailer, vmm, guests, tmp, schemas):
    jail = Jail(jailer, vmm, guests, tmp, "daemon")
    kernel = jail.place_guest("spin.elf")
    # process_group=0: the jailer leads its own group, as a shell's job does.
    proc = jail.start(["--daemonize"], ["--api-sock", "/run/api.sock"], process_group=0,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid = None
    try:
        out, err = proc.communicate(timeout=30)
        check(proc.returncode == 0 and not out and not err,
              f"the jailer returned 0 at once, silent: {proc.returncode} {out!r} {err!r}")
        with open(os.path.join(jail.root, "vmm.pid")) as f:
            pid = int(f.read())
        check(pid != proc.pid, f"the vmm runs on as pid {pid}")
        check_detached(pid)
        check_confined(pid, jail)
        boot_spin_through_api(jail, schemas, kernel)
        os.kill(pid, signal.SIGTERM)
        check(wait_gone(pid), "SIGTERM stops the detached vmm")
    finally:
        if pid and not wait_gone(pid, timeout=0):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_gone(pid)


def case_daemonize_in_place(jailer, vmm, guests, tmp, schemas):
    # Kata's command line: --daemonize --netns ... -- --config-file ... --api-sock ...
    with NetNamespace(prefix="vmmkata") as ns:
        handle = f"/var/run/netns/{ns.name}"
        jail = Jail(jailer, vmm, guests, tmp, "inplace")
        kernel = jail.place_guest("spin.elf")
        with open(os.path.join(jail.root, "vm.json"), "w") as f:
            json.dump({"boot-source": {"kernel_image_path": kernel}}, f)
        proc = jail.start(["--daemonize", "--netns", handle],
                          ["--config-file", "/vm.json", "--api-sock", "/run/api.sock"])
        try:
            api = jail.api(schemas)
            info = wait_running(api)
            check(info["id"] == jail.id, f"the VM of the jail's config file runs: {info}")
            with open(f"/proc/{proc.pid}/comm") as f:
                check(f.read().strip() == "vmm",
                      "the jailer's pid is the vmm's (it exec'd in place)")
            check(os.stat(f"/proc/{proc.pid}/ns/net").st_ino == os.stat(handle).st_ino,
                  "the vmm is in the network namespace")
            check_detached(proc.pid)
            check_confined(proc.pid, jail)
            check(jail.output() == "", "nothing reached the jailer's stdout")
            proc.send_signal(signal.SIGTERM)
            check(proc.wait(timeout=20) == 143, f"SIGTERM ends it: {proc.returncode}")
        finally:
            jail.stop()


def case_new_pid_ns(jailer, vmm, guests, tmp, schemas):
    jail = Jail(jailer, vmm, guests, tmp, "pidns")
    kernel = jail.place_guest("spin.elf")
    proc = jail.start(["--new-pid-ns"], ["--kernel", kernel])
    try:
        check(jail.wait_output("spinning"), "the spin guest runs: " + jail.output())
        with open(os.path.join(jail.root, "vmm.pid")) as f:
            pid = int(f.read())
        check(pid != proc.pid, f"the vmm is a child of the jailer: pid {pid}")
        nspid = proc_status(pid)["NSpid"].split()
        check(nspid == [str(pid), "1"], f"it is pid 1 of a new PID namespace: NSpid {nspid}")
        check(int(proc_status(pid)["PPid"]) == proc.pid, "the jailer is its parent")
        check_confined(pid, jail)
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=20) == 143,
              f"SIGTERM to the jailer reaches the vmm; the jailer ends with its 143: "
              f"{proc.returncode}")
        check(wait_gone(pid, timeout=5), "the vmm is gone")
    finally:
        jail.stop()
    again = Jail(jailer, vmm, guests, tmp, "pidns2")
    kernel = again.place_guest("hello.elf")
    proc = again.start(["--new-pid-ns"], ["--kernel", kernel])
    try:
        check(proc.wait(timeout=60) == 0, f"the hello guest's 0 comes back: {proc.returncode}")
        check("Hello from test guest" in again.output(), "the hello guest ran")
    finally:
        again.stop()


def case_netns(jailer, vmm, guests, tmp, schemas):
    why = NetNamespace.available()
    if why:
        raise Failure("network namespaces do not work here: " + why)
    with NetNamespace(prefix="vmmjail") as ns:
        # A tap the unprivileged uid may attach (it has no CAP_NET_ADMIN).
        ns.run("tuntap", "del", ns.tap, "mode", "tap")
        ns.run("tuntap", "add", ns.tap, "mode", "tap", "user", str(UID))
        ns.run("link", "set", ns.tap, "up")
        jail = Jail(jailer, vmm, guests, tmp, "netns")
        kernel = jail.place_guest("spin.elf")
        handle = f"/var/run/netns/{ns.name}"
        proc = jail.start(["--netns", handle], ["--api-sock", "/run/api.sock"])
        try:
            api = jail.api(schemas)
            api.ok("PUT", "/boot-source", {"kernel_image_path": kernel})
            api.ok("PUT", "/network-interfaces/eth0",
                   {"iface_id": "eth0", "host_dev_name": ns.tap})
            api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
            check(jail.wait_output("spinning"), "the spin guest runs: " + jail.output())
            check(os.stat(f"/proc/{proc.pid}/ns/net").st_ino == os.stat(handle).st_ino,
                  f"the vmm is in the network namespace {ns.name}")
            link = ns.run("link", "show", ns.tap).stdout
            check("LOWER_UP" in link, f"the vmm attached {ns.tap} there (carrier): {link}")
            check_confined(proc.pid, jail)
            proc.send_signal(signal.SIGTERM)
            check(proc.wait(timeout=20) == 143, f"SIGTERM ends it: {proc.returncode}")
        finally:
            jail.stop()


CASES = {"confined": case_confined, "cgroups": case_cgroups, "config-file": case_config_file,
         "daemonize": case_daemonize, "daemonize-in-place": case_daemonize_in_place,
         "new-pid-ns": case_new_pid_ns, "netns": case_netns}


def main():
    jailer, vmm, guests, case = sys.argv[1:5]
    if os.geteuid() != 0:
        print("SKIPPED: the jailer tests need root")
        return SKIP
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        if os.environ.get("VMM_REQUIRE_KVM") == "1":
            print("FAIL: /dev/kvm is not usable and VMM_REQUIRE_KVM=1")
            return 1
        print("SKIPPED: /dev/kvm is missing or not accessible: the jailer tests need KVM")
        return SKIP
    return run_case(case, CASES[case], jailer, vmm, guests)


if __name__ == "__main__":
    sys.exit(main())
