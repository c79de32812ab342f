import json

import httpx
import pytest

from voicebot import llm_endpoint


def test_no_ollama_on_a_closed_port_means_the_embedded_server(settings, monkeypatch):
    monkeypatch.delenv("VOICEBOT_LLM_BASE_URL", raising=False)
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:9/v1"
    settings.LLM_MODEL = ""
    llm_endpoint.base_url.cache_clear()
    try:
        assert llm_endpoint.base_url() == llm_endpoint.embedded_base_url()
        assert llm_endpoint.default_model() == "smollm2-135m-instruct"
    finally:
        llm_endpoint.base_url.cache_clear()


def test_a_missing_llama_server_is_named_with_the_fix(settings, tmp_path):
    settings.LLM_EMBEDDED_SERVER = str(tmp_path / "llama-server")
    assert not llm_endpoint.embedded_server_available()
    with pytest.raises(llm_endpoint.EmbeddedServerError, match=r"no llama-server at .*run `make setup`"):
        llm_endpoint.start_embedded_server()


def test_bundled_llm_server_answers_chat_completions(llm_server):
    assert llm_endpoint.base_url() == llm_server
    response = httpx.post(
        f"{llm_server}/chat/completions",
        json={"model": llm_endpoint.default_model(), "max_tokens": 16, "temperature": 0,
              "messages": [{"role": "system", "content": "You are a receptionist."},
                           {"role": "user", "content": "Hello, are you open today?"}]},
        timeout=60,
    )
    assert response.status_code == 200
    text = response.json()["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text.strip()


async def stream_reply(client, base_url: str, question: str, max_tokens: int = 24) -> dict:
    """One streamed chat completion: its text, finish reason and when its first and last tokens came."""
    import time

    body = {"model": llm_endpoint.default_model(), "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": question}]}
    reply = {"text": "", "finish": None, "first": None, "last": None}
    async with client.stream("POST", f"{base_url}/chat/completions", json=body, timeout=60) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choice = json.loads(line[6:])["choices"][0]
            piece = choice.get("delta", {}).get("content") or ""
            if piece:
                reply["first"] = reply["first"] or time.monotonic()
                reply["last"] = time.monotonic()
            reply["text"] += piece
            reply["finish"] = choice.get("finish_reason") or reply["finish"]
    return reply


def test_two_streamed_replies_at_once_both_finish(llm_server):
    """Two calls answering at the same moment: neither stream is cut off by the other."""
    import asyncio

    async def both():
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(stream_reply(client, llm_server, "Are you open on Sunday?"),
                                        stream_reply(client, llm_server, "How much is a haircut?"))

    for reply in asyncio.run(both()):
        assert reply["text"].strip() and reply["finish"] in ("stop", "length"), reply


def test_concurrent_replies_are_decoded_together_not_queued(llm_server):
    """Four callers at once: every reply starts before any of them has finished.

    A server that answers one request at a time makes the last caller wait for
    three whole answers; llama-server's slots decode the four in one batch.
    """
    import asyncio

    questions = ["Are you open on Sunday?", "How much is a haircut?", "Can I park nearby?", "Do you sell gift cards?"]

    async def together():
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(*(stream_reply(client, llm_server, q, max_tokens=48) for q in questions))

    replies = asyncio.run(together())
    assert all(r["text"].strip() and r["first"] for r in replies), replies
    assert max(r["first"] for r in replies) < min(r["last"] for r in replies), replies
