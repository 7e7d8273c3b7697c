"""The official `openai` SDK drives images, audio, moderations and rerank through llmgate
(issue 9: more OpenAI routes, each routed, charged and logged like chat)."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from mock_upstream import SPEECH_CHUNKS, MockUpstream

gateway_only = pytest.mark.gateway_only

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture_reply(path: str) -> dict:
    return json.loads((FIXTURES / path).read_text())["reply"]


def wav(seconds: int = 1) -> bytes:
    """A silent 16 kHz mono 16-bit WAV of `seconds`."""
    data = b"\0" * (32_000 * seconds)
    header = (
        b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
        + bytes([1, 0, 1, 0]) + (16_000).to_bytes(4, "little") + (32_000).to_bytes(4, "little")
        + bytes([2, 0, 16, 0]) + b"data" + len(data).to_bytes(4, "little")
    )
    return header + data


# --- images -----------------------------------------------------------------------------


def test_images_generate_returns_the_upstream_images(client: openai.OpenAI) -> None:
    reply = client.images.generate(model="image-test", prompt="a lighthouse (sdk-images)", n=2, size="1024x1024", quality="hd")

    expected = fixture_reply("openai/images_dall_e_3.json")["data"][0]
    assert len(reply.data) == 2
    assert reply.data[0].url == expected["url"]
    assert reply.data[0].revised_prompt == expected["revised_prompt"]


@gateway_only
def test_images_reach_the_deployment_model_and_are_charged_per_hd_image(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    raw = client.images.with_raw_response.generate(model="image-test", prompt="a lighthouse (sdk-images-cost)", quality="hd")

    assert raw.http_response.status_code == 200
    seen = upstream.last_request_carrying("sdk-images-cost")
    assert seen.path in ("/v1/images/generations", "/images/generations")
    assert seen.model == "dall-e-3"
    cost = float(raw.headers["x-litellm-response-cost"])
    assert cost == pytest.approx(7.629e-08 * 1024 * 1024)
    assert raw.headers["x-litellm-model-group"] == "image-test"


# --- speech -----------------------------------------------------------------------------


def test_speech_returns_the_upstream_audio(client: openai.OpenAI) -> None:
    audio = client.audio.speech.create(model="tts-test", voice="alloy", input="Hello (sdk-speech)")

    assert audio.content == b"".join(SPEECH_CHUNKS)


def test_speech_streams_with_the_streaming_response(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-test", voice="alloy", input="Hello (sdk-speech-stream)", response_format="mp3"
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        chunks = list(response.iter_bytes())

    assert b"".join(chunks) == b"".join(SPEECH_CHUNKS)


@gateway_only
def test_speech_is_charged_per_character_of_its_input(client: openai.OpenAI, upstream: MockUpstream) -> None:
    text = "Twenty-six characters here"
    raw = client.audio.speech.with_raw_response.create(model="tts-test", voice="nova", input=text)

    assert raw.http_response.status_code == 200
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(len(text) * 1.5e-05)
    assert upstream.last_request_carrying(text).model == "tts-1"


# --- transcriptions and translations ----------------------------------------------------


def test_a_verbose_transcription_returns_text_and_duration(client: openai.OpenAI) -> None:
    reply = client.audio.transcriptions.create(
        model="whisper-test", file=("speech.wav", wav(), "audio/wav"), response_format="verbose_json", language="en"
    )

    expected = fixture_reply("openai/transcription_verbose.json")
    assert reply.text == expected["text"]
    assert reply.duration == pytest.approx(expected["duration"])


def test_a_text_transcription_and_a_translation_return_text(client: openai.OpenAI) -> None:
    text = client.audio.transcriptions.create(model="whisper-test", file=("a.wav", wav(), "audio/wav"), response_format="text")
    translated = client.audio.translations.create(model="whisper-test", file=("a.wav", wav(), "audio/wav"))

    expected = fixture_reply("openai/transcription_verbose.json")["text"]
    assert text.strip() == expected
    assert translated.text == expected


@gateway_only
def test_an_upload_reaches_the_upstream_as_a_form_and_is_charged_per_second(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    audio = wav(2)
    raw = client.audio.transcriptions.with_raw_response.create(
        model="whisper-test", file=("sdk-upload.wav", audio, "audio/wav"), response_format="verbose_json",
        timestamp_granularities=["word", "segment"], prompt="sdk-upload-marker",
    )

    assert raw.http_response.status_code == 200
    seen = upstream.last_request_carrying("sdk-upload-marker")
    assert seen.body["model"] == "whisper-1"
    assert seen.body["file"]["filename"] == "sdk-upload.wav"
    assert seen.body["file"]["data"] == audio.decode("latin-1")
    assert seen.body["timestamp_granularities[]"] == ["word", "segment"]
    duration = fixture_reply("openai/transcription_verbose.json")["duration"]
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(duration * 1e-4)


# --- moderations ------------------------------------------------------------------------


def test_moderations_return_the_upstream_results(client: openai.OpenAI) -> None:
    reply = client.moderations.create(model="moderation-test", input="I want to hug my cat (sdk-moderation).")

    assert len(reply.results) == 1
    assert reply.results[0].flagged is False
    assert reply.results[0].categories.violence is False


@gateway_only
def test_a_moderation_without_a_model_goes_to_the_moderation_deployment(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    raw = client.moderations.with_raw_response.create(input="no model given (sdk-moderation-default)")

    assert raw.http_response.status_code == 200
    assert raw.headers["x-litellm-model-group"] == "moderation-test"
    assert upstream.last_request_carrying("sdk-moderation-default").model == "omni-moderation-latest"


# --- rerank -----------------------------------------------------------------------------


def test_rerank_answers_in_coheres_shape(client: openai.OpenAI) -> None:
    request = json.loads((FIXTURES / "cohere" / "rerank_v2.json").read_text())["request"]
    reply = client.post(
        "/rerank",
        body={**request, "model": "rerank-test", "return_documents": True},
        cast_to=object,
    )

    recorded = fixture_reply("cohere/rerank_v2.json")
    assert [r["index"] for r in reply["results"]] == [r["index"] for r in recorded["results"]]
    assert reply["meta"]["billed_units"]["search_units"] == 1


@gateway_only
def test_rerank_reaches_cohere_v2_and_adds_the_documents_asked_for(client: openai.OpenAI, upstream: MockUpstream) -> None:
    documents = ["zero (sdk-rerank)", "one", "two", "three"]
    reply = client.post(
        "/rerank",
        body={"model": "rerank-test", "query": "capital?", "documents": documents, "return_documents": True},
        cast_to=object,
    )

    seen = upstream.last_request_carrying("sdk-rerank")
    assert seen.path == "/v2/rerank"
    assert seen.model == "rerank-v3.5"
    assert "return_documents" not in seen.body
    assert reply["results"][0]["document"]["text"] == documents[reply["results"][0]["index"]]


@gateway_only
def test_a_provider_without_the_route_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="claude-test", prompt="x")

    error = info.value.body
    assert "anthropic" in error["message"] and "/images/generations" in error["message"]
