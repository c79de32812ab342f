"""What the caller hears is grounded: an invented fact is never spoken, an absent answer is admitted.

The LLM is faked at its HTTP boundary (an OpenAI-compatible server that streams what a weak
model might say); everything else is real: Whisper, the brain, the fact check, Piper.
"""

import asyncio
import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.config import BotConfig
from pipelines.dialogue.chat import ChatSession
from pipelines.live.simulate import simulate_call
from tests.calls.conftest import audio
from tests.dialogue.conftest import demo_bot, receiver  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]

INVENTED = "For emergencies, call 555-9999 any time."


class FakeLLM:
    """/v1/chat/completions that always answers ``self.say``, streamed (calls) or whole (chat)."""

    def __init__(self, say: str):
        self.say = say
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                fake.requests.append(body)
                if not body.get("stream"):
                    payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": fake.say}}]})
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload.encode())
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for i, word in enumerate(fake.say.split(" ")):
                    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                             "choices": [{"index": 0, "delta": {"content": (" " if i else "") + word},
                                          "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake_llm():
    fake = FakeLLM(INVENTED)
    yield fake
    fake.server.shutdown()


def test_an_invented_phone_number_is_never_spoken(fake_llm, desk_bot, loaded_models):
    config = replace(BotConfig.for_slug(desk_bot.slug), answer_style="generative")
    call = asyncio.run(simulate_call(config, [audio("caller_hours.wav")], store=False, llm_base_url=fake_llm.url))
    said = " ".join(t.text for t in call.recorder.turns if t.role == "bot")
    assert fake_llm.requests, "the LLM was never asked"
    assert "555" not in said and "9999" not in said, said
    replaced = call.record.metrics["grounding"]["replaced"]
    assert replaced and "555-9999" in replaced[0]["tried"] and replaced[0]["said"] in said

    chat = ChatSession(config, retrieve=lambda q: [])
    chat.llm.base_url = fake_llm.url
    turn = chat.send("What are your opening hours?")
    assert "555" not in turn.reply and turn.reply == replaced[0]["said"]  # the chat predicts the call
    assert chat.record().metrics["grounding"]["replaced"][0]["tried"] == INVENTED


def spoken_question(text: str, path) -> str:
    """``text`` said by Piper (the caller's voice), as a 16 kHz WAV with a second of silence after it."""
    import wave

    import numpy as np

    from pipelines.model_registry import registry

    voice = registry.piper("")
    pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in voice.synthesize(text)])
    n = int(len(pcm) * 16000 / voice.config.sample_rate)
    pcm16 = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.concatenate([np.zeros(4000, np.int16), pcm16, np.zeros(16000, np.int16)]).tobytes())
    return str(path)


def test_a_caller_asking_what_the_documents_do_not_say_hears_an_honest_dont_know(
        llm_server, loaded_models, demo_bot, tmp_path):  # noqa: F811
    from unittest import mock

    from knowledge.ingest import ingest
    from knowledge.sample_docs import SALON_PRICE_LIST, pdf_bytes
    from knowledge.services import upload_document

    with mock.patch("knowledge.services.queue_ingestion"):
        uploaded = upload_document(demo_bot.company, "price_list_2026.pdf", pdf_bytes([SALON_PRICE_LIST]), [demo_bot])
    assert ingest(uploaded.document.pk).status == "ready"
    question = spoken_question("Do you offer tattoo removal?", tmp_path / "tattoo.wav")
    call = asyncio.run(simulate_call(BotConfig.for_slug(demo_bot.slug), [question], store=False))
    turns = [(t.role, t.text) for t in call.recorder.turns if t.text]
    assert "tattoo" in turns[1][1].lower(), turns
    assert turns[2][0] == "bot" and turns[2][1].startswith("I'm sorry, I don't have that information."), turns
