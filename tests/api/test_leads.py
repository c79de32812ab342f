"""/api/v1/outcomes/, /leads/ (and their CSV export), /bookings/: scoped, filtered, read-only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from postcall import processing
from postcall.models import CallOutcome, Lead
from tests.api.conftest import assert_error
from tests.postcall.conftest import BOOKING_SCENARIOS, DEAD_LLM, store_call
from voicebot import llm_endpoint
from voicebot.models import Bot, Call


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


def make_call(bot, started_at, *, result="lead", booking=None, lead=None, direction=Call.Direction.INBOUND,
              from_number="+4930999888", to_number="+4930123456"):
    """A stored call with its outcome (and lead): the rows the post-call task writes."""
    call = Call.objects.create(company=bot.company, bot=bot, transport=Call.Transport.TWILIO, direction=direction,
                               from_number=from_number, to_number=to_number, started_at=started_at,
                               ended_at=started_at + timedelta(minutes=2))
    outcome = CallOutcome.objects.create(
        call=call, company=bot.company, result=result, intent="book" if booking else "ask", intent_source="scenario",
        summary=f"Call of {started_at:%d %b}.", summary_source="fallback",
        fields={"service": {"value": "cleaning", "source": "scenario"}}, booking=booking)
    if lead is not None:
        created = lead.pop("created_at", started_at)
        row = Lead.objects.create(call=call, company=bot.company, bot=bot, **lead)
        Lead.objects.filter(pk=row.pk).update(created_at=created)
    return call, outcome


@pytest.fixture
def rows(bot_a, bot_b):
    """Company A: four calls over three days on two bots (two bookings; a hot, a warm and a cold lead); B: one."""
    other_bot = Bot.objects.create(company=bot_a.company, name="Alpha night line", slug="alpha-night")
    _, booked_outcome = make_call(
        bot_a, at(10), result="booking", booking={"service": "cleaning", "date": "2026-11-17"},
        lead={"name": "Maria Lopez", "phone": "+4915123456789", "score": 70, "tier": "hot",
              "score_reasons": [{"signal": "asked_booking", "points": 20}, {"signal": "gave_phone", "points": 50}]})
    _, warm_outcome = make_call(
        bot_a, at(11), lead={"name": "=HYPERLINK(\"http://x\")", "email": "a@example.com", "score": 25,
                             "tier": "warm", "score_reasons": [{"signal": "asked_price", "points": 25}]})
    _, outbound_outcome = make_call(
        other_bot, at(12), result="booking", booking={"service": "whitening"}, direction=Call.Direction.OUTBOUND,
        from_number="+4930123456", to_number="+4917000000",
        lead={"phone": "+4917000000", "score": 5, "tier": "cold"})
    _, info_outcome = make_call(bot_a, at(12, 15), result="information")
    _, other_outcome = make_call(bot_b, at(11), result="booking", booking={"service": "haircut"},
                                 lead={"name": "Bea Other", "phone": "+12125550111", "score": 90, "tier": "hot"})
    return {"booked": booked_outcome, "warm": warm_outcome, "outbound": outbound_outcome, "info": info_outcome,
            "other": other_outcome}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [item["id"] for item in response.json()["results"]]


# --- Outcomes ---------------------------------------------------------------------------------------


def test_outcomes_list_and_detail_are_the_keys_companys_only(api_a, rows):
    listed = ids(api_a.get("/api/v1/outcomes/"))
    assert listed == [rows[name].pk for name in ("info", "outbound", "warm", "booked")]  # newest call first
    detail = api_a.get(f"/api/v1/outcomes/{rows['booked'].pk}/").json()
    assert detail == {
        "id": rows["booked"].pk, "company": rows["booked"].company_id, "call": rows["booked"].call_id,
        "bot": "alpha-desk", "started_at": "2026-11-10T10:00:00Z", "result": "booking", "intent": "book",
        "summary": "Call of 10 Nov.", "fields": {"service": {"value": "cleaning", "source": "scenario"}},
        "booking": {"service": "cleaning", "date": "2026-11-17"},
        "sources": {"intent": "scenario", "summary": "fallback"}, "processed_at": detail["processed_at"]}
    assert_error(api_a.get(f"/api/v1/outcomes/{rows['other'].pk}/"), 404, "not_found")


def test_outcome_filters(api_a, rows):
    assert ids(api_a.get("/api/v1/outcomes/", {"result": "booking"})) == [rows["outbound"].pk, rows["booked"].pk]
    assert ids(api_a.get("/api/v1/outcomes/", {"bot": "alpha-night"})) == [rows["outbound"].pk]
    assert ids(api_a.get("/api/v1/outcomes/", {"bot": "beta-desk"})) == []  # B's bot: nothing of A's
    # A date: from its start; to its end (all of that day).
    assert ids(api_a.get("/api/v1/outcomes/", {"since": "2026-11-11", "until": "2026-11-11"})) == [rows["warm"].pk]
    assert ids(api_a.get("/api/v1/outcomes/", {"since": "2026-11-12T12:00:00Z"})) == [rows["info"].pk]
    assert ids(api_a.get("/api/v1/outcomes/", {"until": "2026-11-10T10:00:00Z"})) == [rows["booked"].pk]
    assert_error(api_a.get("/api/v1/outcomes/", {"result": "great"}), 400, "invalid", field="result")
    assert_error(api_a.get("/api/v1/outcomes/", {"since": "last week"}), 400, "invalid", field="since")
    assert_error(api_a.get("/api/v1/outcomes/", {"until": "2026-13-01"}), 400, "invalid", field="until")


def test_outcome_of_a_really_processed_call(api_a, bot_a, monkeypatch):
    """The post-call task's own rows (dead LLM: the factual fallback summary) as the API serves them."""
    monkeypatch.setenv("VOICEBOT_LLM_BASE_URL", DEAD_LLM)
    llm_endpoint.base_url.cache_clear()
    try:
        bot_a.scenarios = BOOKING_SCENARIOS
        bot_a.save()
        call = store_call(bot_a)
        processing.process(call.pk)
    finally:
        llm_endpoint.base_url.cache_clear()
    outcome = api_a.get("/api/v1/outcomes/").json()["results"][0]
    assert outcome["call"] == call.pk and outcome["result"] == "booking" and outcome["summary"]
    assert outcome["booking"]["service"] == "cleaning" and outcome["sources"]["summary"] == "fallback"
    booking = api_a.get("/api/v1/bookings/").json()["results"][0]
    assert (booking["call"], booking["caller_number"], booking["bot"]) == (call.pk, "+4930999888", "alpha-desk")
    lead = api_a.get("/api/v1/leads/").json()["results"][0]
    assert (lead["call"], lead["phone"], lead["tier"], lead["name"]) == (call.pk, "+4915123456789", "hot",
                                                                         "Maria Lopez")


