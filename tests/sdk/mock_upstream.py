"""A small OpenAI-wire-format upstream for the SDK suite: stdlib only, one thread per connection.

Routes (each with and without the `/v1` prefix):
- `POST /chat/completions`: a `chat.completion` with usage, or with `"stream": true` an SSE
  stream of content chunks, then (when `stream_options.include_usage` is set) a usage chunk
  with empty `choices`, then `data: [DONE]`.
- `POST /completions`: a `text_completion`, streamed the same way when asked.
- `POST /embeddings`: one vector per input; floats, or base64 of little-endian float32 when
  the request says `encoding_format: "base64"`.
- `POST /api/chat`, `/api/generate`, `/api/embed`: Ollama's native API, answered from the
  recorded fixtures in tests/fixtures/ollama (streams as newline-delimited JSON when the body
  says `"stream": true`, as Ollama does); a model named `missing-...` is Ollama's 404.
- `POST /v2/chat`, `/v2/embed`: Cohere's v2 API, answered from the recorded fixtures in
  tests/fixtures/cohere (an SSE stream when the body says `"stream": true`).
- `POST /generate`, `/generate_stream`: TGI's raw API (Hugging Face), answered from the
  recorded fixtures in tests/fixtures/huggingface (`/generate_stream` as SSE).
- `POST /model/{id}/converse`, `/model/{id}/converse-stream`: AWS Bedrock's Converse API,
  answered from the recorded fixtures in tests/fixtures/bedrock (the stream as binary
  `application/vnd.amazon.eventstream` frames).
- `POST /images/generations`, `/audio/speech`, `/audio/transcriptions`, `/audio/translations`,
  `/moderations`: answered from the recorded fixtures in tests/fixtures/openai (speech as audio
  chunks with `audio/mpeg`; uploads read as multipart forms, transcripts as JSON or text by
  `response_format`); `POST /rerank`, `/v2/rerank`: Cohere's rerank, from
  tests/fixtures/cohere.

- `POST /responses`, `GET` / `DELETE /responses/{id}`, `GET /responses/{id}/input_items`:
  OpenAI's Responses API, answered from the recorded fixtures in tests/fixtures/openai (the
  stream as SSE events with `event:` lines, no `[DONE]`).
- `GET /models`: the three working test models.
- OpenAI's files and batches APIs, kept in memory: `POST /files` (multipart `file`, `purpose`),
  `GET /files` (`purpose`, `limit`, `after`, `order`), `GET /files/{id}`,
  `GET /files/{id}/content`, `DELETE /files/{id}`; `POST /batches` (on an uploaded input file),
  `GET /batches` (`after`, `limit`), `GET /batches/{id}`, `POST /batches/{id}/cancel`.

Failure on demand, chosen by the request's `model` (the gateway sends the deployment's model):
- `fail-<status>` (e.g. `fail-503`, `fail-429`): that status with an OpenAI error body.
- `drop-midstream`: a stream that sends two chunks and then closes the connection without
  finishing the response.

Every request is recorded (`MockUpstream.requests`) so tests can check what reached it.
Run it by hand with `python3 tests/sdk/mock_upstream.py [--port N]`.
"""

from __future__ import annotations

import argparse
import base64
import email.parser
import email.policy
import itertools
import json
import socket
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

CREATED = 1_700_000_000


