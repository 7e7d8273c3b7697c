#!/usr/bin/env python3
"""Mixed traffic for bench/soak.sh (Python 3 stdlib only).

    soak_traffic.py --port P --seconds S [--concurrency C] [--master-key K]

C threads, each on its own keep-alive connection, loop until S seconds pass, picking by
weight: a plain chat (45%), a streamed chat read to `data: [DONE]` (30%), a chat on the
`broken` group, whose upstream answers 404 (10%, an upstream error), and key churn (15%):
`POST /key/generate`, one chat with the new key, `POST /key/delete`. Chats use virtual keys
from a pool of 8 made at the start. Prints one JSON line of counts at the end.
"""

import argparse
import http.client
import json
import random
import threading
import time

CHAT = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]}
STREAM = dict(CHAT, stream=True)
BROKEN = {"model": "broken", "messages": [{"role": "user", "content": "hi"}], "num_retries": 0}


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, key, body=None):
        """(status, body bytes); a broken connection is retried once on a new one."""
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
                data = json.dumps(body).encode() if body is not None else None
                self.conn.request(method, path, body=data, headers=headers)
                res = self.conn.getresponse()
                return res.status, res.read()
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt:
                    return 0, b""
        return 0, b""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--master-key", default="sk-bench-master-soak-0001")
    a = ap.parse_args()
    admin = Client(a.port)
    keys = []
    for _ in range(8):
        st, body = admin.call("POST", "/key/generate", a.master_key, {"duration": None})
        if st == 200:
            keys.append(json.loads(body)["key"])
    if not keys:
        keys = [a.master_key]
    counts = {}
    lock = threading.Lock()
    deadline = time.monotonic() + a.seconds

    def count(name, ok):
        with lock:
            k = f"{name}_{'ok' if ok else 'bad'}"
            counts[k] = counts.get(k, 0) + 1

    def worker(seed):
        rnd = random.Random(seed)
        c = Client(a.port)
        while time.monotonic() < deadline:
            r = rnd.random()
            key = rnd.choice(keys)
            if r < 0.45:
                st, body = c.call("POST", "/v1/chat/completions", key, CHAT)
                count("chat", st == 200)
            elif r < 0.75:
                st, body = c.call("POST", "/v1/chat/completions", key, STREAM)
                count("stream", st == 200 and body.rstrip().endswith(b"data: [DONE]"))
            elif r < 0.85:
                st, body = c.call("POST", "/v1/chat/completions", key, BROKEN)
                # The upstream's 404 comes back as an error: anything but a 200 is expected.
                count("upstream_error", st not in (0, 200))
            else:
                st, body = c.call("POST", "/key/generate", a.master_key, {"duration": None})
                ok = st == 200
                if ok:
                    new = json.loads(body)["key"]
                    st, _ = c.call("POST", "/v1/chat/completions", new, CHAT)
                    ok = st == 200
                    st, _ = c.call("POST", "/key/delete", a.master_key, {"keys": [new]})
                    ok = ok and st == 200
                count("key_churn", ok)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    main()
