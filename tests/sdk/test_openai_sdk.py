"""The official `openai` Python SDK, pointed at llmgate, keeps working (COMPAT.md sections 3, 4, 6, 7, 10)."""

from __future__ import annotations

import json
from typing import Callable

import openai
import pytest
from openai.types.chat import ChatCompletion

from conftest import INPUT_COST_PER_TOKEN, MASTER_KEY, OUTPUT_COST_PER_TOKEN, UPSTREAM_KEY, Target
from mock_upstream import (
    CHAT_REPLY,
    CHAT_REPLY_CHUNKS,
    COMPLETION_TEXT,
    COMPLETION_TOKENS,
    MARKER_HEADER,
    MARKER_VALUE,
    PROMPT_TOKENS,
    MockUpstream,
    expected_embedding,
)

gateway_only = pytest.mark.gateway_only

EXPECTED_COST = PROMPT_TOKENS * INPUT_COST_PER_TOKEN + COMPLETION_TOKENS * OUTPUT_COST_PER_TOKEN


def hello(marker: str) -> list[dict[str, str]]:
    """A one-message conversation; `marker` lets a test find its own request at the upstream."""
    return [{"role": "user", "content": f"Say hello ({marker})"}]


def status_error_from(call: Callable[[], object]) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as info:
        call()
    return info.value


# --- chat -------------------------------------------------------------------------------


def test_chat_completion_returns_the_upstream_reply_with_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-test", messages=hello("chat-basic"))

    assert reply.object == "chat.completion"
    assert reply.id
    assert isinstance(reply.model, str) and reply.model
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == CHAT_REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == PROMPT_TOKENS
    assert reply.usage.completion_tokens == COMPLETION_TOKENS
    assert reply.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS


