"""The call page staff review a call on: what it came to first, then the transcript with each reply's
timing, passages and replacements, times in the company's zone; regenerating its summary and outcome."""

import re
from datetime import datetime, timezone

import pytest
from django.test import Client
from django.urls import reverse

from postcall import processing
from postcall.models import CallOutcome, Source
from tests.postcall.conftest import BOOKING_SCENARIOS, DEAD_LLM, store_call
from voicebot import llm_endpoint
from voicebot.models import Call, CallTurn

pytestmark = pytest.mark.django_db

STARTED = datetime(2026, 7, 1, 12, 5, 3, tzinfo=timezone.utc)  # 14:05:03 in Berlin (summer time)


@pytest.fixture(autouse=True)
def dead_llm(monkeypatch):
    monkeypatch.setenv("VOICEBOT_LLM_BASE_URL", DEAD_LLM)  # the factual summary, deterministically
    llm_endpoint.base_url.cache_clear()
    yield
    llm_endpoint.base_url.cache_clear()


@pytest.fixture
def booked(bot_a):
    bot_a.scenarios = BOOKING_SCENARIOS
    bot_a.save()
    call = store_call(bot_a, started_at=STARTED, ended_at=STARTED.replace(minute=6, second=38))
    processing.process(call.pk)
    return call


