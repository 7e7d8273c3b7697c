"""The official `openai` SDK against a `vertex_ai/` deployment: the gateway signs a JWT with a
service-account key, trades it for a token at the mock's token endpoint, and calls Vertex's
Gemini endpoint with it (answered from tests/fixtures/gemini)."""

from __future__ import annotations

import openai
import pytest

from conftest import VERTEX_PROJECT
from mock_upstream import VERTEX_ACCESS_TOKEN, MockUpstream

gateway_only = pytest.mark.gateway_only

VERTEX_PATH = (
    f"/v1/projects/{VERTEX_PROJECT}/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
)


@gateway_only
def test_a_vertex_gemini_call_is_authorised_with_a_service_account_token(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    for _ in range(3):
        reply = client.chat.completions.create(
            model="vertex-test", messages=[{"role": "user", "content": "Weather in Paris?"}]
        )
        assert reply.choices[0].message.content == "Let me check."
        assert reply.choices[0].finish_reason == "tool_calls"

    calls = upstream.recorded(lambda r: r.path == VERTEX_PATH)
    assert len(calls) == 3
    assert all(c.headers["authorization"] == f"Bearer {VERTEX_ACCESS_TOKEN}" for c in calls)
    token_requests = upstream.recorded(lambda r: r.path.endswith("/token"))
    assert len(token_requests) == 1, "the token is cached between requests"
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in token_requests[0].body


@gateway_only
def test_a_vertex_gemini_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="vertex-test", messages=[{"role": "user", "content": "Sky?"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "The sky is clear."
