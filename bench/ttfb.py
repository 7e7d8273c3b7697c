#!/usr/bin/env python3
"""Streaming timing probe for llmgate benchmarks (Python 3 stdlib only).

Sends N sequential streaming chat requests (`"stream": true`) over raw sockets, one
fresh TCP connection per request (connect time is not counted), decodes the HTTP/1.1
response (chunked or not) incrementally, splits the body into SSE events, and records
when each `data:` event arrived. Reports:

  ttfb        time from sending the request to the first complete `data:` event
  first_byte  time from sending the request to the first response byte (status line)
  gaps        time between consecutive `data:` events as seen by the client

Usage: ttfb.py --port 4000 [--host 127.0.0.1] [--path /v1/chat/completions]
               [--auth sk-...] [-n 200] [--warmup 10] [--chunks 10] [--json OUT]
Prints one human-readable summary line, and with --json writes the figures as JSON.
"""

import argparse
import json
import socket
import statistics
import sys
import time

DEFAULT_BODY = (
    '{"model":"bench-model","messages":[{"role":"user","content":"hi"}],"stream":true}'
)


class ChunkedDecoder:
    """Incremental decoder for HTTP/1.1 `Transfer-Encoding: chunked` bodies."""

    def __init__(self):
        self.buf = b""
        self.remaining = None  # bytes left in the current chunk, None = expect a size line
        self.need_crlf = False
        self.finished = False

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if self.finished:
                return b"".join(out)
            if self.need_crlf:
                if len(self.buf) < 2:
                    break
                self.buf = self.buf[2:]
                self.need_crlf = False
            if self.remaining is None:
                idx = self.buf.find(b"\r\n")
                if idx < 0:
                    break
                size_line = self.buf[:idx].split(b";", 1)[0].strip()
                self.buf = self.buf[idx + 2 :]
                size = int(size_line, 16)
                if size == 0:
                    self.finished = True
                    continue
                self.remaining = size
            take = self.buf[: self.remaining]
            if not take:
                break
            out.append(take)
            self.buf = self.buf[len(take) :]
            self.remaining -= len(take)
            if self.remaining == 0:
                self.remaining = None
                self.need_crlf = True
        return b"".join(out)