def event_stream_frame(event_type: str, payload: Any) -> bytes:
    """One AWS event-stream message: prelude (lengths, CRC), string headers, JSON payload, CRC."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        n, v = name.encode(), value.encode()
        headers += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack(">I", zlib.crc32(message))

CHAT_REPLY_CHUNKS = ["Hello", " from", " the", " mock", " upstream."]
CHAT_REPLY = "".join(CHAT_REPLY_CHUNKS)

COMPLETION_TEXT_CHUNKS = ["Once", " upon", " a", " mock."]
COMPLETION_TEXT = "".join(COMPLETION_TEXT_CHUNKS)

PROMPT_TOKENS = 11
COMPLETION_TOKENS = 5
USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": COMPLETION_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
}

EMBEDDING_PROMPT_TOKENS = 4

LISTED_MODELS = ["gpt-test", "instruct-test", "embed-test"]

# Sent on every reply; the gateway should pass it on as `llm_provider-x-mock-upstream`.
# Anthropic's Messages API is answered from the recorded fixtures the Rust tests use too.
ANTHROPIC_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"
GEMINI_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gemini"
VERTEX_ACCESS_TOKEN = "ya29.sdk-test"
HUGGINGFACE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "huggingface"
COHERE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cohere"
BEDROCK_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock"

OPENAI_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openai"
SPEECH_CHUNKS = [b"ID3\x04sdk-audio-one|", b"sdk-audio-two|", b"sdk-audio-three"]

# OpenAI's Responses API is answered from the recorded fixtures the Rust tests use too.
OPENAI_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openai"

# Ollama's native API is answered from the recorded fixtures too.
OLLAMA_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ollama"

MARKER_HEADER = "x-mock-upstream"
MARKER_VALUE = "yes"

ERROR_MESSAGES = {
    503: ("upstream overloaded", "server_error"),
    429: ("upstream rate limit reached", "rate_limit_error"),
}


def expected_embedding(index: int) -> list[float]:
    """The vector the mock returns for the `index`-th input; exact in float32."""
    return [0.5, -0.25, 0.125 * (index + 1), 1.0 + index]


def encode_base64_float32(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


@dataclass
class RecordedRequest:
    """One request as the upstream saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any

    @property
    def model(self) -> Any:
        return self.body.get("model") if isinstance(self.body, dict) else None


