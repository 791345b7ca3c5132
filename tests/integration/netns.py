"""A private network namespace with one tap for the net tests.

    with NetNamespace() as ns:          # ns.name, ns.tap ("tap0"), ns.host_ip
        subprocess.run(ns.wrap([vmm, "--net", "tap=tap0", ...]))

Inside the namespace: tap0 with 10.0.2.1/24 (up, waiting for the VMM to
attach) and loopback. Nothing leaves the namespace and the host's own
interfaces are never touched. The namespace (and with it the tap) is deleted
on every path out of the with-block, including SIGTERM/SIGINT/SIGHUP (turned
into exceptions while the block runs). Needs root; NetNamespace.available()
says whether namespaces work here and why not.
"""
import os
import signal
import subprocess

HOST_IP = "10.0.2.1"
GUEST_IP = "10.0.2.15"
PREFIX = 24


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class NetNamespace:
    def __init__(self, tap="tap0", prefix="vmmtest"):
        self.name = f"{prefix}{os.getpid()}"
        self.tap = tap
        self.host_ip = HOST_IP
        self.guest_ip = GUEST_IP
        self._old_handlers = {}

    @staticmethod
    def available():
        """None if namespaces and taps work here, else why not."""
        if os.geteuid() != 0:
            return "needs root (ip netns add, ip tuntap add)"
        if not os.path.exists("/dev/net/tun"):
            return "/dev/net/tun is missing"
        probe = f"vmmprobe{os.getpid()}"
        r = _ip("netns", "add", probe, check=False)
        if r.returncode != 0:
            return f"ip netns add failed: {r.stderr.strip()}"
        _ip("netns", "del", probe, check=False)
        return None

    def wrap(self, command):
        """The command run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def run(self, *args, check=True):
        """An `ip` command inside the namespace."""
        return _ip("-n", self.name, *args, check=check)

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        _ip("netns", "del", self.name, check=False)  # a leftover from a killed run
        _ip("netns", "add", self.name)
        try:
            self.run("link", "set", "lo", "up")
            self.run("tuntap", "add", self.tap, "mode", "tap")
            self.run("addr", "add", f"{HOST_IP}/{PREFIX}", "dev", self.tap)
            self.run("link", "set", self.tap, "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        _ip("netns", "del", self.name, check=False)
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()
        return False

    @staticmethod
    def _on_signal(signum, frame):
        raise SystemExit(128 + signum)
