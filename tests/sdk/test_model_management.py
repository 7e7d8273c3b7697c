"""A model added at runtime through `/model/new` (store_model_in_db) is one the official openai SDK
lists with `client.models.list()` and calls, with no restart; deleted, it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import openai
import pytest

from conftest import (
    MASTER_KEY,
    STARTUP_TIMEOUT_S,
    UPSTREAM_KEY,
    free_port,
    gateway_binary,
    stop,
    wait_until_alive,
)
from mock_upstream import CHAT_REPLY, MockUpstream

pytestmark = pytest.mark.gateway_only

# The credential of the model added at runtime: the upstream sees it, no answer shows it.
ADDED_KEY = f"{UPSTREAM_KEY}-added-at-runtime"


@pytest.fixture(scope="module")
def managed_root(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway of its own that keeps models in its SQLite database; its root URL."""
    workdir = tmp_path_factory.mktemp("llmgate-models")
    config = workdir / "config.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: gpt-test\n"
        f"    litellm_params: {{model: openai/gpt-test, api_base: \"{upstream.url}\", api_key: {UPSTREAM_KEY}}}\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
        "  store_model_in_db: true\n"
        f"  database_url: sqlite://{workdir / 'models.db'}\n"
    )
    log_path = workdir / "llmgate.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("LITELLM_MASTER_KEY", "DATABASE_URL")}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(gateway_binary()), "--config", str(config), "--port", str(port), "--num_workers", "1"],
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
        pytest.fail(f"{failure}\n--- llmgate output ---\n{log_path.read_text(errors='replace')}")
    try:
        yield root_url
    finally:
        stop(process)
        assert ADDED_KEY not in Path(log_path).read_text(errors="replace"), "a credential was logged"


def admin_post(root_url: str, path: str, body: dict) -> dict:
    """POSTs JSON with the master key (plain HTTP: the SDK has no model API)."""
    request = urllib.request.Request(
        f"{root_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as reply:
        text = reply.read().decode()
    assert ADDED_KEY not in text
    return json.loads(text)


def test_a_model_added_at_runtime_is_listed_and_called_by_the_sdk(
    managed_root: str, upstream: MockUpstream
) -> None:
    client = openai.OpenAI(base_url=f"{managed_root}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30.0)
    assert "added-at-runtime" not in {m.id for m in client.models.list().data}

    added = admin_post(
        managed_root,
        "/model/new",
        {
            "model_name": "added-at-runtime",
            "litellm_params": {"model": "openai/gpt-test", "api_base": upstream.url, "api_key": ADDED_KEY},
        },
    )
    assert added["model_name"] == "added-at-runtime"
    assert added["model_info"]["db_model"] is True

    assert "added-at-runtime" in {m.id for m in client.models.list().data}
    reply = client.chat.completions.create(
        model="added-at-runtime", messages=[{"role": "user", "content": "Say hello (runtime-model)"}]
    )
    assert reply.choices[0].message.content == CHAT_REPLY
    seen = upstream.last_request_carrying("runtime-model")
    assert seen.headers.get("authorization") == f"Bearer {ADDED_KEY}"

    admin_post(managed_root, "/model/delete", {"id": added["model_id"]})
    assert "added-at-runtime" not in {m.id for m in client.models.list().data}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="added-at-runtime", messages=[{"role": "user", "content": "hi"}])
    assert "/v1/models" in str(info.value)
