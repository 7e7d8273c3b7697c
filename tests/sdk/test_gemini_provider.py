"""The official `openai` SDK against a `gemini/` deployment: the gateway speaks
`generateContent` to the mock (answered from tests/fixtures/gemini) and OpenAI's format back."""

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


@gateway_only
def test_a_gemini_reply_with_a_thought_and_a_function_call(client: openai.OpenAI, upstream: MockUpstream) -> None:
    reply = client.chat.completions.create(
        model="gemini-test",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
    )

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    call = choice.message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert call.id.startswith("call_")
    assert reply.usage.completion_tokens == 65
    sent = upstream.recorded(lambda r: ":generateContent" in r.path)[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == UPSTREAM_KEY
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}]


@gateway_only
def test_a_gemini_stream_reads_as_openai_chunks(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gemini-test",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        stream=True,
        stream_options={"include_usage": True},
    )

    text, finish, usage, calls = "", None, None, []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            calls.extend(choice.delta.tool_calls or [])
            finish = choice.finish_reason or finish
    assert text == "The sky is clear."
    assert [c.function.name for c in calls] == ["get_weather"]
    assert finish == "tool_calls"
    assert usage.total_tokens == 26
