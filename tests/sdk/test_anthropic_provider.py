"""The official `openai` SDK against an `anthropic/` deployment: the gateway speaks the Messages
API to the mock (answered from tests/fixtures/anthropic) and OpenAI's format to the SDK."""

from __future__ import annotations

import json

import openai
import pytest

from conftest import UPSTREAM_KEY
from mock_upstream import MockUpstream

gateway_only = pytest.mark.gateway_only

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}]


@gateway_only
def test_a_tool_call_reply_from_anthropic_reads_as_an_openai_completion(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    reply = client.chat.completions.create(
        model="claude-test",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
    )

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll look that up."
    call = choice.message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris", "unit": "celsius"})
    assert reply.usage.prompt_tokens == 472 + 100 + 2048
    sent = upstream.recorded(lambda r: r.path == "/v1/messages")[-1]
    assert sent.headers["x-api-key"] == UPSTREAM_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent.body["tools"][0]["name"] == "get_weather"


@gateway_only
def test_an_anthropic_stream_reads_as_openai_chunks(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-test",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )

    text, arguments, finish, usage = "", "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                arguments += call.function.arguments or ""
            finish = choice.finish_reason or finish
    assert text == "Okay, let's check the weather."
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"
    assert (usage.prompt_tokens, usage.completion_tokens) == (472, 89)
