"""The official `openai` SDK against a `bedrock/converse/` deployment with a Bedrock API key
(`Bearer`): the gateway speaks Converse to the mock (answered from tests/fixtures/bedrock, the
stream as binary event-stream frames) and OpenAI's format back."""

from __future__ import annotations

import json

import openai
import pytest

from conftest import UPSTREAM_KEY
from mock_upstream import MockUpstream

gateway_only = pytest.mark.gateway_only

TOOLS = [{
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}]

PATH = "/model/anthropic.claude-3-haiku-20240307-v1%3A0"


@gateway_only
def test_a_converse_reply_with_a_tool_use(client: openai.OpenAI, upstream: MockUpstream) -> None:
    reply = client.chat.completions.create(
        model="bedrock-test",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
        max_tokens=50,
    )

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check the weather."
    call = choice.message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert call.id == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert reply.usage.prompt_tokens == 412
    sent = upstream.recorded(lambda r: r.path.endswith("/converse"))[-1]
    assert sent.path == f"{PATH}/converse"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.body["system"] == [{"text": "Be brief."}]
    assert sent.body["inferenceConfig"] == {"maxTokens": 50}


@gateway_only
def test_a_converse_stream_reads_as_openai_chunks(client: openai.OpenAI, upstream: MockUpstream) -> None:
    stream = client.chat.completions.create(
        model="bedrock-test",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )

    text, finish, usage, arguments, ids = "", None, None, "", []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                ids += [call.id] if call.id else []
                arguments += call.function.arguments or ""
            finish = choice.finish_reason or finish
    assert text == "Let me check."
    assert ids == ["tooluse_Qx1"]
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"
    assert usage is not None and usage.total_tokens == 469
    assert upstream.recorded(lambda r: r.path.endswith("/converse-stream"))[-1].path == f"{PATH}/converse-stream"
