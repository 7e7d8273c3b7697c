#!/usr/bin/env python3
"""Sends exactly N chat requests to a gateway over C keep-alive connections (one thread each)
and prints one JSON line: {"requests": N, "ok": 2xx count, "other": {status: count}, "seconds": s}.

    fixed_requests.py --port P --requests N --concurrency C --key KEY [--model bench-model]
                      [--extra '{"user": "u1", "metadata": {"tags": ["t"]}}']

Used by journal_cost.sh, where the gateway runs under callgrind: a fixed count of requests
(rather than wrk's fixed duration) makes instructions per request comparable between runs.
"""

import argparse
import http.client
import json
import threading
import time


def worker(port, count, headers, body, tally, lock):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    ok, other = 0, {}
    for _ in range(count):
        try:
            conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        if isinstance(status, int) and 200 <= status < 300:
            ok += 1
        else:
            other[str(status)] = other.get(str(status), 0) + 1
    conn.close()
    with lock:
        tally["ok"] += ok
        for k, v in other.items():
            tally["other"][k] = tally["other"].get(k, 0) + v


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--key", required=True)
    p.add_argument("--model", default="bench-model")
    p.add_argument("--extra", default="{}", help="JSON object merged into each request body")
    a = p.parse_args()
    fields = {"model": a.model, "messages": [{"role": "user", "content": "hi"}]}
    fields.update(json.loads(a.extra))
    body = json.dumps(fields)
    headers = {"Authorization": f"Bearer {a.key}", "Content-Type": "application/json"}
    tally, lock = {"ok": 0, "other": {}}, threading.Lock()
    share, extra = divmod(a.requests, a.concurrency)
    threads = [
        threading.Thread(
            target=worker,
            args=(a.port, share + (1 if i < extra else 0), headers, body, tally, lock),
        )
        for i in range(a.concurrency)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    print(json.dumps({"requests": a.requests, "ok": tally["ok"], "other": tally["other"],
                      "seconds": round(took, 3)}))


if __name__ == "__main__":
    main()