# --- Bookings ---------------------------------------------------------------------------------------


def test_bookings_are_the_outcomes_with_a_booking(api_a, rows):
    listed = api_a.get("/api/v1/bookings/").json()["results"]
    assert [b["id"] for b in listed] == [rows["outbound"].pk, rows["booked"].pk]
    outbound = listed[0]
    assert outbound == {"id": rows["outbound"].pk, "company": rows["outbound"].company_id,
                        "call": rows["outbound"].call_id, "bot": "alpha-night", "booking": {"service": "whitening"},
                        "caller_number": "+4917000000", "direction": "outbound",
                        "started_at": "2026-11-12T10:00:00Z"}
    assert listed[1]["caller_number"] == "+4930999888"  # inbound: the caller
    assert ids(api_a.get("/api/v1/bookings/", {"bot": "alpha-desk", "since": "2026-11-10"})) == [rows["booked"].pk]
    assert ids(api_a.get("/api/v1/bookings/", {"until": "2026-11-09"})) == []
    assert_error(api_a.get(f"/api/v1/bookings/{rows['info'].pk}/"), 404, "not_found")  # no booking
    assert_error(api_a.get(f"/api/v1/bookings/{rows['other'].pk}/"), 404, "not_found")  # B's
    assert api_a.get(f"/api/v1/bookings/{rows['booked'].pk}/").json()["booking"]["date"] == "2026-11-17"


# --- Leads ------------------------------------------------------------------------------------------


def test_leads_list_and_detail_are_the_keys_companys_only(api_a, api_b, rows):
    listed = api_a.get("/api/v1/leads/").json()
    assert listed["count"] == 3
    assert [lead["tier"] for lead in listed["results"]] == ["cold", "warm", "hot"]  # newest first
    hot = Lead.objects.get(call=rows["booked"].call)
    assert api_a.get(f"/api/v1/leads/{hot.pk}/").json() == {
        "id": hot.pk, "company": hot.company_id, "call": hot.call_id, "bot": "alpha-desk", "name": "Maria Lopez",
        "phone": "+4915123456789", "email": "", "contact_sources": {}, "score": 70, "tier": "hot",
        "score_reasons": [{"signal": "asked_booking", "points": 20}, {"signal": "gave_phone", "points": 50}],
        "created_at": "2026-11-10T10:00:00Z"}
    other = Lead.objects.get(call=rows["other"].call)
    assert_error(api_a.get(f"/api/v1/leads/{other.pk}/"), 404, "not_found")
    assert [lead["name"] for lead in api_b.get("/api/v1/leads/").json()["results"]] == ["Bea Other"]


def test_agency_key_sees_every_companys_leads(agency_api, rows):
    names = {lead["name"] for lead in agency_api.get("/api/v1/leads/").json()["results"]}
    assert {"Maria Lopez", "Bea Other"} <= names