@dataclass
class MockUpstream:
    """The mock server, started on 127.0.0.1 and a free port in a background thread."""

    requests: list[RecordedRequest] = field(default_factory=list)
    # The files and batches APIs' objects: id -> (object, bytes) and id -> batch.
    files: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Any = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self, port: int = 0) -> "MockUpstream":
        handler = type("BoundHandler", (_Handler,), {"upstream": self})
        self._server = _QuietServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="mock-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None, "mock upstream not started"
        return self._server.server_address[1]

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ending in `/v1`."""
        return f"{self.root_url}/v1"

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def recorded(self, where: Callable[[RecordedRequest], bool] = lambda _: True) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if where(r)]

    def last_request_carrying(self, marker: str) -> RecordedRequest:
        """The latest request whose JSON body mentions `marker` anywhere (tests put a unique one in)."""
        found = self.recorded(lambda r: marker in json.dumps(r.body))
        assert found, f"the upstream never received a request carrying {marker!r}"
        return found[-1]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients (and the gateway) drop connections, e.g. when a test abandons a stream.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    upstream: MockUpstream
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body would wait ~40 ms
    # for the peer's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    # --- plumbing -----------------------------------------------------------------------

    def _route(self) -> str:
        path = self.path.split("?", 1)[0]
        return path[len("/v1") :] if path.startswith("/v1/") else path

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.send_header(MARKER_HEADER, MARKER_VALUE)
        self.end_headers()
        self.wfile.write(raw)

    def _send_error(self, status: int, message: str, type_: str, param: str | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": type_, "param": param, "code": None}})

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header(MARKER_HEADER, MARKER_VALUE)
        self.end_headers()

    def _write_chunk(self, raw: bytes) -> None:
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _send_event(self, payload: Any) -> None:
        self._write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _finish_sse(self) -> None:
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- dispatch -----------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.upstream.record(RecordedRequest("GET", self.path, _lowercase(self.headers), None))
        if self._route().startswith(("/files", "/batches")):
            self._files_and_batches("GET", b"")

        if self._route().startswith("/responses/"):
            self._stored_response(self._route())
        elif self._route() == "/models":
            self._send_json(200, {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1677610602, "owned_by": "openai"}
                    for m in LISTED_MODELS
                ],
            })
        else:
            self._send_error(404, f"no route GET {self.path}", "invalid_request_error")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        raw = self._read_body()
        if self._route().startswith(("/files", "/batches")):
            self.upstream.record(RecordedRequest("POST", self.path, _lowercase(self.headers), raw.decode("latin-1")))
            self._files_and_batches("POST", raw)
            return
        if self._route() == "/token":
            # Google's OAuth token endpoint, for Vertex AI service accounts (a form body).
            self.upstream.record(RecordedRequest("POST", self.path, _lowercase(self.headers), raw.decode("latin-1")))
            self._send_json(200, {"access_token": VERTEX_ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
            return
        if self.headers.get("content-type", "").startswith("multipart/form-data"):
            self._upload(raw)
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.upstream.record(RecordedRequest("POST", self.path, _lowercase(self.headers), raw.decode("latin-1")))
            self._send_error(400, "request body is not valid JSON", "invalid_request_error")
            return
        self.upstream.record(RecordedRequest("POST", self.path, _lowercase(self.headers), body))

        model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str) and model.startswith("fail-") and model[5:].isdigit():
            status = int(model[5:])
            message, type_ = ERROR_MESSAGES.get(status, (f"upstream failed with {status}", "server_error"))
            self._send_error(status, message, type_)
            return

        route = self._route()
        if route.startswith("/model/") and route.endswith(("/converse", "/converse-stream")):
            self._bedrock(route)
            return
        if ":generateContent" in route or ":streamGenerateContent" in route:
            self._gemini(route)
            return
        if route == "/chat/completions":
            self._chat(body)
        elif route == "/completions":
            self._completions(body)
        elif route == "/embeddings":
            self._embeddings(body)
        elif route == "/messages":
            self._anthropic_messages(body)
        elif route == "/responses":
            self._responses(body)
        elif route in ("/v2/chat", "/v2/embed"):
            self._cohere(route, body)
        elif route in OLLAMA_ROUTES:
            self._ollama(route, body)
        elif route in ("/generate", "/generate_stream"):
            self._tgi(route)
        elif route == "/images/generations":
            self._images(body)
        elif route == "/audio/speech":
            self._speech()
        elif route == "/moderations":
            self._send_json(200, _fixture_reply(OPENAI_FIXTURES / "moderation.json"))
        elif route in ("/rerank", "/v2/rerank"):
            self._send_json(200, _fixture_reply(COHERE_FIXTURES / "rerank_v2.json"))
        else:
            self._send_error(404, f"no route POST {self.path}", "invalid_request_error")

    def do_DELETE(self) -> None:  # noqa: N802 - stdlib naming
        self.upstream.record(RecordedRequest("DELETE", self.path, _lowercase(self.headers), None))
        response_id = self._route().removeprefix("/responses/")
        if self._route().startswith("/files/"):
            self._files_and_batches("DELETE", b"")
        elif self._route().startswith("/responses/") and "/" not in response_id:
            self._send_json(200, {"id": response_id, "object": "response", "deleted": True})
        else:
            self._send_error(404, f"no route DELETE {self.path}", "invalid_request_error")

    # --- files and batches ----------------------------------------------------------------

    def _files_and_batches(self, method: str, raw: bytes) -> None:
        parts = self._route().strip("/").split("/")
        query = {k: v[-1] for k, v in parse_qs(self.path.partition("?")[2]).items()}
        mock = self.upstream
        with mock._lock:
            if parts == ["files"] and method == "POST":
                fields = _form_fields(self.headers.get("content-type", ""), raw)
                if "file" not in fields or "purpose" not in fields:
                    self._send_error(400, "'file' and 'purpose' are required", "invalid_request_error")
                    return
                filename, data = fields["file"]
                file_id = f"file-mock{next(mock._ids):04d}"
                obj = {"id": file_id, "object": "file", "bytes": len(data), "created_at": CREATED,
                       "filename": filename, "purpose": fields["purpose"][1].decode(), "status": "processed"}
                mock.files[file_id] = (obj, data)
                self._send_json(200, obj)
            elif parts == ["files"] and method == "GET":
                objs = [o for o, _ in mock.files.values() if query.get("purpose") in (None, o["purpose"])]
                self._send_json(200, _page(objs, query, 10_000))
            elif len(parts) in (2, 3) and parts[0] == "files":
                found = mock.files.get(parts[1])
                if found is None:
                    self._send_error(404, f"No such File object: {parts[1]}", "invalid_request_error")
                elif len(parts) == 3 and parts[2] == "content" and method == "GET":
                    self.send_response(200)
                    self.send_header("content-type", "application/octet-stream")
                    self.send_header("content-length", str(len(found[1])))
                    self.send_header(MARKER_HEADER, MARKER_VALUE)
                    self.end_headers()
                    self.wfile.write(found[1])
                elif len(parts) == 2 and method == "GET":
                    self._send_json(200, found[0])
                elif len(parts) == 2 and method == "DELETE":
                    del mock.files[parts[1]]
                    self._send_json(200, {"id": parts[1], "object": "file", "deleted": True})
                else:
                    self._send_error(405, "method not allowed", "invalid_request_error")
            elif parts == ["batches"] and method == "POST":
                body = json.loads(raw or b"{}")
                if body.get("input_file_id") not in mock.files:
                    self._send_error(400, "input_file_id names no uploaded file", "invalid_request_error", "input_file_id")
                    return
                batch_id = f"batch_mock{next(mock._ids):04d}"
                batch = {"id": batch_id, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
                         "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window"),
                         "status": "validating", "output_file_id": None, "error_file_id": None,
                         "created_at": CREATED, "request_counts": {"total": 0, "completed": 0, "failed": 0},
                         "metadata": body.get("metadata")}
                mock.batches[batch_id] = batch
                self._send_json(200, batch)
            elif parts == ["batches"] and method == "GET":
                self._send_json(200, _page(list(mock.batches.values()), query, 20))
            elif len(parts) in (2, 3) and parts[0] == "batches":
                batch = mock.batches.get(parts[1])
                if batch is None:
                    self._send_error(404, f"No such Batch object: {parts[1]}", "invalid_request_error")
                elif len(parts) == 3 and parts[2] == "cancel" and method == "POST":
                    batch.update(status="cancelling", cancelling_at=CREATED + 1)
                    self._send_json(200, batch)
                elif len(parts) == 2 and method == "GET":
                    self._send_json(200, batch)
                else:
                    self._send_error(405, "method not allowed", "invalid_request_error")
            else:
                self._send_error(404, f"no route {method} {self.path}", "invalid_request_error")

    # --- endpoints ----------------------------------------------------------------------

    def _upload(self, raw: bytes) -> None:
        """A transcription or translation: a multipart form with the audio in `file`."""
        form = parse_form(self.headers.get("content-type", ""), raw)
        self.upstream.record(RecordedRequest("POST", self.path, _lowercase(self.headers), form))
        if "file" not in form:
            self._send_error(400, "'file' is required", "invalid_request_error", "file")
            return
        transcript = _fixture_reply(OPENAI_FIXTURES / "transcription_verbose.json")
        response_format = form.get("response_format", "json")
        if response_format == "verbose_json":
            self._send_json(200, transcript)
        elif response_format in ("text", "srt", "vtt"):
            raw_text = (transcript["text"] + "\n").encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(raw_text)))
            self.send_header(MARKER_HEADER, MARKER_VALUE)
            self.end_headers()
            self.wfile.write(raw_text)
        else:
            self._send_json(200, {"text": transcript["text"]})

    def _images(self, body: dict[str, Any]) -> None:
        name = "images_gpt_image_1.json" if "gpt-image" in str(body.get("model", "")) else "images_dall_e_3.json"
        reply = _fixture_reply(OPENAI_FIXTURES / name)
        reply["data"] = reply["data"][:1] * int(body.get("n") or 1)
        self._send_json(200, reply)

    def _speech(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "audio/mpeg")
        self.send_header("transfer-encoding", "chunked")
        self.send_header(MARKER_HEADER, MARKER_VALUE)
        self.end_headers()
        for chunk in SPEECH_CHUNKS:
            self._write_chunk(chunk)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _gemini(self, route: str) -> None:
        if ":generateContent" in route:
            recorded = json.loads((GEMINI_FIXTURES / "reply_function_call.json").read_text())
            self._send_json(200, recorded["gemini"])
            return
        self._start_sse()
        for event in (GEMINI_FIXTURES / "stream_function_call.sse").read_text().split("\n\n"):
            if event.strip():
                self._write_chunk(event.encode() + b"\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _bedrock(self, route: str) -> None:
        if route.endswith("/converse"):
            self._send_json(200, json.loads((BEDROCK_FIXTURES / "reply_tool_use.json").read_text())["bedrock"])
            return
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("transfer-encoding", "chunked")
        self.send_header(MARKER_HEADER, MARKER_VALUE)
        self.end_headers()
        for event_type, payload in json.loads((BEDROCK_FIXTURES / "stream_tool_use.json").read_text())["events"]:
            self._write_chunk(event_stream_frame(event_type, payload))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cohere(self, route: str, body: dict[str, Any]) -> None:
        if route == "/v2/embed":
            self._send_json(200, json.loads((COHERE_FIXTURES / "reply_embed.json").read_text())["cohere"])
            return
        if not body.get("stream"):
            self._send_json(200, json.loads((COHERE_FIXTURES / "reply_tool_call.json").read_text())["cohere"])
            return
        self._start_sse()
        for event in (COHERE_FIXTURES / "stream_tool_call.sse").read_text().split("\n\n"):
            if event.strip():
                self._write_chunk(event.encode() + b"\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _tgi(self, route: str) -> None:
        if route == "/generate":
            self._send_json(200, json.loads((HUGGINGFACE_FIXTURES / "reply_generate.json").read_text())["tgi"])
            return
        self._start_sse()
        for event in (HUGGINGFACE_FIXTURES / "stream_generate.sse").read_text().split("\n\n"):
            if event.strip():
                self._write_chunk(event.encode() + b"\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _responses(self, body: dict[str, Any]) -> None:
        if not body.get("stream"):
            self._send_json(200, json.loads((OPENAI_FIXTURES / "responses_reply.json").read_text()))
            return
        self._start_sse()
        for event in (OPENAI_FIXTURES / "responses_stream.sse").read_text().split("\n\n"):
            if event.strip():
                self._write_chunk(event.encode() + b"\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stored_response(self, route: str) -> None:
        response_id = route.removeprefix("/responses/")
        if response_id.endswith("/input_items"):
            self._send_json(200, {
                "object": "list",
                "data": [{"id": "msg_input", "type": "message", "role": "user", "status": "completed",
                          "content": [{"type": "input_text", "text": "Say hi"}]}],
                "first_id": "msg_input",
                "last_id": "msg_input",
                "has_more": False,
            })
            return
        stored = json.loads((OPENAI_FIXTURES / "responses_reply.json").read_text())
        if response_id != stored["id"]:
            self._send_error(404, f"No response found with id '{response_id}'.", "invalid_request_error", "response_id")
            return
        self._send_json(200, stored)

    def _anthropic_messages(self, body: dict[str, Any]) -> None:
        if not body.get("stream"):
            recorded = json.loads((ANTHROPIC_FIXTURES / "reply_tool_use.json").read_text())
            self._send_json(200, recorded["anthropic"])
            return
        self._start_sse()
        for event in (ANTHROPIC_FIXTURES / "stream_tool_use.sse").read_text().split("\n\n"):
            if event.strip():
                self._write_chunk(event.encode() + b"\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _ollama(self, route: str, body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        if model.startswith("missing"):
            self._send_json(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        reply, stream = OLLAMA_ROUTES[route]
        # Ollama streams unless told not to.
        if stream is None or body.get("stream") is False:
            self._send_json(200, json.loads((OLLAMA_FIXTURES / reply).read_text())["ollama"])
            return
        self.send_response(200)
        self.send_header("content-type", "application/x-ndjson")
        self.send_header("transfer-encoding", "chunked")
        self.send_header(MARKER_HEADER, MARKER_VALUE)
        self.end_headers()
        for line in (OLLAMA_FIXTURES / stream).read_text().splitlines(keepends=True):
            if line.strip():
                self._write_chunk(line.encode())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chat(self, body: dict[str, Any]) -> None:
        model = body.get("model", "unknown")
        if not body.get("stream"):
            self._send_json(200, {
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": CHAT_REPLY},
                    "finish_reason": "stop",
                }],
                "usage": USAGE,
            })
            return

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        self._start_sse()
        self._send_event(chunk({"role": "assistant", "content": ""}))
        for i, piece in enumerate(CHAT_REPLY_CHUNKS):
            if model == "drop-midstream" and i == 2:
                # Abandon the response half-way: no terminating chunk, connection closed.
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send_event(chunk({"content": piece}))
        self._send_event(chunk({}, "stop"))
        if _wants_usage(body):
            self._send_event({
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [],
                "usage": USAGE,
            })
        self._finish_sse()

    def _completions(self, body: dict[str, Any]) -> None:
        model = body.get("model", "unknown")
        if not body.get("stream"):
            self._send_json(200, {
                "id": "cmpl-mock",
                "object": "text_completion",
                "created": CREATED,
                "model": model,
                "choices": [{"index": 0, "text": COMPLETION_TEXT, "logprobs": None, "finish_reason": "stop"}],
                "usage": USAGE,
            })
            return

        def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "cmpl-mock",
                "object": "text_completion",
                "created": CREATED,
                "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
            }

        self._start_sse()
        for piece in COMPLETION_TEXT_CHUNKS:
            self._send_event(chunk(piece))
        self._send_event(chunk("", "stop"))
        if _wants_usage(body):
            self._send_event({
                "id": "cmpl-mock",
                "object": "text_completion",
                "created": CREATED,
                "model": model,
                "choices": [],
                "usage": USAGE,
            })
        self._finish_sse()

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            count = 1
        elif isinstance(inputs, list) and inputs:
            count = len(inputs)
        else:
            self._send_error(400, "'input' must be a non-empty string or array", "invalid_request_error", "input")
            return
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i in range(count):
            vector = expected_embedding(i)
            data.append({
                "object": "embedding",
                "index": i,
                "embedding": encode_base64_float32(vector) if as_base64 else vector,
            })
        self._send_json(200, {
            "object": "list",
            "data": data,
            "model": body.get("model", "unknown"),
            "usage": {"prompt_tokens": EMBEDDING_PROMPT_TOKENS, "total_tokens": EMBEDDING_PROMPT_TOKENS},
        })


# Ollama route -> (reply fixture, NDJSON stream fixture or None when it never streams).
OLLAMA_ROUTES: dict[str, tuple[str, str | None]] = {
    "/api/chat": ("reply_chat_tool_call.json", "stream_chat_tool_call.ndjson"),
    "/api/generate": ("reply_generate.json", "stream_generate.ndjson"),
    "/api/embed": ("reply_embed.json", None),
}


def _fixture_reply(path: Path) -> Any:
    return json.loads(path.read_text())["reply"]


def parse_form(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart form's fields: text as str, `name[]` fields as lists, files as
    `{"filename", "content_type", "data"}` (the bytes as latin-1 text, so it records as JSON)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"content-type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            form[name] = {"filename": filename, "content_type": part.get_content_type(), "data": data.decode("latin-1")}
        elif name.endswith("[]"):
            form.setdefault(name, []).append(data.decode())
        else:
            form[name] = data.decode()
    return form


def _form_fields(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body's fields: name -> (file name or None, bytes)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"content-type: {content_type}\r\n\r\n".encode() + raw
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _page(items: list[dict[str, Any]], query: dict[str, str], default_limit: int) -> dict[str, Any]:
    """OpenAI's cursor page: newest first unless `order=asc`, after `after`, at most `limit`."""
    items = list(items) if query.get("order") == "asc" else list(reversed(items))
    ids = [i["id"] for i in items]
    if query.get("after") in ids:
        items = items[ids.index(query["after"]) + 1 :]
    limit = int(query.get("limit", default_limit))
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def _lowercase(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    upstream = MockUpstream().start(args.port)
    print(f"listening on {upstream.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        upstream.stop()


if __name__ == "__main__":
    main()
