"""The official `openai` SDK against a raw `huggingface/` deployment (`hf-raw-test`, with a
custom prompt template): the gateway writes the prompt, calls TGI's `generate` and
`generate_stream` on the mock (answered from tests/fixtures/huggingface) and answers in
OpenAI's format."""

from __future__ import annotations

import openai
import pytest

from conftest import HF_TEMPLATE_CASE, UPSTREAM_KEY
from mock_upstream import MockUpstream

gateway_only = pytest.mark.gateway_only

ANSWER = "The capital of Italy is Rome."


@gateway_only
def test_a_templated_chat_reaches_generate_with_the_written_prompt(client: openai.OpenAI, upstream: MockUpstream) -> None:
    reply = client.chat.completions.create(
        model="hf-raw-test",
        messages=HF_TEMPLATE_CASE["messages"],
        max_tokens=40,
    )

    choice = reply.choices[0]
    assert choice.message.content == ANSWER
    assert choice.finish_reason == "stop"
    assert reply.usage.completion_tokens == 8
    assert reply.usage.prompt_tokens > 0
    sent = upstream.recorded(lambda r: r.path == "/generate")[-1]
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.body["inputs"] == HF_TEMPLATE_CASE["prompt"]
    assert sent.body["parameters"]["max_new_tokens"] == 40
    assert sent.body["parameters"]["details"] is True
    assert sent.body["parameters"]["return_full_text"] is False


@gateway_only
def test_a_templated_stream_reads_as_openai_chunks(client: openai.OpenAI, upstream: MockUpstream) -> None:
    stream = client.chat.completions.create(
        model="hf-raw-test",
        messages=HF_TEMPLATE_CASE["messages"],
        stream=True,
        stream_options={"include_usage": True},
    )

    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == ANSWER
    assert finish == "stop"
    assert (usage.prompt_tokens, usage.completion_tokens) == (31, 8)
    sent = upstream.recorded(lambda r: r.path == "/generate_stream")[-1]
    assert sent.body["inputs"] == HF_TEMPLATE_CASE["prompt"]


@gateway_only
def test_a_completion_on_a_templated_deployment_is_a_text_completion(client: openai.OpenAI, upstream: MockUpstream) -> None:
    reply = client.completions.create(model="hf-raw-test", prompt="Capital of Italy?", max_tokens=16)

    assert reply.object == "text_completion"
    assert reply.choices[0].text == ANSWER
    sent = upstream.recorded(lambda r: r.path == "/generate")[-1]
    assert sent.body["inputs"].endswith("### User:\nCapital of Italy?\n\n### Assistant:\n")
