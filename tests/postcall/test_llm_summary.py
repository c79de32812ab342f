"""The summary from the real bundled LLM (SmolLM2 on llama.cpp): usable, or the fallback; never lost."""

import time

import pytest

from postcall import summary
from voicebot import llm_endpoint
from voicebot.models import CallTurn

pytestmark = [pytest.mark.models, pytest.mark.skipif(not llm_endpoint.embedded_server_available(),
                                                     reason="no llama-server: run `make setup`")]

TURNS = [
    CallTurn(index=0, role="bot", text="Alpha Dental, how can I help?"),
    CallTurn(index=1, role="caller", text="Hi, I'd like to book a teeth cleaning for next Tuesday morning."),
    CallTurn(index=2, role="bot", text="Sure, Tuesday at nine works. Can I have your phone number?"),
    CallTurn(index=3, role="caller", text="It's 0151 2345 6789. Thanks!"),
    CallTurn(index=4, role="bot", text="You're booked for a cleaning on Tuesday at nine."),
]


def test_real_llm_summary_and_fields_are_bounded_and_grounded(llm_server, settings):
    started = time.monotonic()
    text, source = summary.summarize(TURNS, "booking", {}, 65.0)
    elapsed = time.monotonic() - started
    assert source in ("llm", "fallback")
    assert text and len(text) <= settings.POSTCALL_SUMMARY_MAX_CHARS + 1
    if source == "llm":
        assert summary.content_words(text) & summary.content_words(summary.transcript_text(TURNS))
        assert "Caller:" not in text
    else:
        assert text.startswith('The caller said: "Hi, I\'d like to book')
    assert elapsed < settings.POSTCALL_LLM_TIMEOUT_SEC + 5

    fields = summary.llm_fields(TURNS, [{"name": "service"}, {"name": "day"}])
    said = " ".join(t.text.lower() for t in TURNS if t.role == "caller")
    assert all(value.lower() in said for value in fields.values())
