"""The official `openai` SDK against `cohere_chat/` and `cohere/` deployments: the gateway speaks
Cohere's v2 API to the mock (answered from tests/fixtures/cohere, streams as SSE events) and
OpenAI's format back."""

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
def test_a_cohere_tool_call_reads_as_an_openai_completion(client: openai.OpenAI, upstream: MockUpstream) -> None:
    reply = client.chat.completions.create(
        model="cohere-test",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "cohere-marker: weather in Paris?"},
        ],
        tools=TOOLS,
        tool_choice="required",
        top_p=0.5,
    )

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I will look up the weather in Paris."
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name) == ("get_weather_k8ymp5a1y7nn", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (982, 54)
    sent = upstream.last_request_carrying("cohere-marker")
    assert sent.path == "/v2/chat"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.body["model"] == "command-r-plus"
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (sent.body["tool_choice"], sent.body["p"]) == ("REQUIRED", 0.5)


@gateway_only
def test_a_cohere_stream_reads_as_openai_chunks(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="cohere-test",
        messages=[{"role": "user", "content": "Weather in Paris and Madrid?"}],
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )

    text, finish, usage, arguments = "", None, None, {}
    names = []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                if call.function.name:
                    names.append(call.function.name)
                arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
            finish = choice.finish_reason or finish
    assert text == "I will check the weather."
    assert names == ["get_weather", "get_weather"]
    assert [json.loads(arguments[i]) for i in (0, 1)] == [{"city": "Paris"}, {"city": "Madrid"}]
    assert finish == "tool_calls"
    assert usage.total_tokens == 1041


@gateway_only
def test_cohere_embeddings_carry_the_input_type(client: openai.OpenAI, upstream: MockUpstream) -> None:
    reply = client.embeddings.create(
        model="cohere-embed-test",
        input=["hello", "goodbye"],
        extra_body={"input_type": "search_query"},
    )

    assert [d.index for d in reply.data] == [0, 1]
    assert reply.data[0].embedding == pytest.approx([0.016296387, -0.008354187, -0.04699707, 0.021133423])
    assert reply.usage.prompt_tokens == 2
    sent = upstream.recorded(lambda r: r.path == "/v2/embed")[-1]
    assert sent.body["texts"] == ["hello", "goodbye"]
    assert (sent.body["input_type"], sent.body["embedding_types"]) == ("search_query", ["float"])


@gateway_only
def test_a_parameter_cohere_lacks_is_a_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="cohere-test",
            messages=[{"role": "user", "content": "hi"}],
            n=2,
        )

    assert "UnsupportedParamsError" in str(raised.value)
    assert "['n']" in str(raised.value)
