#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/seeds/<target>/ from the recorded wire formats in
tests/fixtures and the example configs. Run from anywhere: python3 fuzz/make_seeds.py"""
import json
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "seeds")


def fixture(path, mode="r"):
    with open(os.path.join(FIX, path), mode) as f:
        return f.read()


def put(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


# Reads cut as fuzz_targets' `split` does: a count byte, then that many lengths (each + 1).
WHOLE = b"\x00"
CUTS = bytes([4, 0, 6, 16, 63])


def dump(value):
    return json.dumps(value, separators=(",", ":"))


# config: the example configs, with their `os.environ/` references given values by the
# `environment_variables` overlay (itself read from the environment for one of them).
ENV_OVERLAY = """environment_variables:
  OPENAI_API_KEY: sk-seed
  AZURE_API_BASE: https://seed.openai.azure.com
  AZURE_API_KEY: az-seed
  GROQ_API_KEY: gq-seed
  LITELLM_MASTER_KEY: sk-seed-master-key-0123456789abcdef
  REDIS_HOST: 127.0.0.1
  REDIS_PORT: 6379
  DATABASE_URL: "sqlite::memory:"
  SEARCH_PATH: os.environ/PATH
"""
for name in sorted(os.listdir(os.path.join(ROOT, "config"))):
    with open(os.path.join(ROOT, "config", name)) as f:
        put("config", name, ENV_OVERLAY + f.read())
put("config", "full.yaml", """model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/K, rpm: 10, tpm: 1000, weight: 2, order: 1, max_parallel_requests: 4, timeout: 30, stream_timeout: 5, drop_params: true, additional_drop_params: [user]}
    model_info: {id: one, base_model: gpt-4o, max_input_tokens: 1000, mode: chat}
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_key: os.environ/K}
  - model_name: tgi
    litellm_params: {model: huggingface/m, api_base: 'http://tgi', bos_token: '<s>', roles: {user: {pre_message: '[U]', post_message: '[/U]'}}}
  - model_name: claude
    litellm_params: {model: bedrock/anthropic.claude-3-haiku-20240307-v1:0, aws_access_key_id: A, aws_secret_access_key: s, aws_region_name: us-east-1}
  - model_name: mock
    litellm_params: {model: openai/x, mock_response: litellm.RateLimitError, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
environment_variables:
  K: sk-seed
  LANGFUSE_PUBLIC_KEY: pk-lf-1
  LANGFUSE_SECRET_KEY: sk-lf-1
  GENERIC_LOGGER_ENDPOINT: https://logs.example.com/llm
  GENERIC_LOGGER_HEADERS: "authorization=Bearer tok,x-team=ml"
litellm_settings:
  drop_params: true
  num_retries: 1
  request_timeout: 60
  cooldown_time: 3
  max_budget: 10
  budget_duration: 30d
  success_callback: ["langfuse", "generic_api"]
  failure_callback: ["langfuse"]
  turn_off_message_logging: true
  default_key_generate_params: {duration: 1mo, max_budget: 5}
  cache: true
  cache_params: {type: local, ttl: 60, namespace: ns, supported_call_types: [acompletion, aembedding], mode: default_off, max_size_in_memory: 100}
router_settings:
  routing_strategy: usage-based-routing-v2
  routing_strategy_args: {ttl: 60, max_latency_list_size: 5, lowest_latency_buffer: 0.1}
  num_retries: 2
  timeout: 30
  stream_timeout: 10
  retry_after: 1
  allowed_fails: 2
  allowed_fails_policy: {RateLimitErrorAllowedFails: 3, TimeoutErrorAllowedFails: 1}
  retry_policy: {RateLimitErrorRetries: 2, TimeoutErrorRetries: 1}
  cooldown_time: 5
  enable_pre_call_checks: true
  model_group_alias: {gpt4: gpt-4o, hidden: {model: gpt-4o, hidden: true}}
  fallbacks: [{gpt-4o: [claude]}]
  context_window_fallbacks: [{gpt-4o: [tgi]}]
general_settings:
  master_key: sk-seed-master-key-0123456789abcdef
  database_url: "sqlite::memory:"
  max_request_size_mb: 4
  proxy_batch_write_at: 5
  background_health_checks: true
  health_check_interval: 60
  health_check_timeout: 5
  litellm_key_header_name: X-Key
  allowed_ips: ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"]
  blocked_ips: ["10.9.0.0/16"]
  use_x_forwarded_for: true
  trusted_proxy_ranges: ["10.0.0.2", "fd00::/8"]
  cors_allow_origins: ["https://app.example.com"]
  spend_journal_path: "off"
""")

# chat_request: a route byte (0 chat, 1 completion, 2 embedding, 3 /v1/messages; 0x10 drop
# unsupported params, 0x20 tools into the prompt), then the body.
for provider in ["anthropic", "bedrock", "cohere", "gemini", "ollama"]:
    name = "request_chat_tools_images.json" if provider == "ollama" else "request_tools_images.json"
    case = json.loads(fixture(f"{provider}/{name}"))
    request = dict(case["openai"], model="m")
    put("chat_request", f"chat_{provider}", b"\x00" + dump(request).encode())
    put("chat_request", f"chat_{provider}_stream_drop", b"\x30" + dump(dict(
        request, stream=True, stream_options={"include_usage": True},
        additional_drop_params=["user"], metadata={"tags": ["a"]},
        fallbacks=["b", {"model": "c"}], cache={"no-cache": True, "ttl": 5}, caching=True,
        num_retries=1, timeout=3.5, drop_params=False)).encode())
anthropic = json.loads(fixture("anthropic/request_tools_images.json"))["anthropic"]
put("chat_request", "messages_anthropic", b"\x03" + dump(dict(anthropic, model="m", stream=True, thinking={"type": "enabled", "budget_tokens": 2000}, stop_sequences=["x"], metadata={"user_id": "u"})).encode())
put("chat_request", "completion", b"\x01" + dump({"model": "m", "prompt": ["Say hi", "and bye"], "max_tokens": 5, "stream": True, "echo": False, "logprobs": 2, "suffix": "!"}).encode())
put("chat_request", "embedding", b"\x02" + dump({"model": "m", "input": ["one", "two"], "encoding_format": "base64", "dimensions": 8}).encode())
# A /v1/responses body is read as one whatever the route byte says (0x10: drop unsupported).
responses = json.loads(fixture("openai/responses_request_tools_images.json"))["responses"]
put("chat_request", "responses", b"\x10" + dump(dict(responses, model="m")).encode())
put("chat_request", "responses_drop", b"\x10" + dump(dict(responses, model="m", tools=[{"type": "web_search"}], previous_response_id="resp_x", stream=True)).encode())
put("chat_request", "mock", b"\x00" + dump({"model": "m", "messages": [{"role": "user", "content": "hi"}], "mock_response": "litellm.RateLimitError", "mock_timeout": False}).encode())

# sse: a dialect byte (0 OpenAI, 1 Anthropic, 2 Gemini, 3 Cohere, 4 TGI, 5 Ollama, 6 Bedrock;
# +8 or +16 reshapes, 0x40 asks for usage), then the reads and the stream.
def openai_sse(jsonl):
    lines = [l for l in jsonl.splitlines() if l.strip()]
    return "".join(f"data: {l}\n\n" for l in lines) + "data: [DONE]\n\n"


streams = [
    (0, "openai", openai_sse(fixture("anthropic/stream_tool_use.openai.jsonl")).encode()),
    (1, "anthropic", fixture("anthropic/stream_tool_use.sse", "rb")),
    (2, "gemini", fixture("gemini/stream_function_call.sse", "rb")),
    (3, "cohere", fixture("cohere/stream_tool_call.sse", "rb")),
    (4, "huggingface", fixture("huggingface/stream_generate.sse", "rb")),
    (5, "ollama", fixture("ollama/stream_chat_tool_call.ndjson", "rb")),
]


def frame(headers, payload):
    """One AWS event-stream message: prelude, CRC, string headers, payload, CRC."""
    head = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        head += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(kind, payload):
    return frame([(":event-type", kind), (":message-type", "event"),
                  (":content-type", "application/json")], dump(payload).encode())


bedrock = b"".join(event(k, p) for k, p in json.loads(fixture("bedrock/stream_tool_use.json"))["events"])
bedrock_error = event("messageStart", {"role": "assistant"}) + frame(
    [(":message-type", "exception"), (":exception-type", "throttlingException")],
    b'{"message":"Too many requests"}')
streams.append((6, "bedrock", bedrock))
for dialect, name, body in streams:
    put("sse", f"{name}_whole", bytes([dialect]) + WHOLE + body)
    put("sse", f"{name}_cut_usage", bytes([dialect | 0x40]) + CUTS + body)
put("sse", "openai_reshaped", bytes([0 | 8]) + CUTS + streams[0][2])
# The Responses API's own events (read by the passthrough reader), and a chat stream that the
# `/v1/responses` rewriter turns into them.
put("sse", "responses_native", b"\x00" + CUTS + fixture("openai/responses_stream.sse", "rb"))
put("sse", "responses_from_chat", b"\x40" + CUTS + openai_sse(fixture("openai/responses_stream_from_chat.openai.jsonl")).encode())
put("sse", "openai_error_event", b"\x00\x00data: {\"error\":{\"message\":\"overloaded\",\"type\":\"overloaded_error\"}}\n\n")

# bedrock_eventstream: the reads, then the frames.
put("bedrock_eventstream", "tool_use_whole", WHOLE + bedrock)
put("bedrock_eventstream", "tool_use_cut", CUTS + bedrock)
put("bedrock_eventstream", "exception", bytes([1, 9]) + bedrock_error)
