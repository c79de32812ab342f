"""GroundingProcessor: a reply's fact-free first words go ahead, each sentence with a fact waits for its check."""

import asyncio
from types import SimpleNamespace

from pipecat.frames.frames import LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame
from pipecat.tests.utils import run_test

from pipelines.dialogue.grounding_processor import GroundingProcessor
from pipelines.dialogue.reply_guard import ReplyGuard

CONFIG = SimpleNamespace(system_prompt="", greeting="Hello!", fallback_phrase="Sorry?", company_name="Salon",
                         name="Desk", transfer_number="", scenarios=())


def spoken(passage: str, tokens: list[str]) -> list[str]:
    brain = SimpleNamespace(reply_guard=lambda: ReplyGuard(CONFIG, question="How much is a gel manicure?",
                                                           passages=[passage]))
    frames = [LLMFullResponseStartFrame(), *(LLMTextFrame(t) for t in tokens), LLMFullResponseEndFrame()]
    down, _ = asyncio.run(run_test(GroundingProcessor(brain), frames_to_send=frames, expected_down_frames=None))
    return [f.text.strip() for f in down if isinstance(f, LLMTextFrame)]


TOKENS = ["Sure", ",", " a", " gel", " manicure", " is", " 35", " dollars", ".", " Bye", "."]


def test_the_first_clause_goes_ahead_and_a_grounded_sentence_follows():
    assert spoken("Gel manicure: 35 dollars.", TOKENS) == ["Sure,", "a gel manicure is 35 dollars.", "Bye."]


def test_a_sentence_with_an_invented_price_is_replaced_and_the_rest_dropped():
    said = spoken("Gel manicure: 38 dollars.", TOKENS)
    assert said[0] == "Sure," and "35" not in " ".join(said) and "Bye." not in said
    assert "38 dollars" in said[1]  # the documents' own answer instead
