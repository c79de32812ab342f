"""Only the sentences of the retrieved chunks that answer the question reach the LLM, best first."""

from unittest import mock

import pytest

from knowledge.excerpts import best_sentences, sentences
from knowledge.ingest import ingest
from knowledge.sample_docs import SALON_PRICE_LIST, pdf_bytes
from knowledge.services import upload_document
from pipelines.config import BotConfig
from pipelines.dialogue.knowledge import default_retriever

NAILS = "Classic manicure: 25 dollars.\nGel manicure: 38 dollars.\nClassic pedicure: 40 dollars.\nGel pedicure: 52 dollars."
HAIR = "Men's haircut: 35 dollars.\nFull colour: from 120 dollars. Highlights: from 150 dollars."


def test_sentences_are_lines_and_sentence_ends():
    assert sentences(HAIR) == ["Men's haircut: 35 dollars.", "Full colour: from 120 dollars.",
                               "Highlights: from 150 dollars."]
    assert sentences("Open 9 to 5.  \n\n-\nClosed on 1.1. and on Sundays.") == ["Open 9 to 5.",
                                                                               "Closed on 1.1. and on Sundays."]


@pytest.mark.models
def test_the_closest_sentence_comes_first_and_stands_alone_when_it_is_clearly_best(embedder):
    assert best_sentences("How much does a gel manicure cost?", [NAILS, HAIR], embedder.embed) == [
        "Gel manicure: 38 dollars."]
    assert best_sentences("What does a men's haircut cost?", [HAIR, NAILS], embedder.embed)[0] == (
        "Men's haircut: 35 dollars.")
    # An open question keeps the close runners-up (at most three).
    nails = best_sentences("How much are your nail treatments?", [NAILS], embedder.embed)
    assert 2 <= len(nails) <= 3 and all("manicure" in s or "pedicure" in s for s in nails)


@pytest.mark.models
def test_short_passages_are_passed_whole(embedder):
    passages = ["Gift cards are sold at the front desk.", "Parking is free."]
    assert best_sentences("Do you sell gift cards?", passages, embedder.embed) == passages


@pytest.mark.models
@pytest.mark.django_db
def test_the_bots_retriever_gives_the_chunks_that_hold_the_price_line_of_an_uploaded_price_list(bot_a, embedder):
    from pipelines.dialogue.answers import extractive_answer

    bot_a.use_knowledge = True
    bot_a.save()
    with mock.patch("knowledge.services.queue_ingestion"):
        uploaded = upload_document(bot_a.company, "price_list_2026.pdf", pdf_bytes([SALON_PRICE_LIST]), [bot_a])
    assert ingest(uploaded.document.pk).status == "ready"
    retrieve = default_retriever(BotConfig.for_slug(bot_a.slug))
    nails = retrieve("How much does a gel manicure cost?")
    assert nails[0].startswith("Nails\n") and "Gel manicure: 38 dollars." in nails[0]  # whole chunk, headed
    answer = extractive_answer("How much does a gel manicure cost?", nails, embed=embedder.embed)
    assert "38 dollars" in answer.text and "25" not in answer.text
    # What the LLM is given (generative answers): only the closest line.
    assert best_sentences("How much does a gel manicure cost?", nails, embedder.embed) == ["Gel manicure: 38 dollars."]
    massage = retrieve("how much is a massage")
    assert "90 dollars" in extractive_answer("how much is a massage", massage, embed=embedder.embed).text
