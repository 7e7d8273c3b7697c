#!/usr/bin/env python3
"""Spawn a server and measure its ready-to-serve time (Python 3 stdlib only).

    spawn_ready.py --port P [--cpu N] [--log FILE] [--path /health/liveliness]
                   [--any-status] [--stop] -- COMMAND ARGS...

Starts COMMAND (optionally pinned to CPU N with sched_setaffinity, which is what
`taskset -c N` does, applied in the child before exec), then polls
`GET PATH` on 127.0.0.1:P in a tight loop (a fresh connection every ~0.2 ms while the
port refuses) until it answers 200 (or any HTTP status with --any-status). The clock
starts just before the spawn and stops when the 200 status line is read.

Prints `PID READY_MS` on stdout. With --stop the process is then terminated (SIGTERM,
then SIGKILL after 3 s), for repeated trials; otherwise it is left running (its stdout
and stderr go to --log) and the caller owns it. Exit status 1 if the process exited or
did not become ready within --timeout seconds.
"""

import argparse
import os
import socket
import subprocess
import sys
import time


def probe(host, port, path, any_status):
    """Return True if the server answered (200 unless any_status), False if not yet listening."""
    try:
        s = socket.create_connection((host, port), timeout=2)
    except (ConnectionRefusedError, ConnectionResetError, socket.timeout, OSError):
        return False
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while b"\r\n" not in buf:
            data = s.recv(4096)
            if not data:
                return False
            buf += data
        parts = buf.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            return False
        return any_status or parts[1] == b"200"
    except OSError:
        return False
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/health/liveliness")
    ap.add_argument("--cpu", type=int, default=None, help="pin the child to this CPU")
    ap.add_argument("--log", default=os.devnull, help="file for the child's stdout+stderr")
    ap.add_argument("--any-status", action="store_true", help="any HTTP response counts as ready")
    ap.add_argument("--stop", action="store_true", help="terminate the child once ready")
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        ap.error("no command given")

    preexec = None
    if args.cpu is not None:
        cpu = args.cpu
        preexec = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731

    log = open(args.log, "ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec)
    log.close()
    deadline = t0 + args.timeout
    ready_ms = None
    while True:
        if probe(args.host, args.port, args.path, args.any_status):
            ready_ms = (time.perf_counter() - t0) * 1000.0
            break
        if proc.poll() is not None:
            print(f"{proc.pid} -1", flush=True)
            print(f"spawn_ready: process exited with status {proc.returncode} before ready", file=sys.stderr)
            return 1
        if time.perf_counter() > deadline:
            proc.kill()
            proc.wait()
            print(f"{proc.pid} -1", flush=True)
            print(f"spawn_ready: not ready after {args.timeout} s", file=sys.stderr)
            return 1
        time.sleep(0.0002)
    print(f"{proc.pid} {ready_ms:.2f}", flush=True)
    if args.stop:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
