"""Post-call summaries grounded like spoken replies, and "Question answered" only for an answer.

The LLM is played by a small OpenAI-compatible server answering a fixed text (what a weak model
might write); everything else is real: the processing code, the database, the stored outcome.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from postcall import processing, summary
from postcall.models import CallOutcome, Source
from tests.postcall.conftest import BOOKING_SCENARIOS, DEAD_LLM, store_call
from voicebot import llm_endpoint
from voicebot.models import Call, CallTurn


class FixedLLM:
    """/v1/chat/completions answering ``self.say`` to every request."""

    def __init__(self, say: str = ""):
        self.say = say
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                fake.requests.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": fake.say}}]})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fixed_llm(monkeypatch, settings):
    fake = FixedLLM()
    settings.POSTCALL_LLM_FIELDS = False  # only the summary is asked: one answer to play
    monkeypatch.setenv("VOICEBOT_LLM_BASE_URL", fake.url)
    llm_endpoint.base_url.cache_clear()
    yield fake
    llm_endpoint.base_url.cache_clear()
    fake.server.shutdown()


@pytest.fixture
def dead_llm(monkeypatch):
    monkeypatch.setenv("VOICEBOT_LLM_BASE_URL", DEAD_LLM)
    llm_endpoint.base_url.cache_clear()
    yield
    llm_endpoint.base_url.cache_clear()


@pytest.fixture
def salon_bot(bot_a):
    bot_a.greeting = "Welcome to Alpha Nails, how can I help you today?"
    bot_a.scenarios = BOOKING_SCENARIOS
    bot_a.save()
    return bot_a


SALON_TURNS = [
    ("bot", "Welcome to Alpha Nails, how can I help you today?", None, False),
    ("caller", "Hi, how much is a gel manicure?", None, False),
    ("bot", "A gel manicure is 35 dollars.", 900, False),
    ("caller", "Great, thanks, bye.", None, False),
    ("bot", "Thank you for calling. Goodbye!", 700, False),
]


def process_with(llm, bot, say, **call):
    llm.say = say
    stored = store_call(bot, **{"turns": SALON_TURNS, "scenario": "", "collected": {}, "from_number": "",
                                "transport": Call.Transport.CHAT, **call})
    outcome = processing.process(stored.pk)
    assert llm.requests, "the LLM was never asked for a summary"
    return outcome


@pytest.mark.django_db
@pytest.mark.parametrize("say, why", [
    ("Welcome to Alpha Nails, how can I help you today?", "the greeting said back"),
    ("Alpha Nails welcomes callers.", "nothing beyond the greeting"),
    ("The caller asked about a 3-day delivery of nails.", "an invented delivery"),
    ("The caller asked about a gel manicure. The salon is open on Sunday.", "an invented day"),
    ("The caller asked about gel polish remover and cuticle oil.", "invented products"),
    ("The caller asked the price of a gel manicure. The caller asked the price of a gel manicure.",
     "repeats itself"),
])
def test_an_ungrounded_llm_summary_is_replaced_by_the_factual_one(fixed_llm, salon_bot, say, why):
    outcome = process_with(fixed_llm, salon_bot, say)
    assert outcome.summary_source == Source.FALLBACK, why
    assert outcome.summary.startswith('The caller said: "Hi, how much is a gel manicure?"'), outcome.summary
    assert "Sunday" not in outcome.summary and "3-day" not in outcome.summary
    stored = CallOutcome.objects.get(call=outcome.call)
    assert (stored.summary, stored.summary_source) == (outcome.summary, "fallback")


@pytest.mark.django_db
def test_a_grounded_llm_summary_is_kept(fixed_llm, salon_bot):
    say = "The caller asked how much a gel manicure costs and was told it is 35 dollars."
    outcome = process_with(fixed_llm, salon_bot, say)
    assert (outcome.summary, outcome.summary_source) == (say, Source.LLM)
    assert outcome.result == CallOutcome.Result.INFORMATION  # the price was answered


def test_grounding_problem_says_why():
    turns = [CallTurn(index=i, role=role, text=text) for i, (role, text, _l, _i) in enumerate(SALON_TURNS)]
    assert "Sunday".lower() in summary.grounding_problem("The caller asked if the salon is open on Sunday.", turns)
    assert "3" in summary.grounding_problem("The caller wants a 3-day delivery of nails.", turns)
    assert summary.grounding_problem("The caller asked about a gel manicure, which costs thirty-five dollars; "
                                     "35 dollars.", turns) is None
    assert summary.grounding_problem("The caller, Maria, asked for a manicure.", turns,
                                     known=["Alpha front desk"]).endswith("maria")
    assert summary.grounding_problem("The caller, Maria, asked for a manicure.", turns,
                                     fields={"name": {"value": "Maria", "source": "transcript"}}) is None


FALLBACK_ONLY = [
    ("bot", "Alpha here.", None, False),
    ("caller", "What are your opening hours on Saturday?", None, False),
    ("bot", "Sorry, I didn't catch that. Could you say it another way?", 800, False),
    ("caller", "How much is a gel manicure?", None, False),
    ("bot", "I'm sorry, I don't have that information. I can take a message for the team, or help you with "
            "something else.", 900, False),
    ("caller", "Okay, bye.", None, False),
    ("bot", "Thank you for calling. Goodbye!", 600, False),
]


@pytest.mark.django_db
def test_a_call_where_every_reply_was_the_fallback_is_not_question_answered(bot_a, dead_llm):
    call = store_call(bot_a, transport=Call.Transport.CHAT, from_number="", scenario="", collected={},
                      turns=FALLBACK_ONLY)
    outcome = processing.process(call.pk)
    assert outcome.result == CallOutcome.Result.FAILED
    assert outcome.get_result_display() != "Question answered"


@pytest.mark.django_db
def test_one_real_answer_among_fallbacks_is_question_answered(bot_a, dead_llm):
    turns = [*FALLBACK_ONLY[:3], ("caller", "When do you open?", None, False),
             ("bot", "We open at nine on weekdays.", 700, False)]
    call = store_call(bot_a, transport=Call.Transport.CHAT, from_number="", scenario="", collected={}, turns=turns)
    assert processing.process(call.pk).result == CallOutcome.Result.INFORMATION


def test_a_paraphrase_in_a_summarys_own_words_is_kept():
    turns = [CallTurn(index=i, role=role, text=text) for i, (role, text, _l, _i) in enumerate(SALON_TURNS)]
    assert summary.grounding_problem("The caller inquired about pricing for a gel manicure.", turns) is None
    assert summary.grounding_problem("The caller asked about pricing for a gel manicure and a pedicure.",
                                     turns) == "names what the call does not contain: pedicure"
