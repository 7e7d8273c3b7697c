"""The official `openai` SDK's Responses API (`client.responses`) through the gateway: passed
through to an OpenAI deployment (the mock answers from tests/fixtures/openai), and served
through chat for a server without it (`hosted_vllm/`) and for Anthropic's Messages API."""

from __future__ import annotations

import json

import openai
import pytest

from conftest import INPUT_COST_PER_TOKEN, OUTPUT_COST_PER_TOKEN
from mock_upstream import CHAT_REPLY, COMPLETION_TOKENS, PROMPT_TOKENS, MockUpstream

gateway_only = pytest.mark.gateway_only

# What the recorded native reply says (tests/fixtures/openai/responses_reply.json).
NATIVE_TEXT = "Hi there!"
NATIVE_ID = "resp_67ccf18ef5fc8190b16dbee19bc54e5f087bb177ab789d5c"
NATIVE_INPUT_TOKENS, NATIVE_OUTPUT_TOKENS = 37, 11

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def price(input_tokens: int, output_tokens: int) -> float:
    return input_tokens * INPUT_COST_PER_TOKEN + output_tokens * OUTPUT_COST_PER_TOKEN


def test_a_native_response_reads_as_a_response_object(client: openai.OpenAI, upstream: MockUpstream) -> None:
    response = client.responses.create(
        model="responses-native",
        input="Say hi",
        instructions="You are a helpful assistant.",
        temperature=0.5,
    )

    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == NATIVE_TEXT
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (NATIVE_INPUT_TOKENS, NATIVE_OUTPUT_TOKENS)
    sent = upstream.recorded(lambda r: r.path == "/v1/responses")[-1]
    assert sent.body["model"] == "responses-native"
    assert sent.body["instructions"] == "You are a helpful assistant."
    assert sent.body["temperature"] == 0.5


@gateway_only
def test_a_native_response_is_charged_from_its_usage_and_gets_a_routable_id(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(model="responses-native", input="Say hi")
    response = raw.parse()

    assert response.id != NATIVE_ID and response.id.startswith("resp_")
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(price(NATIVE_INPUT_TOKENS, NATIVE_OUTPUT_TOKENS))


def test_a_native_stream_arrives_event_by_event(client: openai.OpenAI) -> None:
    stream = client.responses.create(model="responses-native", input="Say hi", stream=True)

    events = list(stream)

    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == NATIVE_TEXT
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1].response
    assert completed.usage is not None and completed.usage.output_tokens == NATIVE_OUTPUT_TOKENS
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


@gateway_only
def test_the_stream_helper_assembles_a_native_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="responses-native", input="Say hi") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(texts) == NATIVE_TEXT
    assert final.output_text == NATIVE_TEXT
    assert final.usage is not None
    assert (final.usage.model_extra or {}).get("cost") == pytest.approx(price(NATIVE_INPUT_TOKENS, NATIVE_OUTPUT_TOKENS))


@gateway_only
def test_a_server_without_the_responses_api_answers_through_chat(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    raw = client.responses.with_raw_response.create(
        model="responses-via-chat",
        input="marker-via-chat-1",
        instructions="Be brief.",
        max_output_tokens=40,
    )
    response = raw.parse()

    assert response.output_text == CHAT_REPLY
    assert response.status == "completed"
    assert response.instructions == "Be brief."
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(price(PROMPT_TOKENS, COMPLETION_TOKENS))
    sent = upstream.last_request_carrying("marker-via-chat-1")
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "marker-via-chat-1"},
    ]
    assert sent.body["max_tokens"] == 40


@gateway_only
def test_a_stream_through_chat_arrives_as_responses_events(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="responses-via-chat", input="Say hi", stream=True))

    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == CHAT_REPLY
    assert [e.sequence_number for e in events] == list(range(len(events)))
    usage = events[-1].response.usage
    assert (usage.input_tokens, usage.output_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert (usage.model_extra or {}).get("cost") == pytest.approx(price(PROMPT_TOKENS, COMPLETION_TOKENS))


@gateway_only
def test_the_stream_helper_assembles_a_response_served_through_chat(client: openai.OpenAI) -> None:
    with client.responses.stream(model="responses-via-chat", input="Say hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()

    assert final.output_text == CHAT_REPLY


@gateway_only
def test_an_anthropic_tool_call_reads_as_a_function_call_item(client: openai.OpenAI, upstream: MockUpstream) -> None:
    response = client.responses.create(model="claude-test", input="Weather in Paris?", tools=[WEATHER_TOOL])

    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris", "unit": "celsius"}
    assert response.output_text == "I'll look that up."
    sent = upstream.recorded(lambda r: r.path == "/v1/messages")[-1]
    assert sent.body["tools"][0]["name"] == "get_weather"

    # The tool's result goes back as a function_call_output item.
    client.responses.create(
        model="claude-test",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather", "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    sent = upstream.recorded(lambda r: r.path == "/v1/messages")[-1]
    result = sent.body["messages"][-1]["content"][0]
    assert (result["type"], result["tool_use_id"]) == ("tool_result", calls[0].call_id)


@gateway_only
def test_the_stream_helper_assembles_an_anthropic_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(model="claude-test", input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        arguments = "".join(e.delta for e in stream if e.type == "response.function_call_arguments.delta")
        final = stream.get_final_response()

    call = next(item for item in final.output if item.type == "function_call")
    assert json.loads(call.arguments) == json.loads(arguments) == {"city": "Paris"}
    assert final.output_text == "Okay, let's check the weather."


@gateway_only
def test_previous_response_id_continues_a_conversation_served_through_chat(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    first = client.responses.create(model="responses-via-chat", input="marker-turn-one")

    client.responses.create(model="responses-via-chat", input="marker-turn-two", previous_response_id=first.id)

    sent = upstream.last_request_carrying("marker-turn-two")
    assert sent.body["messages"] == [
        {"role": "user", "content": "marker-turn-one"},
        {"role": "assistant", "content": CHAT_REPLY},
        {"role": "user", "content": "marker-turn-two"},
    ]


@gateway_only
def test_a_native_response_is_retrieved_listed_and_deleted_at_its_deployment(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    made = client.responses.create(model="responses-native", input="Say hi")

    got = client.responses.retrieve(made.id)
    items = client.responses.input_items.list(made.id, limit=5)
    client.responses.delete(made.id)

    assert got.id == made.id
    assert got.output_text == NATIVE_TEXT
    assert [i.id for i in items.data] == ["msg_input"]
    paths = [r.path for r in upstream.recorded(lambda r: r.method in ("GET", "DELETE") and "/responses/" in r.path)]
    assert paths[-3:] == [
        f"/v1/responses/{NATIVE_ID}",
        f"/v1/responses/{NATIVE_ID}/input_items?limit=5",
        f"/v1/responses/{NATIVE_ID}",
    ]
    assert upstream.recorded(lambda r: r.method == "DELETE")[-1].path == f"/v1/responses/{NATIVE_ID}"


@gateway_only
def test_errors_raise_the_sdks_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as built_in:
        client.responses.create(model="responses-via-chat", input="x", tools=[{"type": "web_search"}])
    assert built_in.value.body["param"] == "tools[0].type"

    with pytest.raises(openai.BadRequestError) as unknown:
        client.responses.create(model="responses-via-chat", input="x", previous_response_id="resp_unknown")
    assert unknown.value.body["param"] == "previous_response_id"

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_0123456789abcdef")

    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="no-such-model", input="x")
