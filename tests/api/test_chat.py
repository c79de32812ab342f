"""POST /api/v1/bots/{slug}/chat/: a booking in several requests, stored as a call; scoping, validation, locking.

The demo salon bot (seed_demo) with its booking_created tool pointed at a real local
receiver; the real embedder (scenario triggers by meaning). Every scripted step of the
booking runs without the LLM, so no LLM is needed here.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection

from pipelines.models import ChatConversation
from tests.api.conftest import assert_error, key_client
from tests.dialogue.conftest import RECEIVER_SECRET, Receiver
from voicebot.models import ApiKey, Bot, BotTool, Call

pytestmark = pytest.mark.models

SLUG = "elegant-receptionist"
CHAT = f"/api/v1/bots/{SLUG}/chat/"
GREETING = "Hello! Elegant beauty salon. How can I help?"


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def demo_bot(db, receiver):
    call_command("seed_demo", stdout=io.StringIO())
    bot = Bot.objects.get(slug=SLUG)
    BotTool.objects.create(bot=bot, name="booking_created", description="Create the booking in the calendar.",
                           url=receiver.url + "/bookings", secret=RECEIVER_SECRET, timeout_sec=5)
    return bot


@pytest.fixture
def demo_api(demo_bot):
    return key_client(demo_bot.company, name="website chat")


def say(api, text=None, conversation=None, **extra):
    body = {"text": text, **extra} if text is not None else dict(extra)
    if conversation:
        body["conversation"] = conversation
    return api.post(CHAT, body, format="json")


def ok(response) -> dict:
    assert response.status_code == 200, response.content[:1000]
    return response.json()


@pytest.mark.django_db
def test_a_booking_in_several_requests_is_stored_as_a_chat_call(demo_api, demo_bot, receiver):
    first = ok(say(demo_api, "Hi, I'd like to book an appointment"))
    conversation = first["conversation"]
    assert first["greeting"] == GREETING
    assert first["reply"] == "Sure. Which service would you like?"
    assert first["state"]["scenario"] == "booking" and first["state"]["field"] == "service"
    assert (first["ended"], first["call"]) == (False, None)

    asked = []
    for text, reply in [("A manicure, please", "Which day?"), ("tomorrow", "What time?"),
                        ("half past four", "Your phone number for the confirmation?")]:
        answer = ok(say(demo_api, text, conversation))
        assert answer["conversation"] == conversation and answer["greeting"] is None
        assert answer["reply"] == reply, answer
        asked.append(answer["state"]["field"])
    assert asked == ["date", "time", "phone"]

    tomorrow = (datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=1)).isoformat()
    confirm = ok(say(demo_api, "two one two, five five five, oh one two three", conversation))
    assert confirm["state"]["awaiting"] == "confirm"
    assert confirm["reply"].startswith("Let me confirm: service manicure, date ")
    assert confirm["state"]["values"] == {"service": "manicure", "date": tomorrow, "time": "16:30",
                                          "phone": "+12125550123"}
    assert receiver.requests == []  # nothing delivered before the visitor says yes

    done = ok(say(demo_api, "yes, that's right", conversation))
    fields = {"service": "manicure", "date": tomorrow, "time": "16:30", "phone": "+12125550123"}
    assert done["reply"] == "You're booked. See you soon!"  # the receiver's `say`
    assert done["state"]["collected"] == fields
    assert done["state"]["completed"] == ["booking"] and done["state"]["scenario"] is None
    assert (done["ended"], done["call"]) == (False, None)  # the visitor may go on
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0]["body"])["fields"] == fields

    ended = ok(say(demo_api, conversation=conversation, end=True))
    assert ended["ended"] is True and isinstance(ended["call"], int) and ended["reply"] == ""
    call = Call.objects.get(pk=ended["call"])
    assert call.transport == Call.Transport.CHAT and call.company_id == demo_bot.company_id
    assert call.bot_id == demo_bot.pk and call.scenario == "booking" and call.collected_fields == fields
    assert call.external_id == f"chat-{conversation.replace('-', '')}"
    assert call.end_reason == "caller_hangup"
    assert call.metrics["scenario_engine"]["actions"][0]["ok"] is True

    stored = ok(demo_api.get(f"/api/v1/calls/{call.pk}/"))
    assert stored["transport"] == "chat" and stored["collected_fields"] == fields
    texts = [(t["role"], t["text"]) for t in stored["turns"]]
    assert texts[:3] == [("bot", GREETING), ("caller", "Hi, I'd like to book an appointment"),
                         ("bot", "Sure. Which service would you like?")]
    assert texts[-1] == ("bot", "You're booked. See you soon!") and len(texts) == 1 + 2 * 6
    assert call.pk in [row["id"] for row in ok(demo_api.get("/api/v1/calls/?transport=chat"))["results"]]

    so_far = ok(demo_api.get(f"{CHAT}{conversation}/"))
    assert so_far["conversation"] == conversation and so_far["bot"] == SLUG
    assert [(t["role"], t["text"]) for t in so_far["turns"]] == texts
    assert so_far["ended"] is True and so_far["call"] == call.pk and so_far["state"]["collected"] == fields

    again = say(demo_api, "one more thing", conversation)
    assert_error(again, 409, "conflict")
    assert Call.objects.get(pk=call.pk).turns.count() == 13  # nothing added to the stored call


@pytest.mark.django_db
def test_the_bot_ending_the_conversation_stores_it(demo_api):
    first = ok(say(demo_api, "I'd like to book an appointment"))
    bye = ok(say(demo_api, "goodbye", first["conversation"]))
    assert bye["ended"] is True and bye["state"]["end_reason"] == "goodbye" and bye["call"]
    call = Call.objects.get(pk=bye["call"])
    assert call.end_reason == "goodbye" and call.transport == "chat"
    assert_error(say(demo_api, "hello?", first["conversation"]), 409, "conflict")
    assert ChatConversation.objects.get(pk=first["conversation"]).call_id == call.pk


@pytest.mark.django_db
def test_conversations_are_scoped_to_the_company_and_the_bot(demo_api, demo_bot, api_b, bot_b):
    first = ok(say(demo_api, "I'd like to book an appointment"))
    conversation = first["conversation"]
    assert_error(say(api_b, "hi"), 404, "not_found")  # B's key cannot chat with the salon's bot
    assert_error(api_b.get(f"{CHAT}{conversation}/"), 404, "not_found")
    theirs = api_b.post("/api/v1/bots/beta-desk/chat/", {"conversation": conversation, "text": "a manicure"},
                        format="json")
    assert_error(theirs, 404, "not_found")  # through B's own bot: still not B's conversation
    other = Bot.objects.create(company=demo_bot.company, name="Night line", slug="salon-night", greeting="Hi.")
    through_other = demo_api.post(f"/api/v1/bots/{other.slug}/chat/", {"conversation": conversation, "text": "hi"},
                                  format="json")
    assert_error(through_other, 404, "not_found")  # the same company's other bot
    assert_error(demo_api.get(f"/api/v1/bots/{other.slug}/chat/{conversation}/"), 404, "not_found")
    # None of that touched the conversation.
    assert len(ok(demo_api.get(f"{CHAT}{conversation}/"))["turns"]) == 3
    # B's own chat works, and A's key cannot see it.
    mine = ok(api_b.post("/api/v1/bots/beta-desk/chat/", {"text": "hello"}, format="json"))
    assert mine["greeting"] == "Beta here."
    assert_error(demo_api.get(f"/api/v1/bots/beta-desk/chat/{mine['conversation']}/"), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({}, "text"),
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"text": "a" * 1001}, "text"),
    ({"text": "hi\x00there"}, "text"),
    ({"text": "hi", "conversation": "not-a-uuid"}, "conversation"),
    ({"text": "hi", "end": "perhaps"}, "end"),
])
def test_bad_requests_name_the_field_and_store_nothing(demo_api, body, field):
    response = demo_api.post(CHAT, body, format="json")
    assert_error(response, 400, "invalid", field=field)
    assert not ChatConversation.objects.exists()


@pytest.mark.django_db
def test_unknown_conversation_and_bot_are_404(demo_api):
    assert_error(say(demo_api, "hi", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"), 404, "not_found")
    assert_error(demo_api.post("/api/v1/bots/no-such-bot/chat/", {"text": "hi"}, format="json"), 404, "not_found")
    assert_error(demo_api.get(f"{CHAT}1b4e28ba-2fa1-11d2-883f-0016d3cca427/"), 404, "not_found")
    assert_error(demo_api.get(f"{CHAT}not-a-uuid/"), 404, "not_found")
    for slug in ("no.such", "caf%C3%A9", "a%00b", "x" * 300):  # slugs no bot can have: the view's 404 too
        assert_error(demo_api.post(f"/api/v1/bots/{slug}/chat/", {"text": "hi"}, format="json"), 404, "not_found")


@pytest.mark.django_db
def test_a_read_only_key_may_read_a_conversation_but_not_chat(demo_api, demo_bot):
    readonly = key_client(demo_bot.company, access=ApiKey.Access.READ, name="dashboards")
    assert_error(readonly.post(CHAT, {"text": "hi"}, format="json"), 403, "permission_denied")
    assert not ChatConversation.objects.exists()
    conversation = ok(say(demo_api, "hi"))["conversation"]
    assert_error(say(readonly, "hello", conversation), 403, "permission_denied")
    assert len(ok(readonly.get(f"{CHAT}{conversation}/"))["turns"]) == 3


@pytest.mark.django_db
def test_an_inactive_bot_does_not_chat(demo_api, demo_bot):
    conversation = ok(say(demo_api, "hi"))["conversation"]
    Bot.objects.filter(pk=demo_bot.pk).update(active=False)
    assert_error(say(demo_api, "hi"), 409, "conflict")
    assert_error(say(demo_api, "hello", conversation), 409, "conflict")
    assert ChatConversation.objects.count() == 1
    assert len(ok(demo_api.get(f"{CHAT}{conversation}/"))["turns"]) == 3  # still readable


@pytest.mark.django_db(transaction=True)
def test_requests_at_once_on_one_conversation_lose_no_turn(demo_bot):
    api = key_client(demo_bot.company, name="website chat")
    conversation = ok(say(api, "hello"))["conversation"]
    texts = [f"blorp zanzibar quux {n}" for n in range(4)]
    start = threading.Barrier(len(texts))
    answers = {}

    def send(text):
        client = key_client(demo_bot.company, name=text)  # a client per thread
        try:
            start.wait()
            answers[text] = say(client, text, conversation).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert answers == {text: 200 for text in texts}
    turns = ok(api.get(f"{CHAT}{conversation}/"))["turns"]
    said = [t["text"] for t in turns if t["role"] == "caller"]
    assert said[0] == "hello" and sorted(said[1:]) == texts  # every turn kept, each answered in order
    assert [t["role"] for t in turns] == ["bot"] + ["caller", "bot"] * 5

