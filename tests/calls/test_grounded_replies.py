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
