import json

import httpx

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


def test_two_streamed_replies_at_once_both_finish(llm_server):
    """Two calls answering at the same moment: neither stream is cut off by the other."""
    import asyncio

    async def stream_reply(client, question):
        body = {"model": llm_endpoint.default_model(), "max_tokens": 24, "temperature": 0, "stream": True,
                "messages": [{"role": "user", "content": question}]}
        text, finish = "", None
        async with client.stream("POST", f"{llm_server}/chat/completions", json=body, timeout=60) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choice = json.loads(line[6:])["choices"][0]
                text += choice.get("delta", {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
        return text, finish

    async def both():
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(stream_reply(client, "Are you open on Sunday?"),
                                        stream_reply(client, "How much is a haircut?"))

    for text, finish in asyncio.run(both()):
        assert text.strip() and finish in ("stop", "length"), (text, finish)
