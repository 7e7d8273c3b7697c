"""The official `openai` SDK against `ollama_chat/` and `ollama/` deployments: the gateway speaks
Ollama's native API to the mock (answered from tests/fixtures/ollama, streams as NDJSON) and
OpenAI's format to the SDK."""

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
def test_a_tool_call_reply_from_ollama_chat_reads_as_an_openai_completion(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    reply = client.chat.completions.create(
        model="ollama-test",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "ollama-tool-call-marker: weather where this was taken?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ]},
        ],
        tools=TOOLS,
        max_tokens=50,
    )

    choice = reply.choices[0]
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "llama3.1"
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris", "unit": "celsius"})
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (122, 33)
    sent = upstream.last_request_carrying("ollama-tool-call-marker")
    assert sent.path == "/api/chat"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.body["stream"] is False
    assert sent.body["messages"][1]["images"] == ["iVBORw0KGgo="]
    assert sent.body["tools"] == TOOLS
    assert sent.body["options"] == {"num_predict": 50}


@gateway_only
def test_an_ollama_ndjson_stream_reads_as_openai_chunks(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="ollama-test",
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
    assert (usage.prompt_tokens, usage.completion_tokens) == (95, 27)


@gateway_only
def test_ollama_generate_serves_chat_and_completions(client: openai.OpenAI, upstream: MockUpstream) -> None:
    reply = client.chat.completions.create(
        model="ollama-generate-test",
        messages=[{"role": "user", "content": "ollama-generate-marker: why is the sky blue?"}],
    )
    assert reply.choices[0].message.content == "The sky is blue because of Rayleigh scattering: air scatters"
    assert reply.choices[0].finish_reason == "length"
    sent = upstream.last_request_carrying("ollama-generate-marker")
    assert sent.path == "/api/generate"
    assert sent.body["prompt"] == "### User:\nollama-generate-marker: why is the sky blue?\n\n"

    completion = client.completions.create(model="ollama-generate-test", prompt="Why is the sky blue?")
    assert completion.choices[0].text == "The sky is blue because of Rayleigh scattering: air scatters"

    streamed = client.completions.create(model="ollama-generate-test", prompt="Why?", stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "The sky is blue."


@gateway_only
def test_ollama_embeddings_read_as_an_openai_list(client: openai.OpenAI, upstream: MockUpstream) -> None:
    result = client.embeddings.create(model="ollama-embed-test", input=["ollama-embed-marker", "second"])

    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx([0.010071029, -0.0017594862, 0.05007221, 0.04692972])
    assert result.usage.prompt_tokens == 8
    sent = upstream.last_request_carrying("ollama-embed-marker")
    assert sent.path == "/api/embed"
    assert sent.body == {"model": "all-minilm", "input": ["ollama-embed-marker", "second"]}


@gateway_only
def test_a_model_ollama_has_not_pulled_is_a_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="ollama-missing", messages=[{"role": "user", "content": "hi"}])

    assert 'model "missing-model" not found, try pulling it first' in str(caught.value)