def test_lead_filters(api_a, rows):
    def names(**params):
        response = api_a.get("/api/v1/leads/", params)
        assert response.status_code == 200, response.content
        return [lead["name"] or lead["phone"] for lead in response.json()["results"]]

    assert names(tier="hot") == ["Maria Lopez"]
    assert names(bot="alpha-night") == ["+4917000000"]
    assert names(min_score=25) == ['=HYPERLINK("http://x")', "Maria Lopez"]
    assert names(since="2026-11-11") == ["+4917000000", '=HYPERLINK("http://x")']
    assert names(until="2026-11-11") == ['=HYPERLINK("http://x")', "Maria Lopez"]
    assert names(since="2026-11-11T10:00:01Z", tier="cold") == ["+4917000000"]
    assert_error(api_a.get("/api/v1/leads/", {"tier": "lukewarm"}), 400, "invalid", field="tier")
    assert_error(api_a.get("/api/v1/leads/", {"min_score": "lots"}), 400, "invalid", field="min_score")
    assert_error(api_a.get("/api/v1/leads/", {"min_score": "9" * 30}), 400, "invalid", field="min_score")
    assert_error(api_a.get("/api/v1/leads/", {"since": "yesterday"}), 400, "invalid", field="since")


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads it as UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


HEADER = ["id", "created_at", "company", "bot", "call_id", "name", "phone", "email", "score", "tier", "score_reasons"]


def test_leads_export_is_a_csv_of_the_filtered_leads(api_a, rows):
    table = read_csv(api_a.get("/api/v1/leads/export/"))
    assert table[0] == HEADER
    hot = Lead.objects.get(call=rows["booked"].call)
    assert table[-1] == [str(hot.pk), "2026-11-10T10:00:00+00:00", "alpha", "alpha-desk", str(hot.call_id),
                         "Maria Lopez", "+4915123456789", "", "70", "hot", "asked_booking +20; gave_phone +50"]
    assert [row[5] for row in table[1:]] == ["", '\'=HYPERLINK("http://x")', "Maria Lopez"]  # a formula stays text
    assert "Bea Other" not in {row[5] for row in table}  # company B's lead

    table = read_csv(api_a.get("/api/v1/leads/export/", {"tier": "hot"}))
    assert [row[5] for row in table[1:]] == ["Maria Lopez"]
    table = read_csv(api_a.get("/api/v1/leads/export/", {"bot": "alpha-night", "since": "2026-11-12"}))
    assert [row[6] for row in table[1:]] == ["+4917000000"]
    assert read_csv(api_a.get("/api/v1/leads/export/", {"min_score": 100})) == [HEADER]

    # Asked for as text/csv, a CSV; a bad filter is the JSON error, whatever was asked for.
    assert len(read_csv(api_a.get("/api/v1/leads/export/", HTTP_ACCEPT="text/csv"))) == 4
    response = api_a.get("/api/v1/leads/export/", {"tier": "boiling"}, HTTP_ACCEPT="text/csv")
    assert response["Content-Type"].startswith("application/json")
    assert_error(response, 400, "invalid", field="tier")


def test_leads_export_has_every_row_not_one_page(api_a, bot_a, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "PAGE_SIZE": 5}
    for number in range(12):
        make_call(bot_a, at(1) + timedelta(minutes=number), lead={"phone": f"+49301000{number:03d}", "score": number})
    page = api_a.get("/api/v1/leads/").json()
    assert page["count"] == 12 and len(page["results"]) == 5
    table = read_csv(api_a.get("/api/v1/leads/export/"))
    assert len(table) == 13 and {row[6] for row in table[1:]} == {f"+49301000{n:03d}" for n in range(12)}


def test_read_only_keys_read_everything_and_write_nothing(readonly_a, rows):
    assert len(ids(readonly_a.get("/api/v1/outcomes/"))) == 4
    assert len(ids(readonly_a.get("/api/v1/bookings/"))) == 2
    assert len(ids(readonly_a.get("/api/v1/leads/"))) == 3
    assert len(read_csv(readonly_a.get("/api/v1/leads/export/"))) == 4
    for path in ("/api/v1/outcomes/", "/api/v1/leads/", "/api/v1/bookings/"):
        assert_error(readonly_a.post(path, {}, format="json"), 403, "permission_denied")


def test_outcomes_leads_and_bookings_cannot_be_written(api_a, rows):
    lead = Lead.objects.filter(company=rows["booked"].company).first()
    assert_error(api_a.post("/api/v1/leads/", {"name": "x"}, format="json"), 405)
    assert_error(api_a.patch(f"/api/v1/leads/{lead.pk}/", {"score": 100}, format="json"), 405)
    assert_error(api_a.delete(f"/api/v1/outcomes/{rows['booked'].pk}/"), 405)
    assert_error(api_a.put(f"/api/v1/bookings/{rows['booked'].pk}/", {}, format="json"), 405)
    lead.refresh_from_db()
    assert lead.score != 100
