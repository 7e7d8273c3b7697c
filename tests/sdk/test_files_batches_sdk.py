"""The official `openai` Python SDK's files and batches calls, pointed at llmgate, keep working."""

from __future__ import annotations

import json
import urllib.request
from typing import Callable

import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, Target
from mock_upstream import MockUpstream

gateway_only = pytest.mark.gateway_only

# A batch input file, with a CR LF and a byte that is not UTF-8, so a re-encoded upload shows.
INPUT = (
    b'{"custom_id":"r1","method":"POST","url":"/v1/chat/completions",'
    b'"body":{"model":"gpt-test","messages":[{"role":"user","content":"hi\\r\\n"}]}}\n'
    b'{"custom_id":"r2","method":"POST","url":"/v1/chat/completions",'
    b'"body":{"model":"gpt-test","messages":[{"role":"user","content":"caf\xe9"}]}}\n'
)


def new_key(target: Target, **fields: object) -> str:
    """A virtual key made with the master key."""
    request = urllib.request.Request(
        f"{target.root_url}/key/generate",
        data=json.dumps({"duration": None, **fields}).encode(),
        headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as reply:
        return json.load(reply)["key"]


def test_a_file_is_uploaded_listed_retrieved_read_and_deleted(client: openai.OpenAI) -> None:
    uploaded = client.files.create(file=("input.jsonl", INPUT), purpose="batch")

    assert uploaded.object == "file"
    assert uploaded.purpose == "batch"
    assert uploaded.bytes == len(INPUT)
    assert uploaded.id in [f.id for f in client.files.list(purpose="batch")]
    assert client.files.retrieve(uploaded.id).filename == "input.jsonl"
    assert client.files.content(uploaded.id).content == INPUT

    deleted = client.files.delete(uploaded.id)
    assert deleted.deleted is True
    assert deleted.id == uploaded.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_a_batch_is_created_retrieved_listed_and_cancelled(client: openai.OpenAI) -> None:
    file = client.files.create(file=("input.jsonl", INPUT), purpose="batch")

    batch = client.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "sdk"},
    )

    assert batch.object == "batch"
    assert batch.input_file_id == file.id
    assert client.batches.retrieve(batch.id).status == "validating"
    assert batch.id in [b.id for b in client.batches.list(limit=100)]
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status == "cancelling"


@gateway_only
def test_an_upload_reaches_the_openai_deployment_intact_with_its_key(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    uploaded = client.files.create(
        file=("input.jsonl", INPUT), purpose="batch", extra_body={"model": "gpt-test"}
    )

    stored, data = upstream.files[uploaded.id]
    assert data == INPUT
    assert stored["filename"] == "input.jsonl"
    sent = upstream.recorded(lambda r: r.method == "POST" and r.path.endswith("/files"))[-1]
    assert sent.headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert 'name="model"' not in sent.body, "the gateway's own field is not forwarded"


@gateway_only
def test_a_virtual_key_reaches_only_its_own_files_and_batches(
    make_client: Callable[..., openai.OpenAI], target: Target
) -> None:
    mine = make_client(api_key=new_key(target))
    theirs = make_client(api_key=new_key(target))
    file = mine.files.create(file=("input.jsonl", INPUT), purpose="batch")
    batch = mine.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")

    with pytest.raises(openai.NotFoundError):
        theirs.files.retrieve(file.id)
    with pytest.raises(openai.NotFoundError):
        theirs.files.content(file.id)
    with pytest.raises(openai.NotFoundError):
        theirs.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        theirs.batches.cancel(batch.id)
    assert file.id not in [f.id for f in theirs.files.list()]
    assert batch.id not in [b.id for b in theirs.batches.list()]
    assert [f.id for f in mine.files.list()] == [file.id]
    assert [b.id for b in mine.batches.list()] == [batch.id]


@gateway_only
def test_a_provider_the_gateway_does_not_pass_files_to_is_a_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(
            file=("input.jsonl", INPUT), purpose="batch", extra_body={"custom_llm_provider": "vertex_ai"}
        )

    error = info.value.body
    assert isinstance(error, dict)
    assert error["param"] == "custom_llm_provider"
    assert error["code"] == "400"
