"""The official `anthropic` SDK against the gateway's `/v1/messages`: any deployment (here an
OpenAI one and an Anthropic one) answers in the Messages format, streaming included."""

from __future__ import annotations

import anthropic
import pytest

from conftest import MASTER_KEY, Target

gateway_only = pytest.mark.gateway_only


@pytest.fixture(scope="module")
def messages_client(target: Target) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=target.root_url, api_key=MASTER_KEY, max_retries=0, timeout=30.0)


@gateway_only
def test_an_openai_deployment_answers_the_anthropic_sdk(messages_client: anthropic.Anthropic) -> None:
    message = messages_client.messages.create(
        model="gpt-test",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hi"}],
    )

    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the mock upstream."
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 5


@gateway_only
def test_the_anthropic_sdk_streams_from_an_openai_deployment(messages_client: anthropic.Anthropic) -> None:
    with messages_client.messages.stream(
        model="gpt-test",
        max_tokens=64,
        messages=[{"role": "user", "content": "Say hi"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "Hello from the mock upstream."
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5


@gateway_only
def test_tool_use_from_an_anthropic_deployment_reaches_the_anthropic_sdk(
    messages_client: anthropic.Anthropic,
) -> None:
    message = messages_client.messages.create(
        model="claude-test",
        max_tokens=64,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    )

    tool_use = [block for block in message.content if block.type == "tool_use"][0]
    assert (tool_use.name, tool_use.input) == ("get_weather", {"city": "Paris", "unit": "celsius"})
    assert message.stop_reason == "tool_use"


@gateway_only
def test_an_unknown_model_is_an_anthropic_bad_request(messages_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        messages_client.messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert "no-such-model" in str(caught.value)


@gateway_only
def test_count_tokens_answers_for_any_model(messages_client: anthropic.Anthropic) -> None:
    count = messages_client.messages.count_tokens(
        model="gpt-test", messages=[{"role": "user", "content": "Say hi"}]
    )
    assert count.input_tokens > 0
