"""Fixtures for the SDK suite: a mock OpenAI upstream and the real `llmgate` binary in front of it.

Environment:
- `LLMGATE_BIN`: the gateway binary (default `target/debug/llmgate`, relative to the repo root).
- `LLMGATE_SDK_TARGET=mock`: point the SDK straight at the mock upstream instead of the
  gateway, to check the mock and the tests themselves; gateway-only tests are skipped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import openai
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mock_upstream import MockUpstream  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-master-test-sdk-4d1f"
UPSTREAM_KEY = "sk-upstream"
STARTUP_TIMEOUT_S = 20.0

# Prices set on the gpt-test deployment, so the cost of a mock reply is known exactly. Written
# out in plain decimal: YAML 1.1 parsers read `1e-06` (no dot) as a string.
INPUT_COST_PER_TOKEN_YAML = "0.000001"
OUTPUT_COST_PER_TOKEN_YAML = "0.000002"
INPUT_COST_PER_TOKEN = float(INPUT_COST_PER_TOKEN_YAML)
OUTPUT_COST_PER_TOKEN = float(OUTPUT_COST_PER_TOKEN_YAML)

# The custom-template case the `hf-raw-test` deployment is configured from.
HF_TEMPLATE_CASE = json.loads((REPO_ROOT / "tests" / "fixtures" / "huggingface" / "template_custom.json").read_text())

DIRECT_TO_MOCK = os.environ.get("LLMGATE_SDK_TARGET", "").lower() == "mock"

# Loopback traffic must never go through a proxy configured in the environment.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name, ""), "127.0.0.1", "localhost"]))

_gateway_log: Path | None = None


@dataclass(frozen=True)
class Target:
    """Where the SDK sends its requests."""

    root_url: str
    through_gateway: bool

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"


VERTEX_PROJECT = "proj-sdk"


def vertex_service_account(root_url: str) -> str:
    """A throwaway service-account key file whose token endpoint is the mock's `/token`."""
    workdir = Path(tempfile.mkdtemp(prefix="llmgate-vertex-"))
    key = workdir / "key.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
        check=True,
        capture_output=True,
    )
    account = workdir / "service-account.json"
    account.write_text(json.dumps({
        "type": "service_account",
        "project_id": VERTEX_PROJECT,
        "private_key_id": "sdk-test",
        "private_key": key.read_text(),
        "client_email": "sdk-test@proj-sdk.iam.gserviceaccount.com",
        "token_uri": f"{root_url}/token",
    }))
    return str(account)


