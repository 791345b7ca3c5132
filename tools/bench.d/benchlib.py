"""Helpers for tools/bench: statistics, host facts, running a VMM process
with timestamps on its output, and parsers for strace logs and smaps."""

import os
import platform
import re
import select
import signal
import statistics
import subprocess
import time


class RunFailed(Exception):
    """One run of one side did not produce a valid measurement."""


# --- statistics ------------------------------------------------------------

def summarize(samples):
    """median/min/max/mean of a list of numbers (None when it is empty)."""
    if not samples:
        return None
    return {
        "n": len(samples),
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "mean": statistics.fmean(samples),
    }


# --- host ------------------------------------------------------------------

def kvm_vendor():
    if os.path.exists("/sys/module/kvm_pvm"):
        return "PVM (kvm_pvm)"
    for mod in ("kvm_intel", "kvm_amd"):
        if os.path.exists(f"/sys/module/{mod}"):
            return mod
    return "none (no kvm vendor module loaded)"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def host_info():
    return {
        "kvm_vendor": kvm_vendor(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "cores": os.cpu_count(),
        "loadavg_start": loadavg(),
        "hostname": platform.node(),
    }


# --- running a VMM ---------------------------------------------------------

class GuestProcess:
    """A VMM process with stdin on /dev/null and stdout/stderr on pipes.

    Records when each stdout chunk arrived (time.monotonic(), seconds) so the
    arrival of the first byte of any marker can be looked up afterwards, and
    the exit time via a pidfd. t_start is taken right before fork/exec.
    """

    def __init__(self, argv, timeout):
        self.argv = argv
        self.deadline = time.monotonic() + timeout
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._chunks = []          # (offset in stdout, arrival time)
        self.t_exit = None
        self.returncode = None
        self.t_start = time.monotonic()
        # Own process group, so a timeout also kills what a wrapper (strace) started.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self._pidfd = os.pidfd_open(self.proc.pid)
        self._open = {self.proc.stdout.fileno(): self.stdout, self.proc.stderr.fileno(): self.stderr}
        for fd in self._open:
            os.set_blocking(fd, False)

    @property
    def pid(self):
        return self.proc.pid

    def _drain(self, fd):
        buf = self._open[fd]
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not data:
                del self._open[fd]
                return
            if buf is self.stdout:
                self._chunks.append((len(buf), time.monotonic()))
            buf += data

    def _pump(self, until):
        """Reads output until until() is true or the process exited (and its
        pipes are closed). Raises RunFailed at the deadline."""
        while not until():
            if self.t_exit is not None and not self._open:
                return
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RunFailed(f"timed out: {self.describe()}")
            fds = list(self._open) + ([self._pidfd] if self.t_exit is None else [])
            ready, _, _ = select.select(fds, [], [], remaining)
            for fd in ready:
                if fd == self._pidfd:
                    self.t_exit = time.monotonic()
                    self.returncode = self.proc.wait()
                    for pipe_fd in list(self._open):
                        self._drain(pipe_fd)   # whatever is left in the pipes
                    self._open.clear()
                else:
                    self._drain(fd)

    def marker_time(self, marker):
        """Arrival time of the first byte of marker on stdout, or None."""
        idx = self.stdout.find(marker)
        if idx < 0:
            return None
        t = None
        for offset, when in self._chunks:
            if offset > idx:
                break
            t = when
        return t

    def wait_for(self, marker):
        """Waits for marker on stdout; returns the arrival time of its first byte."""
        self._pump(lambda: marker in self.stdout)
        t = self.marker_time(marker)
        if t is None:
            raise RunFailed(f"{marker.decode()!r} never appeared on stdout "
                            f"(exit status {self.returncode}): {self.describe()}")
        return t

    def wait_exit(self):
        self._pump(lambda: False)
        return self.returncode

    def terminate(self, grace=10.0):
        """SIGTERM, then waits (SIGKILL after grace seconds). Returns the status."""
        if self.t_exit is None:
            self.proc.send_signal(signal.SIGTERM)
            self.deadline = min(self.deadline, time.monotonic() + grace)
            try:
                self._pump(lambda: False)
            except RunFailed as e:
                raise RunFailed(f"did not exit on SIGTERM: {self.describe()}") from e
        return self.returncode

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.returncode = self.proc.wait()
        self.close()

    def close(self):
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def describe(self):
        err = [line for line in self.stderr.decode(errors="replace").strip().splitlines()
               if not line.startswith("boot-trace:")]
        tail = f"; stderr: {' | '.join(err[-3:])}" if err else ""
        return f"{' '.join(self.argv)}{tail}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()   # the group: the VMM if still running, and anything it left behind
        return False


# --- strace ----------------------------------------------------------------

_STRACE_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<ts>\d+\.\d+)\s+(?P<rest>.*)$")


def parse_strace(path):
    """Returns [(pid, timestamp, text)] for the lines of a `strace -f -ttt` log."""
    events = []
    with open(path, errors="replace") as f:
        for line in f:
            m = _STRACE_LINE.match(line)
            if m:
                events.append((int(m["pid"]), float(m["ts"]), m["rest"]))
    return events


def exec_to_first_kvm_run(events):
    """Seconds from the first execve to the first KVM_RUN ioctl (entry times)."""
    t_exec, t_run = _exec_and_first_run(events)
    return t_run - t_exec


_KVM_RUN = re.compile(r"^ioctl\(\d+, KVM_RUN\b")