def one_request(host, port, path, auth, body, timeout):
    """Run one streaming request; return a dict with raw timings (seconds, relative to send)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body_bytes = body.encode()
    headers = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(body_bytes)}",
        "Connection: close",
    ]
    if auth:
        headers.append(f"Authorization: Bearer {auth}")
    req = ("\r\n".join(headers) + "\r\n\r\n").encode() + body_bytes
    result = {"status": None, "first_byte": None, "events": [], "done": False, "error": None}
    head = b""
    decoder = None
    content_left = None
    sse_buf = b""
    try:
        t0 = time.perf_counter()
        sock.sendall(req)
        while True:
            data = sock.recv(65536)
            now = time.perf_counter() - t0
            if not data:
                break
            if result["first_byte"] is None:
                result["first_byte"] = now
            if result["status"] is None:
                head += data
                idx = head.find(b"\r\n\r\n")
                if idx < 0:
                    continue
                header_block = head[:idx].decode("latin-1")
                data = head[idx + 4 :]
                lines = header_block.split("\r\n")
                result["status"] = int(lines[0].split()[1])
                hdrs = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                if "chunked" in hdrs.get("transfer-encoding", "").lower():
                    decoder = ChunkedDecoder()
                elif "content-length" in hdrs:
                    content_left = int(hdrs["content-length"])
            if decoder is not None:
                payload = decoder.feed(data)
            else:
                payload = data
                if content_left is not None:
                    content_left -= len(data)
            sse_buf += payload.replace(b"\r\n", b"\n")
            while True:
                idx = sse_buf.find(b"\n\n")
                if idx < 0:
                    break
                event, sse_buf = sse_buf[:idx], sse_buf[idx + 2 :]
                for line in event.split(b"\n"):
                    if line.startswith(b"data:"):
                        payload_line = line[5:].strip()
                        result["events"].append((now, payload_line))
                        if payload_line == b"[DONE]":
                            result["done"] = True
            if result["done"]:
                break
            if decoder is not None and decoder.finished:
                break
            if content_left is not None and content_left <= 0:
                break
    except (OSError, ValueError, IndexError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    return result


def is_content_event(payload):
    """A `data:` payload that is a chunk with at least one choice (not usage-only, not [DONE])."""
    if payload == b"[DONE]":
        return False
    try:
        obj = json.loads(payload)
    except ValueError:
        return False
    return isinstance(obj, dict) and bool(obj.get("choices"))


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/v1/chat/completions")
    ap.add_argument("--auth", default="")
    ap.add_argument("--body", default=DEFAULT_BODY)
    ap.add_argument("-n", type=int, default=200, help="measured requests")
    ap.add_argument("--warmup", type=int, default=10, help="unmeasured requests first")
    ap.add_argument("--chunks", type=int, default=None, help="expected content chunks per reply")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", default=None, help="write results as JSON to this file")
    args = ap.parse_args()

    for _ in range(args.warmup):
        one_request(args.host, args.port, args.path, args.auth, args.body, args.timeout)

    ttfb, first_byte, gaps_all, gaps_content, n_content = [], [], [], [], []
    errors, not_done, bad_status = 0, 0, 0
    first_error = None
    for _ in range(args.n):
        r = one_request(args.host, args.port, args.path, args.auth, args.body, args.timeout)
        if r["error"] or r["status"] != 200:
            errors += 1
            if r["status"] is not None and r["status"] != 200:
                bad_status += 1
            if first_error is None:
                first_error = r["error"] or f"HTTP {r['status']}"
            if errors >= 5 and not ttfb:
                break  # the server is not streaming at all; do not wait out every request
            continue
        if not r["done"]:
            not_done += 1
        events = r["events"]
        if not events:
            errors += 1
            first_error = first_error or "no data events"
            continue
        first_byte.append(r["first_byte"])
        ttfb.append(events[0][0])
        times = [t for t, _ in events]
        gaps_all.extend(b - a for a, b in zip(times, times[1:]))
        ctimes = [t for t, p in events if is_content_event(p)]
        n_content.append(len(ctimes))
        gaps_content.extend(b - a for a, b in zip(ctimes, ctimes[1:]))

    ms = lambda v: None if v is None else round(v * 1000.0, 3)  # noqa: E731
    out = {
        "label": args.label,
        "n": args.n,
        "ok": len(ttfb),
        "errors": errors,
        "bad_status": bad_status,
        "first_error": first_error,
        "missing_done": not_done,
        "ttfb_p50_ms": ms(statistics.median(ttfb)) if ttfb else None,
        "ttfb_p99_ms": ms(pct(ttfb, 99)),
        "ttfb_max_ms": ms(max(ttfb)) if ttfb else None,
        "first_byte_p50_ms": ms(statistics.median(first_byte)) if first_byte else None,
        "gap_content_p50_ms": ms(statistics.median(gaps_content)) if gaps_content else None,
        "gap_content_p99_ms": ms(pct(gaps_content, 99)),
        "gap_max_ms": ms(max(gaps_all)) if gaps_all else None,
        "gaps_over_25ms": sum(1 for g in gaps_all if g > 0.025),
        "content_chunks_min": min(n_content) if n_content else None,
        "content_chunks_max": max(n_content) if n_content else None,
        "expected_chunks": args.chunks,
    }
    print(
        f"[ttfb{(' ' + args.label) if args.label else ''}] ok={out['ok']}/{args.n} "
        f"ttfb p50={out['ttfb_p50_ms']} ms p99={out['ttfb_p99_ms']} ms "
        f"(first byte p50={out['first_byte_p50_ms']} ms) "
        f"chunk gap p50={out['gap_content_p50_ms']} ms p99={out['gap_content_p99_ms']} ms "
        f"max={out['gap_max_ms']} ms chunks/reply={out['content_chunks_min']}..{out['content_chunks_max']}"
        + (f" errors={errors} first_error={first_error!r}" if errors else "")
        + (f" missing [DONE]={not_done}" if not_done else "")
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
