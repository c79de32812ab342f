"""Try this bot explains each reply: the scenario matched and its score, the field asked, the passages
used (scores, documents linked in admin), why a fallback was chosen; the chat is stored on goodbye and
on the button with a link to the stored call, and is timed from its first message."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse

from pipelines.dialogue.chat import ChatSession
from pipelines.dialogue.knowledge import PassageRetriever
from pipelines.dialogue.llm import ChatLLM
from tests.dialogue.conftest import SALON_FACTS, fixed_clock
from tests.waiting import wait_until
from voicebot.models import Call

pytestmark = [pytest.mark.django_db, pytest.mark.models]

CLOSED_PORT_LLM = "http://127.0.0.1:9/v1"  # nothing listens on the discard port: the LLM is unavailable
PRICES = (b"Price list\n\nA gel manicure costs 35 dollars and takes 45 minutes.\n"
          b"A pedicure costs 40 dollars.\n\nOpening hours\n\n"
          b"We are open Tuesday to Saturday from 9 am to 7 pm; closed on Sunday and Monday.\n")


def chat(config, embed, retrieve, llm=None) -> ChatSession:
    session = ChatSession(config, embed=embed, retrieve=retrieve, clock=fixed_clock, use_default_models=False,
                          llm=llm or ChatLLM(CLOSED_PORT_LLM, "test-model", timeout=2))
    session.start()
    return session


def test_a_booking_reply_names_its_scenario_score_and_the_field_asked(demo_config, embed, salon_knowledge):
    turn = chat(demo_config, embed, salon_knowledge).send("I'd like to book an appointment")
    assert turn.why["scenario"] == {"name": "booking", "how": "keyword", "score": 2.0}  # "book", "appointment"
    assert turn.why["field"] == "service" and "fallback" not in turn.why

    by_meaning = chat(demo_config, embed, salon_knowledge).send("could you squeeze me in for my nails on friday")
    assert by_meaning.why["scenario"]["name"] == "booking"
    assert by_meaning.why["scenario"]["how"] in ("similarity", "choice") and by_meaning.why["scenario"]["score"] > 0


def test_a_knowledge_reply_lists_its_passages_with_scores(demo_config, embed, salon_knowledge):
    turn = chat(demo_config, embed, salon_knowledge).send("How much does a pedicure cost?")
    assert "40 dollars" in turn.reply
    assert turn.why["scenario"] == {"name": "support", "how": "keyword", "score": 2.0}  # "how much", "cost"
    passages = turn.why["passages"]
    assert passages and "pedicure costs 40 dollars" in passages[0]["text"]
    assert all(0.3 <= p["score"] <= 1 for p in passages)
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)
    assert "fallback" not in turn.why


def test_why_a_fallback_was_chosen(demo_config, embed):
    nothing_close = PassageRetriever(SALON_FACTS, embed, top_k=2, threshold=0.99)
    turn = chat(demo_config, embed, nothing_close).send("What is the price of a haircut?")
    assert turn.kind == "fallback"
    assert turn.why["passages"] == [] and turn.why["fallback"] == "no knowledge passage above the score threshold"

    no_knowledge = dataclasses.replace(demo_config, use_knowledge=False, scenarios=())
    turn = chat(no_knowledge, embed, None).send("Tell me a story about dragons")
    assert turn.kind == "fallback" and "scenario" not in turn.why
    assert turn.why["fallback"].startswith("the language model is unavailable")
    assert turn.why["llm"]["model"] == "test-model"


def test_grounding_that_replaced_a_sentence_is_the_reason(demo_config, embed, salon_knowledge):
    """The language model (a stand-in at its HTTP boundary) invents a price; the fact check replaces it."""
    def llm_server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant",
                                                                  "content": "A pedicure costs 99 dollars."}}]})

    llm = ChatLLM("http://llm.test/v1", "test-model", client=httpx.Client(transport=httpx.MockTransport(llm_server)))
    generative = dataclasses.replace(demo_config, answer_style="generative")
    turn = chat(generative, embed, salon_knowledge, llm=llm).send("How much does a pedicure cost?")
    assert "99" not in turn.reply and "40 dollars" in turn.reply
    [replaced] = turn.why["grounding"]
    assert replaced["tried"] == "A pedicure costs 99 dollars." and "price: 99 dollars" in replaced["facts"]
    assert turn.why["fallback"].startswith("grounding replaced a sentence")


def test_explanations_survive_the_snapshot_and_old_snapshots_still_load(demo_config, embed, salon_knowledge):
    session = chat(demo_config, embed, salon_knowledge)
    session.send("How much does a pedicure cost?")
    data = json.loads(json.dumps(session.snapshot()))
    assert all(len(row) == 5 for row in data["turns"])  # the REST chat reads these rows as they are
    again = ChatSession.from_snapshot(demo_config, data, embed=embed, retrieve=salon_knowledge,
                                      use_default_models=False, llm=ChatLLM(CLOSED_PORT_LLM, "m"))
    assert again.transcript[2]["why"]["scenario"]["name"] == "support"
    del data["explanations"]  # a snapshot stored before explanations existed
    old = ChatSession.from_snapshot(demo_config, data, embed=embed, retrieve=salon_knowledge,
                                    use_default_models=False, llm=ChatLLM(CLOSED_PORT_LLM, "m"))
    assert [t["why"] for t in old.transcript] == [{}, {}, {}]


# --- the admin page --------------------------------------------------------------------------------

@pytest.fixture
def demo_client(client, demo_bot):
    client.force_login(get_user_model().objects.get(username="demo"))
    return client


@pytest.fixture
def price_list(demo_bot):
    """The demo salon's price list, uploaded and ingested for real (in this process)."""
    from knowledge.ingest import ingest
    from knowledge.services import upload_document

    document = upload_document(demo_bot.company, "prices.txt", PRICES, [demo_bot]).document
    document = ingest(document.pk)
    assert document.status == "ready", document.error
    return document


