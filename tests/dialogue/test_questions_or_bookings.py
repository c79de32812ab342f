"""A question about the business is answered, not taken for a booking because it names a booking word or a day."""

import pytest

from pipelines.dialogue.chat import ChatSession
from tests.dialogue.conftest import fixed_clock

pytestmark = pytest.mark.django_db


class NoLLM:
    requests = 0

    def answer(self, *args, **kwargs):
        raise AssertionError("the bundled model's answers are the documents' own words: no LLM request")


@pytest.fixture
def chat(demo_config, embed, salon_knowledge):
    session = ChatSession(demo_config, embed=embed, retrieve=salon_knowledge, llm=NoLLM(), clock=fixed_clock)
    session.start()
    return session


def test_a_question_naming_a_day_is_answered(chat):
    turn = chat.send("When are you open on Saturday?")
    assert turn.state["scenario"] is None and "9 am" in turn.reply


def test_a_policy_question_the_documents_do_not_answer_is_not_a_booking(chat):
    turn = chat.send("What happens if I miss my appointment?")
    assert turn.state["scenario"] is None
    assert turn.reply.startswith("I'm sorry, I don't have that information.")


@pytest.mark.parametrize("text", ["Can I book for Friday at 4?", "I'd like an appointment for a pedicure",
                                  "do you have time for me on Saturday"])
def test_requests_still_start_the_booking(chat, text):
    assert chat.send(text).state["scenario"] == "booking"


def test_a_misheard_service_name_in_a_question_is_put_right(demo_config, embed):
    from pipelines.dialogue.knowledge import PassageRetriever

    prices = PassageRetriever(["Nails\nClassic manicure: 25 dollars.\nGel manicure: 35 dollars."], embed, top_k=1,
                              threshold=0.0)
    session = ChatSession(demo_config, embed=embed, retrieve=prices, llm=NoLLM(), clock=fixed_clock)
    assert "35 dollars" in session.send("How much is a Joe manicure?").reply  # Whisper's "gel manicure"


def test_a_one_word_service_name_heard_close_is_put_right(chat):
    chat.engine.retrieve = lambda q: ["Colour\nBalayage takes about three hours."] if "balayage" in q.lower() else []
    assert "three hours" in chat.send("How long does a Bailage take?").reply
