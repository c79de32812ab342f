"""The reply check on LLM answers: values must come from the documents' answering sentence, echoes are
no answer, and a question the documents do not answer never reaches the LLM."""

from dataclasses import replace

import pytest

from pipelines.dialogue.engine import DialogueEngine
from pipelines.dialogue.reply_guard import ReplyGuard
from tests.dialogue.conftest import SALON_FACTS, fixed_clock

pytestmark = pytest.mark.django_db

DEPOSIT = ["Deposits: a colour appointment needs a 20 dollar deposit. A classic manicure is 25 dollars."]


def guard(demo_config, **kwargs):
    return ReplyGuard(demo_config, question="How much is the deposit?", passages=DEPOSIT, **kwargs)


def test_a_value_from_elsewhere_in_the_documents_is_not_the_answer(demo_config):
    checked = guard(demo_config, evidence="Deposits: a colour appointment needs a 20 dollar deposit.")
    said = checked.check("Deposits are 25 dollars.")  # 25 is in the passage, but not in the deposit rule
    assert said != "Deposits are 25 dollars." and checked.replaced[0]["facts"] == ["price: 25 dollars"]
    assert checked.__class__(demo_config, question="How much is the deposit?", passages=DEPOSIT,
                             evidence="Deposits: a colour appointment needs a 20 dollar deposit.").check(
        "The deposit is 20 dollars.") == "The deposit is 20 dollars."


def test_saying_the_question_back_is_no_answer(demo_config):
    checked = guard(demo_config)
    assert checked.check("How much is the deposit?") != "How much is the deposit?"
    assert checked.replaced[0]["facts"][0].startswith("echo")


def test_a_question_the_documents_do_not_answer_never_reaches_the_llm(demo_config, embed, salon_knowledge):
    engine = DialogueEngine(replace(demo_config, answer_style="generative"), embed=embed, retrieve=salon_knowledge,
                            clock=fixed_clock)
    reply = engine.handle("How much is a Brazilian wax?")
    assert not reply.use_llm and reply.text.startswith("I'm sorry, I don't have that information.")
    answered = engine.handle("How much is a pedicure?")
    assert answered.use_llm and "40 dollars" in answered.evidence and SALON_FACTS[0] in answered.documents