def test_the_page_explains_a_reply_and_links_its_documents(demo_client, demo_bot, price_list):
    url = reverse("try_bot", args=[demo_bot.pk])
    demo_client.post(url, {"message": "How much is a gel manicure?"})
    page = demo_client.get(url).content.decode()
    assert "35 dollars" in page
    # The support scenario matched (it has no fields, so none stays active): the page says so.
    assert '<td id="vb-scenario">support (matched the last message; nothing to collect)</td>' in page
    assert "Scenario: <b>support</b>" in page and "matched by keyword" in page
    document_url = reverse("admin:knowledge_knowledgedocument_change", args=[price_list.pk])
    assert f'<a href="{document_url}">prices.txt</a>' in page
    passage = page.split('class="vb-passage">', 1)[1]
    score = float(passage.split("<b>", 1)[1].split("</b>", 1)[0])
    assert 0.3 <= score <= 1

    demo_client.post(url, {"message": "Can I park my spaceship there?"})
    page = demo_client.get(url).content.decode()
    assert "Fallback because:" in page


def test_goodbye_stores_the_chat_links_it_and_times_it_from_the_first_message(demo_client, demo_bot):
    url = reverse("try_bot", args=[demo_bot.pk])
    loaded = datetime.now(timezone.utc)
    demo_client.get(url)  # the page is loaded ...
    wait_until(lambda: datetime.now(timezone.utc) - loaded > timedelta(seconds=1.1), 5,
               what="a second past the page load")
    first_message = datetime.now(timezone.utc)  # ... and the first message comes a while later
    demo_client.post(url, {"message": "I'd like to book an appointment"})
    response = demo_client.post(url, {"message": "That's all, goodbye"})
    call = Call.objects.get(bot=demo_bot)
    assert call.transport == "chat" and call.end_reason == "goodbye"
    assert call.started_at >= first_message.replace(microsecond=0)
    assert call.turns.order_by("start_ms").first().start_ms == 0  # the greeting, at the start
    call_url = reverse("admin:voicebot_call_change", args=[call.pk])
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert f'<a href="{call_url}">Call {call.pk}</a>' in message
    page = demo_client.get(url).content.decode()
    assert f'<a href="{call_url}" id="vb-stored-call">' in page


def test_the_button_stores_the_chat_and_links_the_call(demo_client, demo_bot):
    url = reverse("try_bot", args=[demo_bot.pk])
    nothing = demo_client.post(url, {"action": "end"}, follow=True)
    assert "Nothing to store" in nothing.content.decode() and not Call.objects.filter(bot=demo_bot).exists()
    demo_client.post(url, {"message": "I'd like to book an appointment"})
    page = demo_client.post(url, {"action": "end"}, follow=True).content.decode()
    call = Call.objects.get(bot=demo_bot)
    assert f'Chat stored as <a href="{reverse("admin:voicebot_call_change", args=[call.pk])}">Call {call.pk}</a>' \
        in page