def _exec_and_first_run(events):
    t_exec = next((ts for _, ts, rest in events if rest.startswith("execve(")), None)
    t_run = next((ts for _, ts, rest in events if _KVM_RUN.match(rest)), None)
    if t_exec is None or t_run is None:
        missing = "execve" if t_exec is None else "KVM_RUN ioctl"
        raise RunFailed(f"no {missing} in the strace log")
    return t_exec, t_run


_SYSCALL = re.compile(r"^(?:<\.\.\. )?(?P<name>[a-z_0-9]+)(?:\(| resumed>)")
_DURATION = re.compile(r"<(?P<secs>\d+\.\d+)>\s*$")


# Syscalls that wait for another thread or a timer: their time is not work.
WAIT_SYSCALLS = {"futex", "clock_nanosleep", "nanosleep", "epoll_wait", "epoll_pwait", "poll",
                 "ppoll", "select", "pselect6", "wait4", "rt_sigtimedwait"}


def syscall_profile(events):
    """From a `strace -f -ttt -T` log (all syscalls): per syscall name, count
    and total time inside the syscall, for the events from the first execve to
    the first KVM_RUN; the total time; and the largest gaps between one
    syscall's entry and the next (what the process did in between)."""
    t_exec, t_run = _exec_and_first_run(events)
    per = {}
    inside = 0.0
    gaps = []              # (seconds until the next event, this event's text)
    window = [(ts, rest) for _, ts, rest in events if t_exec <= ts <= t_run]
    for (ts, rest), (next_ts, _) in zip(window, window[1:]):
        gaps.append((next_ts - ts, rest[:110]))
    gaps.sort(key=lambda g: -g[0])
    pending = {}           # pid -> name of its unfinished syscall
    for pid, ts, rest in events:
        if ts < t_exec or ts >= t_run:
            continue
        name = _SYSCALL.match(rest)
        if not name:
            continue
        key = name["name"]
        if key == "ioctl" and not rest.startswith("<..."):
            key = "ioctl " + rest.split(",", 2)[1].strip().split(")")[0] if "," in rest else key
        if "<unfinished ...>" in rest:
            pending[pid] = key   # its duration is on the "resumed" line
            continue
        if rest.startswith("<..."):
            key = pending.pop(pid, key)
        dur = _DURATION.search(rest)
        if not dur:
            continue
        count, total = per.get(key, (0, 0.0))
        per[key] = (count + 1, total + float(dur["secs"]))
        inside += float(dur["secs"])
    return {"total": t_run - t_exec, "in_syscalls": inside, "per_syscall": per,
            "largest_gaps": gaps[:6]}


# --- /proc/PID/smaps ---------------------------------------------------------

_MAP_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$")


def read_smaps(pid):
    """Returns a list of mappings: {start, size, perms, inode, name, Rss, Pss, ...} (kB values)."""
    maps = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = _MAP_HEADER.match(line)
            if m:
                start, end = int(m[1], 16), int(m[2], 16)
                maps.append({"start": start, "size": end - start, "perms": m[3],
                             "inode": int(m[4]), "name": m[5].strip()})
                continue
            key, _, value = line.partition(":")
            parts = value.split()
            if maps and len(parts) == 2 and parts[1] == "kB":
                maps[-1][key] = int(parts[0])
    return maps


def guest_ram_mappings(maps, layouts):
    """The guest RAM mappings: for the first layout (a list of sizes in bytes)
    that matches, one anonymous rw mapping per size. RunFailed if none does."""
    candidates = [m for m in maps if m["inode"] == 0 and m["name"] == ""
                  and m["perms"].startswith("rw")]
    for sizes in layouts:
        found = []
        for size in sizes:
            match = next((m for m in candidates if m["size"] == size and m not in found), None)
            if match is None:
                break
            found.append(match)
        else:
            return found
    wanted = " or ".join("+".join(f"{size >> 20}" for size in sizes) for sizes in layouts)
    raise RunFailed(f"no anonymous rw mapping(s) of {wanted} MiB (guest RAM) in smaps")


def memory_overhead(pid, layouts):
    """RSS/PSS of the process minus that of its guest RAM mappings, in KiB.
    layouts: the possible guest RAM mappings, see guest_ram_mappings()."""
    maps = read_smaps(pid)
    guest = guest_ram_mappings(maps, layouts)
    total_rss = sum(m.get("Rss", 0) for m in maps)
    total_pss = sum(m.get("Pss", 0) for m in maps)
    guest_rss = sum(m.get("Rss", 0) for m in guest)
    guest_pss = sum(m.get("Pss", 0) for m in guest)
    top = sorted((m for m in maps if m not in guest), key=lambda m: -m.get("Rss", 0))[:8]
    return {
        "total_rss_kib": total_rss,
        "total_pss_kib": total_pss,
        "guest_rss_kib": guest_rss,
        "guest_pss_kib": guest_pss,
        "rss_overhead_kib": total_rss - guest_rss,
        "pss_overhead_kib": total_pss - guest_pss,
        "anon_overhead_kib": sum(m.get("Anonymous", 0) for m in maps if m not in guest),
        "top_mappings": [{"name": m["name"] or "[anon]", "size_kib": m["size"] >> 10,
                          "rss_kib": m.get("Rss", 0), "pss_kib": m.get("Pss", 0),
                          "perms": m["perms"]} for m in top],
    }
