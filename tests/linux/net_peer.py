#!/usr/bin/env python3
"""The host side of the Linux net test, run inside the test's namespace.

    net_peer.py OUTDIR PAYLOAD

Appends every UDP datagram to port 6666 (the guest kernel's netconsole) to
OUTDIR/netconsole.log; writes the SHA-256 of everything a client sends to TCP
port 5001, its byte count and the seconds from its first byte to its last, to
OUTDIR/upload.sha256; sends PAYLOAD to
every client of TCP port 5002. Runs until killed.
"""
import hashlib
import os
import selectors
import socket
import sys
import threading
import time


def udp_log(outdir):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 6666))
    with open(os.path.join(outdir, "netconsole.log"), "ab", buffering=0) as log:
        while True:
            data, _ = s.recvfrom(65536)
            log.write(data)


def tcp_server(port, handle):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def main():
    outdir, payload_path = sys.argv[1], sys.argv[2]
    with open(payload_path, "rb") as f:
        payload = f.read()

    def upload(conn):
        digest = hashlib.sha256()
        received = 0
        first = last = None
        while True:
            data = conn.recv(65536)
            if not data:
                break
            last = time.monotonic()
            first = first or last
            digest.update(data)
            received += len(data)
        conn.close()
        # Renamed into place: the test reads it whole or not at all.
        path = os.path.join(outdir, "upload.sha256")
        with open(path + ".tmp", "w") as out:
            seconds = (last - first) if first else 0
            out.write(f"{digest.hexdigest()} {received} {seconds:.3f}\n")
        os.rename(path + ".tmp", path)

    def download(conn):
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        conn.close()

    threading.Thread(target=udp_log, args=(outdir,), daemon=True).start()
    threading.Thread(target=tcp_server, args=(5001, upload), daemon=True).start()
    threading.Thread(target=tcp_server, args=(5002, download), daemon=True).start()
    with open(os.path.join(outdir, "ready"), "w"):
        pass
    threading.Event().wait()


if __name__ == "__main__":
    main()