def page_of(client, call) -> str:
    response = client.get(reverse("admin:voicebot_call_change", args=[call.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_opens_with_summary_outcome_lead_and_fields_then_the_transcript(client_a, booked):
    page = page_of(client_a, booked)
    transcript = page.index('class="vb-transcript"')
    for marker in ("The caller said: &quot;Hi, my name is Maria Lopez.", "Booking made", 'class="vb-lead"',
                   "Maria Lopez", "Hot</strong>, score 70"):
        assert marker in page, marker
        assert page.index(marker) < transcript, marker
    # Collected fields as a table of label: value, not the raw JSON.
    fields = re.search(r'<table class="vb-fields".*?</table>', page, re.S).group(0)
    assert re.search(r"<th[^>]*>Service</th>\s*<td>cleaning</td>", fields)
    assert re.search(r"<th[^>]*>Phone</th>\s*<td>\+4915123456789</td>", fields)
    assert "{&quot;" not in page.split('class="vb-transcript"')[0].split("After the call")[-1]
    # The identifiers come after the conversation.
    assert transcript < page.index("field-external_id") and transcript < page.index("field-from_number")


def test_times_are_in_the_companys_zone_with_its_name(client_a, booked):
    page = page_of(client_a, booked)
    assert "2026-07-01 14:05:03 Europe/Berlin" in page  # started, local (UTC 12:05)
    assert "2026-07-01 14:06:38 Europe/Berlin" in page  # ended
    assert "12:05:03" not in page and "at 2026-07-01 12:05" not in page
    assert "Call %d from +4930999888 at 2026-07-01 14:05 Europe/Berlin" % booked.pk in page  # the heading
    listing = client_a.get(reverse("admin:voicebot_call_changelist")).content.decode()
    assert "01 Jul 14:05" in listing and "Europe/Berlin" in listing


def test_the_calls_list_has_few_columns_with_outcome_and_lead(client_a, booked):
    listing = client_a.get(reverse("admin:voicebot_call_changelist")).content.decode()
    header = re.search(r"<thead>.*?</thead>", listing, re.S).group(0)
    columns = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', header)
    assert columns == ["time_local", "bot", "from_number", "duration_display", "outcome_display", "lead_display"]
    assert "Booking made" in listing and "Hot (70)" in listing and "1:35" in listing


def test_each_reply_shows_its_timing_passages_and_what_the_fact_check_replaced(client_a, bot_a):
    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="sim", started_at=STARTED, metrics={
        "replies": [{"v2v_ms": 840, "stt_ms": 120, "llm_ttfb_ms": 410, "tts_ttfb_ms": 95}],
        "explanations": {"2": {"passages": [
            {"text": "Gel manicure: 35 dollars. Classic manicure: 25 dollars.", "score": 0.82,
             "document": "price-list.pdf", "document_id": None}]}},
        "grounding": {"checked": 2, "check_ms_max": 0.3, "replaced": [
            {"tried": "A gel manicure is 30 dollars and we are open on Sunday.", "facts": ["day: Sunday"],
             "said": "A gel manicure is 35 dollars."}]}})
    for index, (role, text, latency) in enumerate([("bot", "Alpha here.", None),
                                                   ("caller", "How much is a gel manicure?", None),
                                                   ("bot", "A gel manicure is 35 dollars.", 840)]):
        CallTurn.objects.create(call=call, index=index, role=role, text=text, start_ms=index * 3000,
                                latency_ms=latency)
    page = page_of(client_a, call)
    reply = page[page.index("A gel manicure is 35 dollars.</div>"):]
    assert "replied in 840 ms" in page and "speech to text 120 ms, LLM first token 410 ms, first audio 95 ms" in page
    assert "Passages used (1)" in reply and "price-list.pdf" in reply and "score 0.82" in reply
    assert "Gel manicure: 35 dollars. Classic manicure: 25 dollars." in reply
    assert "Fact check replaced <s>A gel manicure is 30 dollars and we are open on Sunday.</s>" in reply
    assert "day: Sunday" in reply


def test_regenerate_replaces_a_stale_summary_through_the_processing_code(client_a, bot_a):
    call = store_call(bot_a, scenario="", collected={}, transport=Call.Transport.CHAT, from_number="",
                      turns=[("bot", "Alpha here.", None, False),
                             ("caller", "How much is a cleaning?", None, False),
                             ("bot", "Sorry, I didn't catch that. Could you say it another way?", 800, False)])
    CallOutcome.objects.create(call=call, company=bot_a.company, result="information", summary_source="llm",
                               summary="The caller asked about a 3-day delivery of nails. We are open on Sunday.")
    page = page_of(client_a, call)
    url = reverse("admin:voicebot_call_regenerate", args=[call.pk])
    assert f'action="{url}"' in page and "csrfmiddlewaretoken" in page[page.index(url):]
    assert client_a.get(url).status_code == 405  # a change: POST only

    response = client_a.post(url)
    assert response.status_code == 302 and response["Location"].endswith(f"/voicebot/call/{call.pk}/change/")
    outcome = CallOutcome.objects.get(call=call)
    assert outcome.summary_source == Source.FALLBACK
    assert outcome.summary.startswith('The caller said: "How much is a cleaning?"')
    assert outcome.result == CallOutcome.Result.FAILED  # its one reply was the fallback phrase
    assert "Regenerated call" in client_a.get(response["Location"]).content.decode()


def test_regenerate_needs_csrf(staff_a, bot_a):
    call = store_call(bot_a)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_a)
    assert strict.post(reverse("admin:voicebot_call_regenerate", args=[call.pk])).status_code == 403
    assert not CallOutcome.objects.filter(call=call).exists()


def test_regenerate_is_scoped_to_the_staffs_companies(client, staff_b, bot_a):
    call = store_call(bot_a)
    client.force_login(staff_b)
    assert client.post(reverse("admin:voicebot_call_regenerate", args=[call.pk])).status_code == 404
    response = client.post(reverse("admin:voicebot_call_changelist"),
                           {"action": "regenerate_outcomes", "_selected_action": [str(call.pk)]})
    assert response.status_code in (200, 302)
    assert not CallOutcome.objects.filter(call=call).exists()  # nothing processed for another company


def test_the_list_action_regenerates_the_selected_calls(client_a, bot_a):
    calls = [store_call(bot_a, from_number=f"+49309998880{i}") for i in range(2)]
    response = client_a.post(reverse("admin:voicebot_call_changelist"),
                             {"action": "regenerate_outcomes", "_selected_action": [str(c.pk) for c in calls]})
    assert response.status_code == 302
    assert CallOutcome.objects.filter(call__in=calls).count() == 2


def test_a_stored_chat_shows_the_passages_its_knowledge_reply_used(client_a, bot_a):
    from pipelines.config import BotConfig
    from pipelines.dialogue.chat import ChatSession

    bot_a.use_knowledge = True
    bot_a.answer_style = "extractive"
    bot_a.save()
    price_list = "Price list. A gel manicure costs 35 dollars. A classic manicure costs 25 dollars."
    chat = ChatSession(BotConfig.for_slug(bot_a.slug), retrieve=lambda q: [price_list], use_default_models=False)
    chat.start()
    turn = chat.send("How much is a gel manicure?")
    assert "35" in turn.reply, turn
    call = chat.end()
    reply_index = next(t.index for t in call.turns.order_by("index") if t.role == "bot" and "35" in t.text)
    assert call.metrics["explanations"][str(reply_index)]["passages"]
    page = page_of(client_a, call)
    reply = page[page.index('class="vb-transcript"'):]
    assert "Passages used (1)" in reply and "A gel manicure costs 35 dollars." in reply


def test_a_live_calls_reply_shows_the_passages_the_brain_used(client_a, bot_a):
    """The call pipeline's brain (ScenarioProcessor in a real Pipecat pipeline) keeps what each reply was
    based on; stored as the live call stores it, the call page shows the passages beside that reply."""
    import asyncio

    from pipelines.config import BotConfig
    from pipelines.dialogue.chat import stored_explanation
    from pipelines.dialogue.engine import DialogueEngine
    from pipelines.dialogue.processor import ScenarioProcessor
    from tests.dialogue.test_processor import converse, spoken

    bot_a.use_knowledge = True
    bot_a.answer_style = "extractive"  # the documents' own words: no LLM needed
    bot_a.save()
    price_list = "Price list. A gel manicure costs 35 dollars. A classic manicure costs 25 dollars."
    engine = DialogueEngine(BotConfig.for_slug(bot_a.slug), embed=None, retrieve=lambda q: [price_list])
    processor = ScenarioProcessor(engine)
    turns, _context = asyncio.run(converse(processor, DEAD_LLM, ["How much is a gel manicure?"]))
    said = " ".join(spoken(turns[0]))
    assert "35" in said, said
    assert processor.explanations and processor.explanations[0]["question"] == "How much is a gel manicure?"

    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="sim", started_at=STARTED, metrics={
        "reply_explanations": [stored_explanation(why) for why in processor.explanations]})
    for index, (role, text) in enumerate([("bot", "Alpha here."), ("caller", "how much is a gel manicure"),
                                          ("bot", said)]):
        CallTurn.objects.create(call=call, index=index, role=role, text=text, start_ms=index * 3000)
    reply = page_of(client_a, call).split(said, 1)[1]
    assert "Passages used (1)" in reply and "A gel manicure costs 35 dollars." in reply
