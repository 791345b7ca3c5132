#!/usr/bin/python3
"""Output whose reader stalls never blocks the VMM.

    output_test.py VMM GUEST_DIR CASE
  serial   the virtio_console_flood guest floods the serial port; the VMM's
           stdout is a pipe nobody reads. Once the pipe is full, GET / still
           answers at once and SIGTERM ends the VMM within 3 s (exit 143);
           the exit metrics count the bytes (uart.write_count).
  hvc      the same on virtio-console (64 KiB chains): the I/O thread, which
           also serves the API, must not wait on stdout; the console's
           tx_dropped counts what the full output queue refused.
  log-fifo --log-path is a named pipe (of one page) whose reader never
           reads; 300 API requests (each a Debug log line) are answered at
           once, and the dropped lines are counted (log_lines_dropped).
"""
import array
import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_client import Api, run_script_case, wait_for_socket  # noqa: E402

F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032


def last_metrics(path):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    return json.loads(lines[-1]) if lines else {}


class StalledVmm:
    """The VMM with a stdout pipe that nobody reads (the read end stays open)."""

    def __init__(self, vmm, args, tmp):
        self.sock = os.path.join(tmp, "api.sock")
        self.metrics = os.path.join(tmp, "metrics.json")
        self.err = open(os.path.join(tmp, "vmm.err"), "w+")
        self.stalled_read, stalled_write = os.pipe()
        # One page: full after 4 KiB of output, quickly even in the nested tier.
        fcntl.fcntl(stalled_write, F_SETPIPE_SZ, 4096)
        self.proc = subprocess.Popen(
            [vmm, "--api-sock", self.sock, "--metrics-path", self.metrics] + args,
            stdin=subprocess.DEVNULL, stdout=stalled_write, stderr=self.err)
        os.close(stalled_write)
        if not wait_for_socket(self.sock):
            raise AssertionError("the API socket never appeared: " + self.stderr())

    def stderr(self):
        self.err.flush()
        with open(self.err.name, errors="replace") as f:
            return f.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.stalled_read)


def wait_pipe_full(v, timeout=60):
    """Until the stdout pipe is full: something held and no more taken for a
    second (a page may be full in part: a write that does not fit waits).
    From then on every byte of the guest's output finds it full."""
    capacity = fcntl.fcntl(v.stalled_read, F_GETPIPE_SZ)
    deadline = time.monotonic() + timeout
    held = array.array("i", [0])
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        fcntl.ioctl(v.stalled_read, termios.FIONREAD, held)
        if held[0] != last:
            last, since = held[0], time.monotonic()
        elif held[0] > 0 and time.monotonic() - since >= 1:
            return held[0]
        if v.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"the stdout pipe never filled ({held[0]} of {capacity} bytes): " +
                         v.stderr())


def wait_for_metric(v, api, group, counter, above, timeout=60):
    """FlushMetrics until metrics[group][counter] > above."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        api.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
        value = last_metrics(v.metrics).get(group, {}).get(counter)
        if value is not None and value > above:
            return value
        if v.proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{group}.{counter} never passed {above} (last {value}): " + v.stderr())


def stalled_case(vmm, guests, tmp, schemas, console):
    args = ["--kernel", os.path.join(guests, "virtio_console_flood-pvh.elf"), "-v"]
    if console == "hvc":
        args += ["--console", "virtio", "--cmdline", "via=hvc"]
    v = StalledVmm(vmm, args, tmp)
    try:
        api = Api(v.sock, schemas)
        api.conn.timeout = 5
        held = wait_pipe_full(v)
        start = time.monotonic()
        try:
            info = api.ok("GET", "/", schema="InstanceInfo")
        except OSError as e:
            raise AssertionError(f"GET / failed with stdout full: {e!r}")
        took = time.monotonic() - start
        assert info["state"] == "Running", info
        assert took < 2, f"GET / took {took:.2f} s"
        if console == "hvc":
            wait_for_metric(v, api, "console", "tx_dropped", 0)  # the 1 MiB queue is full too
        v.proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        try:
            status = v.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the VMM did not exit within 10 s of SIGTERM: " + v.stderr())
        took = time.monotonic() - start
        assert status == 128 + signal.SIGTERM, f"exit status {status}: {v.stderr()}"
        assert took < 3, f"exited {took:.2f} s after SIGTERM"
        final = last_metrics(v.metrics)
        err = v.stderr()
        if console == "hvc":
            assert final["console"]["tx_dropped"] > 0, final
            assert "virtio-console: rx_bytes=0 tx_bytes=" in err, err
        else:
            assert final["uart"]["write_count"] > held, final
            assert "serial: tx_bytes=" in err, err
        print(f"exited {took * 1000:.0f} ms after SIGTERM; metrics: uart {final.get('uart')}, "
              f"console {final.get('console')}")
    finally:
        v.close()


def case_serial(vmm, guests, tmp, schemas):
    stalled_case(vmm, guests, tmp, schemas, "serial")


def case_hvc(vmm, guests, tmp, schemas):
    stalled_case(vmm, guests, tmp, schemas, "hvc")


def case_log_fifo(vmm, guests, tmp, schemas):
    fifo = os.path.join(tmp, "log.fifo")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that never reads
    fcntl.fcntl(reader, F_SETPIPE_SZ, 4096)  # full after some 60 lines
    sock = os.path.join(tmp, "api.sock")
    metrics = os.path.join(tmp, "metrics.json")
    proc = subprocess.Popen([vmm, "--api-sock", sock, "--log-path", fifo, "--level", "Debug",
                             "--metrics-path", metrics],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        assert wait_for_socket(sock), "the API socket never appeared"
        api = Api(sock, schemas)
        api.conn.timeout = 5
        start = time.monotonic()
        for _ in range(300):
            api.ok("GET", "/", schema="InstanceInfo")
        took = time.monotonic() - start
        api.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
        vmm_metrics = last_metrics(metrics)["vmm"]
        assert vmm_metrics["log_lines_dropped"] > 0, vmm_metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM, proc.stderr.read()
        print(f"300 requests in {took:.2f} s with the log pipe full; {vmm_metrics}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(reader)


CASES = {"serial": case_serial, "hvc": case_hvc, "log-fifo": case_log_fifo}


if __name__ == "__main__":
    sys.exit(run_script_case(CASES, "the output tests"))