@gateway_only
def test_chat_reaches_the_upstream_with_the_deployment_model_and_the_deployment_key(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    client.chat.completions.create(model="gpt-test", messages=hello("chat-upstream-key"))

    seen = upstream.last_request_carrying("chat-upstream-key")
    assert seen.path in ("/v1/chat/completions", "/chat/completions")
    assert seen.model == "gpt-test"
    assert seen.headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert MASTER_KEY not in json.dumps(seen.headers)


@gateway_only
def test_gateway_only_fields_are_consumed_and_every_other_field_is_forwarded(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    client.chat.completions.create(
        model="gpt-test",
        messages=hello("chat-forwarding"),
        temperature=0.25,
        extra_body={
            "metadata": {"team": "sdk-suite"},
            "num_retries": 0,
            "drop_params": False,
            "custom_upstream_field": {"kept": True},
        },
    )

    forwarded = upstream.last_request_carrying("chat-forwarding").body
    assert "metadata" not in forwarded
    assert "num_retries" not in forwarded
    assert "drop_params" not in forwarded
    assert forwarded["temperature"] == 0.25
    assert forwarded["custom_upstream_field"] == {"kept": True}


def test_streamed_chat_concatenates_to_the_upstream_reply_and_ends_with_a_usage_chunk(
    client: openai.OpenAI,
) -> None:
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=hello("chat-stream-usage"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == CHAT_REPLY
    assert len(pieces) > 1, "the reply should arrive as several chunks, not one"
    assert all(c.object == "chat.completion.chunk" for c in chunks)

    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert final.usage.prompt_tokens == PROMPT_TOKENS
    assert final.usage.completion_tokens == COMPLETION_TOKENS
    assert final.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS


def test_a_stream_without_include_usage_has_a_choice_in_every_chunk(client: openai.OpenAI) -> None:
    # Client code commonly reads `chunk.choices[0]`; a usage-only chunk nobody asked for breaks it.
    chunks = list(client.chat.completions.create(model="gpt-test", messages=hello("chat-stream-plain"), stream=True))

    assert chunks
    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == CHAT_REPLY


@gateway_only
def test_a_streamed_reply_carries_its_cost_in_the_final_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=hello("chat-stream-cost"),
        stream=True,
        stream_options={"include_usage": True},
    )
    final = list(stream)[-1]

    assert final.usage is not None
    assert (final.usage.model_extra or {}).get("cost") == pytest.approx(EXPECTED_COST)


@gateway_only
def test_an_upstream_that_breaks_mid_stream_surfaces_as_an_in_band_error(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="midstream-drop", messages=hello("chat-midstream"), stream=True)
    received = []

    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)

    error = info.value
    assert not isinstance(error, openai.APIConnectionError), (
        "the stream was cut off instead of ending with a `data: {\"error\": ...}` event"
    )
    assert isinstance(error.body, dict) and error.body.get("message")
    assert "".join(received) == "".join(CHAT_REPLY_CHUNKS[:2])


@gateway_only
def test_a_mock_response_in_the_request_answers_without_calling_the_upstream(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    reply = client.chat.completions.create(
        model="gpt-test",
        messages=hello("chat-mock-response"),
        extra_body={"mock_response": "A canned answer."},
    )

    assert reply.choices[0].message.content == "A canned answer."
    assert upstream.recorded(lambda r: "chat-mock-response" in json.dumps(r.body)) == []


@gateway_only
def test_a_streamed_mock_response_arrives_in_several_chunks_with_usage(client: openai.OpenAI) -> None:
    canned = "A canned answer, streamed in pieces."
    chunks = list(
        client.chat.completions.create(
            model="gpt-test",
            messages=hello("chat-mock-stream"),
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"mock_response": canned},
        )
    )

    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == canned
    assert len(pieces) > 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


@gateway_only
def test_response_headers_name_the_deployment_and_echo_the_call_id(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=hello("chat-headers"),
        extra_headers={"x-litellm-call-id": "sdk-call-id-123"},
    )
    headers = raw.headers

    assert raw.parse().choices[0].message.content == CHAT_REPLY
    assert headers.get("x-litellm-call-id") == "sdk-call-id-123"
    assert headers.get("x-litellm-model-group") == "gpt-test"
    assert headers.get("x-litellm-model-id")
    assert headers.get("x-litellm-version")
    assert (headers.get("x-litellm-model-api-base") or "").startswith(upstream.root_url)
    assert UPSTREAM_KEY not in (headers.get("x-litellm-model-api-base") or "")
    assert headers.get(f"llm_provider-{MARKER_HEADER}") == MARKER_VALUE


@gateway_only
def test_a_non_streamed_reply_reports_its_cost_in_a_header(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=hello("chat-cost-header"))

    assert "x-litellm-response-cost" in raw.headers
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(EXPECTED_COST)


# --- text completions -------------------------------------------------------------------


def test_a_text_completion_on_an_instruct_deployment_returns_the_upstream_text(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="instruct-test", prompt="Tell a story (completion-basic)")

    assert reply.object == "text_completion"
    assert reply.choices[0].text == COMPLETION_TEXT
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == PROMPT_TOKENS
    assert reply.usage.completion_tokens == COMPLETION_TOKENS


@gateway_only
def test_a_text_completion_on_a_chat_deployment_is_translated_to_chat(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    prompt = "Tell a story (completion-on-chat)"
    reply = client.completions.create(model="gpt-test", prompt=prompt)

    assert reply.object == "text_completion"
    assert reply.choices[0].text == CHAT_REPLY
    seen = upstream.last_request_carrying("completion-on-chat")
    assert seen.path.endswith("/chat/completions")
    assert seen.body["messages"] == [{"role": "user", "content": prompt}]


@gateway_only
def test_chat_on_a_text_completion_deployment_is_translated_to_a_prompt(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    reply = client.chat.completions.create(model="instruct-test", messages=hello("chat-on-instruct"))

    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == COMPLETION_TEXT
    seen = upstream.last_request_carrying("chat-on-instruct")
    assert seen.path.endswith("/completions") and not seen.path.endswith("/chat/completions")
    assert "chat-on-instruct" in json.dumps(seen.body.get("prompt"))


# --- embeddings -------------------------------------------------------------------------


def test_embeddings_with_the_sdk_default_base64_encoding_decode_to_the_upstream_vectors(
    client: openai.OpenAI,
) -> None:
    reply = client.embeddings.create(model="embed-test", input=["first text", "second text"])

    assert [item.index for item in reply.data] == [0, 1]
    assert reply.data[0].embedding == expected_embedding(0)
    assert reply.data[1].embedding == expected_embedding(1)
    assert reply.usage.prompt_tokens > 0


def test_embeddings_asked_for_as_floats_come_back_as_floats(client: openai.OpenAI) -> None:
    reply = client.embeddings.create(model="embed-test", input="only text", encoding_format="float")

    assert reply.data[0].embedding == expected_embedding(0)


# --- models -----------------------------------------------------------------------------


def test_the_model_list_names_every_configured_model_group(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list().data}

    assert {"gpt-test", "instruct-test", "embed-test"} <= set(models)
    for model in models.values():
        assert model.object == "model"
        assert model.created == 1677610602
        assert isinstance(model.owned_by, str)


# --- authentication ---------------------------------------------------------------------


@gateway_only
def test_a_wrong_api_key_is_rejected_with_401(make_client: Callable[..., openai.OpenAI]) -> None:
    wrong = make_client(api_key="sk-not-the-master-key")

    with pytest.raises(openai.AuthenticationError) as info:
        wrong.chat.completions.create(model="gpt-test", messages=hello("auth-wrong-key"))

    assert info.value.status_code == 401
    assert info.value.body["type"] == "auth_error"


@gateway_only
def test_the_x_litellm_api_key_header_wins_over_the_bearer_token(make_client: Callable[..., openai.OpenAI]) -> None:
    via_header = make_client(api_key="sk-not-the-master-key", default_headers={"x-litellm-api-key": MASTER_KEY})

    reply = via_header.chat.completions.create(model="gpt-test", messages=hello("auth-litellm-header"))

    assert reply.choices[0].message.content == CHAT_REPLY


@gateway_only
def test_the_azure_client_reaches_the_model_named_in_the_deployment_path(target: Target) -> None:
    # AzureOpenAI sends `api-key` and calls /openai/deployments/{model}/chat/completions.
    azure = openai.AzureOpenAI(
        azure_endpoint=target.root_url,
        api_key=MASTER_KEY,
        api_version="2024-06-01",
        max_retries=0,
        timeout=30.0,
    )

    reply = azure.chat.completions.create(model="gpt-test", messages=hello("azure-path"))

    assert reply.choices[0].message.content == CHAT_REPLY


# --- errors -----------------------------------------------------------------------------


@gateway_only
def test_a_chat_request_without_messages_is_a_400_naming_the_field(client: openai.OpenAI) -> None:
    error = status_error_from(
        lambda: client.post("/chat/completions", cast_to=ChatCompletion, body={"model": "gpt-test"})
    )

    assert isinstance(error, openai.BadRequestError)
    assert error.body["type"] == "invalid_request_error"
    assert "messages" in (error.body.get("param") or "")


@gateway_only
def test_messages_of_the_wrong_type_are_a_400_naming_the_field(client: openai.OpenAI) -> None:
    error = status_error_from(
        lambda: client.chat.completions.create(model="gpt-test", messages="not a list")  # type: ignore[arg-type]
    )

    assert isinstance(error, openai.BadRequestError)
    assert error.body["type"] == "invalid_request_error"
    assert "messages" in (error.body.get("param") or "")


@gateway_only
def test_a_chat_request_without_a_model_is_a_400(client: openai.OpenAI) -> None:
    error = status_error_from(
        lambda: client.post("/chat/completions", cast_to=ChatCompletion, body={"messages": hello("no-model")})
    )

    assert isinstance(error, openai.BadRequestError)
    assert error.body["type"] == "invalid_request_error"


@gateway_only
def test_malformed_json_is_a_400_invalid_request_error(client: openai.OpenAI) -> None:
    error = status_error_from(
        lambda: client.post(
            "/chat/completions",
            cast_to=ChatCompletion,
            content=b'{"model": "gpt-test", "messages": [',
            options={"headers": {"content-type": "application/json"}},
        )
    )

    assert isinstance(error, openai.BadRequestError)
    assert error.body["type"] == "invalid_request_error"


@gateway_only
def test_an_unknown_model_is_a_400_pointing_at_v1_models(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="no-such-model", messages=hello("unknown-model"))

    assert info.value.body["type"] == "invalid_request_error"
    assert "/v1/models" in info.value.body["message"]


@gateway_only
def test_an_upstream_503_keeps_its_status_and_its_message(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="broken", messages=hello("upstream-503"))

    assert info.value.status_code == 503
    assert "upstream overloaded" in info.value.body["message"]


@gateway_only
def test_a_stream_whose_upstream_fails_first_raises_the_status_error(client: openai.OpenAI) -> None:
    # The upstream fails before any chunk, so the gateway can still answer with a plain 503.
    with pytest.raises(openai.InternalServerError) as info:
        for _ in client.chat.completions.create(model="broken-stream", messages=hello("stream-503"), stream=True):
            pass

    assert info.value.status_code == 503
    assert "upstream overloaded" in info.value.body["message"]


@gateway_only
def test_an_upstream_429_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="limited", messages=hello("upstream-429"))

    assert info.value.status_code == 429
    assert "upstream rate limit reached" in info.value.body["message"]


@gateway_only
def test_a_mocked_rate_limit_error_is_a_429(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="mocked-429", messages=hello("mocked-429"))

    assert info.value.status_code == 429


ERROR_CASES = [
    pytest.param(
        401,
        lambda c, mk: mk(api_key="sk-not-the-master-key").chat.completions.create(
            model="gpt-test", messages=hello("shape-401")
        ),
        id="wrong key",
    ),
    pytest.param(
        400,
        lambda c, mk: c.post("/chat/completions", cast_to=ChatCompletion, body={"model": "gpt-test"}),
        id="missing messages",
    ),
    pytest.param(
        400,
        lambda c, mk: c.chat.completions.create(model="no-such-model", messages=hello("shape-unknown")),
        id="unknown model",
    ),
    pytest.param(
        503,
        lambda c, mk: c.chat.completions.create(model="broken", messages=hello("shape-503")),
        id="upstream 503",
    ),
    pytest.param(
        429,
        lambda c, mk: c.chat.completions.create(model="limited", messages=hello("shape-429")),
        id="upstream 429",
    ),
    pytest.param(
        429,
        lambda c, mk: c.chat.completions.create(model="mocked-429", messages=hello("shape-mocked-429")),
        id="mocked 429",
    ),
]


@gateway_only
@pytest.mark.parametrize(("status", "call"), ERROR_CASES)
def test_every_error_has_the_openai_error_shape_with_the_status_as_its_code(
    status: int,
    call: Callable[[openai.OpenAI, Callable[..., openai.OpenAI]], object],
    client: openai.OpenAI,
    make_client: Callable[..., openai.OpenAI],
) -> None:
    error = status_error_from(lambda: call(client, make_client))
    body = error.response.json()

    assert error.status_code == status
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["type"], str) and body["error"]["type"]
    assert body["error"]["code"] == str(status)