def gateway_config(upstream_url: str) -> str:
    def deployment(name: str, model: str, extra: str = "", base: str = upstream_url) -> str:
        return (
            f"  - model_name: {name}\n"
            f"    litellm_params: {{model: {model}, api_base: \"{base}\", api_key: {UPSTREAM_KEY}{extra}}}\n"
        )

    # Ollama's native API lives at the server root (`/api/chat`), not under `/v1`.
    ollama_base = upstream_url.removesuffix("/v1")
    # A raw Hugging Face deployment (TGI's `generate`, at the root too): the recorded case's
    # custom prompt template, written as YAML flow (JSON values are YAML).
    hf_template = "".join(f", {k}: {json.dumps(v)}" for k, v in HF_TEMPLATE_CASE["litellm_params"].items() if k != "model")

    prices = f", input_cost_per_token: {INPUT_COST_PER_TOKEN_YAML}, output_cost_per_token: {OUTPUT_COST_PER_TOKEN_YAML}"
    return (
        "model_list:\n"
        + deployment("gpt-test", "openai/gpt-test", prices)
        + deployment("instruct-test", "text-completion-openai/instruct-test")
        + deployment("embed-test", "openai/embed-test")
        + deployment("broken", "openai/fail-503")
        + deployment("broken-stream", "openai/fail-503")
        + deployment("limited", "openai/fail-429")
        + deployment("midstream-drop", "openai/drop-midstream")
        + deployment("claude-test", "anthropic/claude-3-7-sonnet-20250219")
        # The Responses API: passed through to an OpenAI deployment, served as chat by a server
        # without it.
        + deployment("responses-native", "openai/responses-native", prices)
        + deployment("responses-via-chat", "hosted_vllm/responses-via-chat", prices)
        + deployment("gemini-test", "gemini/gemini-2.5-flash", base=ollama_base)
        + deployment(
            "vertex-test",
            "vertex_ai/gemini-2.5-flash",
            f", vertex_project: {VERTEX_PROJECT}, vertex_location: us-central1, vertex_credentials: {vertex_service_account(ollama_base)}",
            base=ollama_base,
        )
        + deployment("hf-raw-test", "huggingface/my-org/vicuna-style-13b", hf_template, base=ollama_base)
        + deployment("cohere-test", "cohere_chat/command-r-plus", base=ollama_base)
        + deployment("bedrock-test", "bedrock/converse/anthropic.claude-3-haiku-20240307-v1:0", base=ollama_base)
        + deployment("cohere-embed-test", "cohere/embed-english-v3.0", base=ollama_base)
        + deployment("ollama-test", "ollama_chat/llama3.1", base=ollama_base)
        + deployment("ollama-generate-test", "ollama/llama3.2", base=ollama_base)
        + deployment("ollama-embed-test", "ollama/all-minilm", base=ollama_base)
        + deployment("ollama-missing", "ollama_chat/missing-model", base=ollama_base)
        + deployment("image-test", "openai/dall-e-3")
        + deployment("tts-test", "openai/tts-1")
        + deployment("whisper-test", "openai/whisper-1")
        + deployment("moderation-test", "openai/omni-moderation-latest")
        + deployment("rerank-test", "cohere/rerank-v3.5", base=ollama_base)
        + "  - model_name: mocked-429\n"
        + "    litellm_params: {model: openai/x, mock_response: \"litellm.RateLimitError\"}\n"
        + "litellm_settings:\n"
        + "  num_retries: 0\n"
        + "general_settings:\n"
        + f"  master_key: {MASTER_KEY}\n"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_binary() -> Path:
    path = Path(os.environ.get("LLMGATE_BIN", "target/debug/llmgate"))
    return path if path.is_absolute() else REPO_ROOT / path


def wait_until_alive(root_url: str, process: subprocess.Popen, deadline: float) -> str | None:
    """Poll `/health/liveliness`; None once it answers 200, else why it never did."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"llmgate exited with status {process.returncode} before answering"
        try:
            with opener.open(f"{root_url}/health/liveliness", timeout=2) as reply:
                if reply.status == 200:
                    return None
                last = f"status {reply.status}"
        except urllib.error.HTTPError as err:
            last = f"status {err.code}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.1)
    return f"/health/liveliness did not answer 200 within {STARTUP_TIMEOUT_S:.0f} s (last: {last})"


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def upstream() -> Iterator[MockUpstream]:
    mock = MockUpstream().start()
    yield mock
    mock.stop()


@pytest.fixture(scope="session")
def target(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if DIRECT_TO_MOCK:
        yield Target(root_url=upstream.root_url, through_gateway=False)
        return

    global _gateway_log
    binary = gateway_binary()
    if not binary.is_file():
        pytest.exit(f"gateway binary not found at {binary} (set LLMGATE_BIN)", returncode=1)

    workdir = tmp_path_factory.mktemp("llmgate")
    config = workdir / "config.yaml"
    config.write_text(gateway_config(upstream.url))
    _gateway_log = workdir / "llmgate.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("LITELLM_MASTER_KEY", "DATABASE_URL")}
    with open(_gateway_log, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "--config", str(config), "--port", str(port), "--num_workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
        )
    root_url = f"http://127.0.0.1:{port}"
    failure = wait_until_alive(root_url, process, time.monotonic() + STARTUP_TIMEOUT_S)
    if failure is not None:
        stop(process)
        pytest.exit(f"{failure}\n--- llmgate output ---\n{_gateway_log.read_text(errors='replace')}", returncode=1)
    try:
        yield Target(root_url=root_url, through_gateway=True)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def make_client(target: Target) -> Callable[..., openai.OpenAI]:
    """An SDK client for the target; keyword arguments override the defaults."""

    def build(**overrides: object) -> openai.OpenAI:
        options: dict[str, object] = {
            "base_url": target.base_url,
            "api_key": MASTER_KEY,
            "max_retries": 0,
            "timeout": 30.0,
        }
        options.update(overrides)
        return openai.OpenAI(**options)  # type: ignore[arg-type]

    return build


@pytest.fixture(scope="session")
def client(make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    return make_client()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gateway_only: needs the llmgate binary; skipped when aimed at the mock")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not DIRECT_TO_MOCK:
        return
    skip = pytest.mark.skip(reason="LLMGATE_SDK_TARGET=mock: checks gateway behaviour")
    for item in items:
        if "gateway_only" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest hook
    if _gateway_log is None or not _gateway_log.exists():
        return
    if not (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        return
    lines = _gateway_log.read_text(errors="replace").splitlines()
    terminalreporter.section("llmgate output (last 200 lines)")
    for line in lines[-200:]:
        terminalreporter.write_line(line)
