"""Placing an outbound call (API and admin), following its provider's status, storing its conversation
into the placed row, and its {{variables}} in the bot's texts. No models, no runner: the provider is
played by calling ``record_status`` exactly as its status callbacks do."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from pipelines.call_store import CallRecord, TurnRecord, save_call_record
from pipelines.config import BotConfig
from tests.api.conftest import assert_error
from voicebot.models import ApiKey, Call, PhoneNumber
from voicebot.outbound_calls import DIAL_TASK, record_status


@pytest.fixture
def twilio_number(bot_a):
    return PhoneNumber.objects.create(company=bot_a.company, bot=bot_a, number="+4930123456", provider="twilio")


@pytest.fixture
def api_a(company_a):
    _key, raw = ApiKey.issue(company_a, "crm")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def place(api, **body):
    return api.post("/api/v1/calls/", {"bot": "alpha-desk", "to": "030 9876543", **body}, format="json")


def test_the_api_places_a_queued_call_and_queues_its_dialling(api_a, twilio_number, queued,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = place(api_a, variables={"name": "Dana", "appointment_time": "3 pm"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["direction"] == "outbound"
    assert body["to_number"] == "+49309876543"  # read in the company's country (DE)
    assert body["from_number"] == "+4930123456" and body["transport"] == "twilio"
    assert body["variables"] == {"name": "Dana", "appointment_time": "3 pm"}
    assert queued == [(DIAL_TASK, [body["id"]])]
    assert api_a.get(f"/api/v1/calls/{body['id']}/").json()["status"] == "queued"


def test_bad_call_requests_name_the_field_and_place_nothing(api_a, bot_a, bot_b, queued):
    """Nothing stored, nothing queued; the 400 names the field (on_commit never runs: nothing is committed)."""
    assert assert_error(place(api_a), 400, "invalid")["fields"] == {"from": [
        "bot 'alpha-desk' has no active Twilio, Telnyx, Plivo or SIP number to call from; "
        "add one or name one in 'from'"]}
    PhoneNumber.objects.create(company=bot_a.company, bot=bot_a, number="+4930123456", provider="twilio")
    response = place(api_a, to="12")
    assert "not a valid phone number" in assert_error(response, 400, field="to")["fields"]["to"][0]
    response = place(api_a, bot="beta-desk")  # another company's bot does not exist for this key
    assert_error(response, 400, field="bot")
    response = place(api_a, **{"from": "+12125550100"})
    assert "not an active Twilio" in assert_error(response, 400, field="from")["fields"]["from"][0]
    response = place(api_a, variables={"name": {"nested": 1}})
    assert_error(response, 400, field="variables.name")
    assert not Call.objects.exists() and queued == []


def test_the_status_moves_forward_only_and_a_final_one_ends_the_call(bot_a, twilio_number, queued):
    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="twilio", direction="outbound",
                               status="queued", to_number="+49309876543")
    record_status(call_id=call.pk, status="ringing", external_id="CA1")
    record_status(call_id=call.pk, status="in-progress")
    record_status(call_id=call.pk, status="ringing")  # late: ignored
    call.refresh_from_db()
    assert (call.status, call.external_id, call.answered_at is not None) == ("in-progress", "CA1", True)
    record_status(call_id=call.pk, status="completed")
    call.refresh_from_db()
    assert call.status == "completed" and call.ended_at is not None and call.end_reason == ""  # the runner stores it

    unanswered = Call.objects.create(company=bot_a.company, bot=bot_a, transport="twilio", direction="outbound",
                                     status="queued", to_number="+49309876543")
    record_status(call_id=unanswered.pk, status="busy")
    record_status(call_id=unanswered.pk, status="completed")  # a final status stays
    unanswered.refresh_from_db()
    assert (unanswered.status, unanswered.end_reason, unanswered.answered_at) == ("busy", "not_answered", None)


def test_the_conversation_is_stored_into_the_placed_row_once(bot_a, queued, django_capture_on_commit_callbacks):
    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="twilio", direction="outbound",
                               status="in-progress", to_number="+49309876543", from_number="+4930123456",
                               external_id="CA9", variables={"name": "Dana"})
    now = timezone.now()
    record = CallRecord(company_id=bot_a.company_id, bot_id=bot_a.pk, transport="twilio", started_at=now,
                        ended_at=now, end_reason="voicemail", status="voicemail", external_id="CA9",
                        direction="outbound", from_number="+4930123456", to_number="+49309876543", call_id=call.pk,
                        turns=[TurnRecord("bot", "Hi Dana, this is Alpha.")], metrics={"notes": ["beep"]})
    with django_capture_on_commit_callbacks(execute=True):
        stored = save_call_record(record)
    assert queued == [("postcall.tasks.process_call", [call.pk])]
    assert stored.pk == call.pk and Call.objects.count() == 1
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.variables) == ("voicemail", "voicemail", {"name": "Dana"})
    assert [t.text for t in call.turns.all()] == ["Hi Dana, this is Alpha."]
    save_call_record(record)  # a replay: nothing doubles
    assert call.turns.count() == 1


def test_variables_fill_the_greeting_prompts_and_scenarios(bot_a, queued):
    bot_a.greeting = "Hi {{name}}, this is Alpha about your {{ appointment_time }} visit."
    bot_a.system_prompt = "You call {{name}}. {{unknown}}"
    bot_a.voicemail_message = "Hi {{name}}, please call us back."
    bot_a.scenarios = [{"name": "confirm", "triggers": ["confirm"], "fields": [
        {"name": "ok", "prompt": "Can you make it at {{appointment_time}}, {{name}}?", "type": "text"}]}]
    bot_a.save()
    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="twilio", direction="outbound",
                               status="queued", variables={"name": "Dana", "appointment_time": "3 pm"})
    config = BotConfig.for_outbound_call(call.pk)
    assert config.greeting == "Hi Dana, this is Alpha about your 3 pm visit."
    assert config.system_prompt == "You call Dana. "  # a name without a value is never read out
    assert config.voicemail_message == "Hi Dana, please call us back."
    assert config.scenarios[0]["fields"][0]["prompt"] == "Can you make it at 3 pm, Dana?"
    assert config.outbound and config.outbound_call_id == call.pk
    call.end_reason, call.status = "caller_hangup", "completed"
    call.save()
    with pytest.raises(Exception, match="already ended"):
        BotConfig.for_outbound_call(call.pk)


def test_admin_call_a_number(client_a, bot_a, bot_b, twilio_number, queued):
    url = f"/admin/voicebot/bot/{bot_a.pk}/place-call/"
    page = client_a.get(url)
    assert page.status_code == 200 and "+4930123456" in page.content.decode()
    response = client_a.post(url, {"to": "+49 30 9876543", "from_number": "", "variables": "name=Dana\n"})
    call = Call.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/voicebot/call/{call.pk}/change/")
    assert (call.to_number, call.variables, call.status) == ("+49309876543", {"name": "Dana"}, "queued")
    bad = client_a.post(url, {"to": "+49 30 9876543", "variables": "no equals sign"})
    assert "line 1: write name=value" in bad.content.decode()
    assert client_a.get(f"/admin/voicebot/bot/{bot_b.pk}/place-call/").status_code == 404
