"""/api/v1/calls/: list filters, detail with post-call results, the recording with range requests, scoping."""

from __future__ import annotations

import io
import math
import struct
import wave
from datetime import datetime, timezone

import pytest
from django.core.files.base import ContentFile

from postcall.models import CallOutcome, Lead
from tests.api.conftest import assert_error
from voicebot.api.ranges import ByteRange, RangeFile, RangeNotSatisfiable, parse_range
from voicebot.models import Bot, Call, CallTurn

pytestmark = pytest.mark.django_db


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


def make_call(bot, *, turns=(), outcome=None, lead=None, **fields) -> Call:
    call = Call.objects.create(company=bot.company, bot=bot, **{"transport": "twilio", **fields})
    for index, (role, text) in enumerate(turns):
        CallTurn.objects.create(call=call, index=index, role=role, text=text)
    if outcome:
        CallOutcome.objects.create(call=call, company=call.company, **outcome)
    if lead:
        Lead.objects.create(call=call, company=call.company, bot=bot, **lead)
    return call


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return sorted(row["id"] for row in response.json()["results"])


# --- range parsing (voicebot/api/ranges.py) ---------------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-99", ByteRange(0, 99)),
    ("bytes=100-", ByteRange(100, 999)),
    ("bytes=-100", ByteRange(900, 999)),
    ("bytes=-5000", ByteRange(0, 999)),  # more than the file: all of it
    ("bytes=990-5000", ByteRange(990, 999)),  # the end is clipped to the file
    ("bytes=999-999", ByteRange(999, 999)),
    ("BYTES=0-0", ByteRange(0, 0)),  # the unit is case-insensitive
    ("bytes= 10-19 ", ByteRange(10, 19)),
    ("bytes=10-19,", ByteRange(10, 19)),  # empty list elements are allowed
])
def test_valid_single_ranges(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", [
    None, "", "bytes", "bytes=", "bytes=-", "bytes=abc", "bytes=5-2", "bytes=1-2-3", "bytes=+1-5", "bytes=1.0-5",
    "bytes=0-1,5-9",  # several ranges: ignored, the whole file
    "items=0-5", "0-5", "bytes=0-" + "9" * 5000,  # too long: never parsed into a huge int
])
def test_malformed_or_other_unit_or_several_ranges_are_ignored(header):
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=-1", 0),
])
def test_unsatisfiable_ranges(header, size):
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, size)
    assert raised.value.size == size


def test_range_file_reads_only_the_range_in_blocks():
    data = bytes(range(256)) * 4
    part = RangeFile(io.BytesIO(data), ByteRange(10, 299))
    blocks = list(iter(lambda: part.read(64), b""))
    assert b"".join(blocks) == data[10:300]
    assert [len(b) for b in blocks] == [64, 64, 64, 64, 34]
    assert ByteRange(10, 299).content_range(1024) == "bytes 10-299/1024"


# --- list filters -----------------------------------------------------------------------

@pytest.fixture
def calls(bot_a, bot_b):
    """Three calls of company A (two bots) and one of B that matches every filter A's calls do."""
    other_bot = Bot.objects.create(company=bot_a.company, name="Alpha night line", slug="alpha-night")
    booked = make_call(
        bot_a, transport="twilio", direction="inbound", status="completed", started_at=at(20, 10),
        from_number="+4930123456", to_number="+4930999000",
        turns=[("bot", "Alpha here."), ("caller", "I want to BOOK a cleaning"), ("caller", "yes, book it")],
        outcome={"result": "booking", "intent": "book", "summary": "Booked a cleaning.",
                 "fields": {"service": {"value": "cleaning", "source": "scenario"}},
                 "booking": {"service": "cleaning", "date": "2026-11-24"}},
        lead={"name": "Mia Braun", "phone": "+4930123456", "email": "mia@example.com", "score": 55, "tier": "hot"})
    failed = make_call(
        other_bot, transport="sip", direction="outbound", status="failed", started_at=at(21, 23, 30),
        from_number="sip:+4930555111@pbx.example", to_number="+4930777888",
        outcome={"result": "information", "intent": "hours"},
        lead={"name": "", "phone": "+4930777888", "score": 10, "tier": "cold"})
    chat = make_call(bot_a, transport="chat", started_at=at(22, 8), turns=[("caller", "What are your opening hours?")])
    theirs = make_call(
        bot_b, transport="twilio", started_at=at(20, 10), from_number="+4930123456",
        turns=[("caller", "book")], outcome={"result": "booking"}, lead={"tier": "hot"})
    return {"booked": booked, "failed": failed, "chat": chat, "theirs": theirs}


def test_list_is_scoped_and_each_row_has_recording_result_and_tier(api_a, agency_api, calls):
    rows = {row["id"]: row for row in api_a.get("/api/v1/calls/").json()["results"]}
    assert set(rows) == {calls["booked"].pk, calls["failed"].pk, calls["chat"].pk}
    booked = rows[calls["booked"].pk]
    assert (booked["has_recording"], booked["result"], booked["lead_tier"]) == (False, "booking", "hot")
    assert (rows[calls["chat"].pk]["result"], rows[calls["chat"].pk]["lead_tier"]) == (None, None)
    assert rows[calls["failed"].pk]["result"] == "information"
    assert calls["theirs"].pk in ids(agency_api.get("/api/v1/calls/"))  # an agency key sees every company


@pytest.mark.parametrize(("query", "expected"), [
    ("bot=alpha-desk", ["booked", "chat"]),
    ("bot=alpha-night", ["failed"]),
    ("bot=beta-desk", []),  # B's bot: none of A's calls, and never B's
    ("since=2026-11-21", ["failed", "chat"]),
    ("since=2026-11-21T23:45:00Z", ["chat"]),
    ("until=2026-11-21", ["booked", "failed"]),  # a date: the whole day
    ("until=2026-11-20T10:00:00Z", ["booked"]),  # inclusive
    ("since=2026-11-21&until=2026-11-21", ["failed"]),
    ("direction=outbound", ["failed"]),
    ("direction=inbound", ["booked", "chat"]),
    ("status=failed", ["failed"]),
    ("transport=chat", ["chat"]),
    ("transport=sip&direction=outbound", ["failed"]),
    ("outcome=booking", ["booked"]),
    ("outcome=information", ["failed"]),
    ("outcome=lead", []),
    ("lead_tier=hot", ["booked"]),
    ("lead_tier=cold", ["failed"]),
    ("phone_number=%2B4930123456", ["booked"]),  # E.164 as stored
    ("phone_number=030%20123456", ["booked"]),  # typed the local way, read in the company's country (DE)
    ("phone_number=%2B49%2030%20777%20888", ["failed"]),  # the number called
    ("phone_number=030555111", ["failed"]),  # inside a sip: URI
    ("phone_number=%2B4930555", []),  # a prefix is not the number
    ("q=book", ["booked"]),  # two matching turns, one row
    ("q=OPENING%20hours", ["chat"]),
    ("q=nothing%20said", []),
])
def test_list_filters(api_a, calls, query, expected):
    response = api_a.get(f"/api/v1/calls/?{query}")
    assert ids(response) == sorted(calls[name].pk for name in expected)
    assert response.json()["count"] == len(expected)


@pytest.mark.parametrize(("query", "param"), [
    ("since=yesterday", "since"),
    ("until=2026-13-01", "until"),  # well formed, impossible: a 400, not a 500
    ("since=2026-02-30", "since"),
    ("until=2026-11-21T25:00:00Z", "until"),
    ("since=2026-11-21%00", "since"),
    ("direction=sideways", "direction"),
    ("status=done", "status"),
    ("transport=pigeon", "transport"),
    ("outcome=great", "outcome"),
    ("lead_tier=lukewarm", "lead_tier"),
    ("q=a%00b", "q"),
    ("phone_number=%2B49%00", "phone_number"),
    ("bot=alpha%00", "bot"),
    ("q=" + "x" * 201, "q"),
])
def test_a_bad_filter_value_is_a_400_naming_the_parameter(api_a, calls, query, param):
    assert_error(api_a.get(f"/api/v1/calls/?{query}"), 400, "invalid", field=param)


def test_list_rows_cost_a_bounded_number_of_queries(api_a, bot_a, django_assert_max_num_queries):
    for n in range(8):
        make_call(bot_a, turns=[("caller", "hello")], outcome={"result": "lead"},
                  lead={"name": f"Caller {n}", "tier": "warm"}, started_at=at(20, n))
    # Key lookup, its last-used time, the page count, the page (outcome and lead joined): not one per row.
    with django_assert_max_num_queries(5):
        rows = api_a.get("/api/v1/calls/?q=hello").json()["results"]
    assert len(rows) == 8 and {row["lead_tier"] for row in rows} == {"warm"}
    with django_assert_max_num_queries(5):
        assert len(api_a.get("/api/v1/calls/").json()["results"]) == 8


# --- detail -------------------------------------------------------------------------------

def test_detail_has_turns_metrics_fields_variables_outcome_and_lead(api_a, calls):
    call = calls["booked"]
    Call.objects.filter(pk=call.pk).update(metrics={"reply_ms_median": 640}, collected_fields={"service": "cleaning"},
                                           variables={"name": "Mia"}, scenario="booking")
    detail = api_a.get(f"/api/v1/calls/{call.pk}/").json()
    assert [(t["index"], t["role"], t["text"]) for t in detail["turns"]] == [
        (0, "bot", "Alpha here."), (1, "caller", "I want to BOOK a cleaning"), (2, "caller", "yes, book it")]
    assert detail["metrics"] == {"reply_ms_median": 640}
    assert detail["collected_fields"] == {"service": "cleaning"} and detail["variables"] == {"name": "Mia"}
    assert detail["outcome"] == {"result": "booking", "intent": "book", "summary": "Booked a cleaning.",
                                 "fields": {"service": {"value": "cleaning", "source": "scenario"}},
                                 "booking": {"service": "cleaning", "date": "2026-11-24"}}
    lead = Lead.objects.get(call=call)
    assert detail["lead"] == {"id": lead.pk, "name": "Mia Braun", "phone": "+4930123456", "email": "mia@example.com",
                              "score": 55, "tier": "hot"}
    assert (detail["result"], detail["lead_tier"], detail["has_recording"]) == ("booking", "hot", False)

    bare = api_a.get(f"/api/v1/calls/{calls['chat'].pk}/").json()
    assert bare["outcome"] is None and bare["lead"] is None


def test_detail_of_another_company_s_call_is_a_404(api_a, calls):
    assert_error(api_a.get(f"/api/v1/calls/{calls['theirs'].pk}/"), 404, "not_found")
    assert_error(api_a.get("/api/v1/calls/99999999999/"), 404, "not_found")
    assert_error(api_a.get("/api/v1/calls/not-a-number/"), 404, "not_found")


def test_a_read_only_key_reads_calls_but_cannot_place_one(readonly_a, calls, number_a):
    assert calls["booked"].pk in ids(readonly_a.get("/api/v1/calls/"))
    refused = readonly_a.post("/api/v1/calls/", {"bot": "alpha-desk", "to": "+4930777888"}, format="json")
    assert_error(refused, 403, "permission_denied")
    assert not Call.objects.filter(direction="outbound", to_number="+4930777888", status="queued").exists()


# --- recording ----------------------------------------------------------------------------

def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A real WAV file (mono, 16-bit, a 440 Hz tone), like the recorder writes."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
                               for n in range(int(seconds * rate))))
    return out.getvalue()


@pytest.fixture
def recorded(settings, tmp_path, calls):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    data = wav_bytes()
    for name in ("booked", "theirs"):
        calls[name].recording.save(f"call-{calls[name].pk}.wav", ContentFile(data), save=True)
    return calls["booked"], data


def body(response) -> bytes:
    assert response.streaming  # streamed from the file, never read whole into memory
    return b"".join(response.streaming_content)


def test_recording_download_whole(api_a, recorded, calls):
    call, data = recorded
    response = api_a.get(f"/api/v1/calls/{call.pk}/recording/")
    assert response.status_code == 200
    assert body(response) == data
    assert response["Content-Type"] == "audio/wav"
    assert response["Content-Length"] == str(len(data))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"] == f'inline; filename="call-{call.pk}.wav"'
    with wave.open(io.BytesIO(data)) as w:
        assert w.getframerate() == 8000
    rows = {row["id"]: row for row in api_a.get("/api/v1/calls/").json()["results"]}
    assert rows[call.pk]["has_recording"] is True and rows[calls["chat"].pk]["has_recording"] is False


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-99", 0, 99),
    ("bytes=44-", 44, None),  # past the WAV header: the samples
    ("bytes=-100", -100, None),
    ("bytes=7000-999999", 7000, None),
])
def test_recording_range_gives_206_with_only_those_bytes(api_a, recorded, header, start, end):
    call, data = recorded
    response = api_a.get(f"/api/v1/calls/{call.pk}/recording/", HTTP_RANGE=header)
    assert response.status_code == 206
    start = start % len(data)
    expected = data[start:] if end is None else data[start:end + 1]
    assert body(response) == expected
    assert response["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(data)}"
    assert response["Content-Length"] == str(len(expected))
    assert response["Content-Type"] == "audio/wav" and response["Accept-Ranges"] == "bytes"


def test_an_unsatisfiable_range_is_a_416_with_the_size(api_a, recorded):
    call, data = recorded
    response = api_a.get(f"/api/v1/calls/{call.pk}/recording/", HTTP_RANGE=f"bytes={len(data)}-")
    assert_error(response, 416, "range_not_satisfiable")
    assert response["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=9-2", "bytes=0-1,5-9", "pages=1-2"])
def test_a_malformed_range_is_ignored(api_a, recorded, header):
    call, data = recorded
    response = api_a.get(f"/api/v1/calls/{call.pk}/recording/", HTTP_RANGE=header)
    assert response.status_code == 200 and body(response) == data


def test_recording_whatever_the_accept_header_and_for_read_only_keys(api_a, readonly_a, recorded):
    call, data = recorded
    response = api_a.get(f"/api/v1/calls/{call.pk}/recording/", HTTP_ACCEPT="audio/wav")
    assert response.status_code == 200 and body(response) == data
    assert body(readonly_a.get(f"/api/v1/calls/{call.pk}/recording/", HTTP_RANGE="bytes=0-3")) == b"RIFF"


def test_no_recording_or_another_company_s_is_a_404(api_a, recorded, calls, settings):
    assert_error(api_a.get(f"/api/v1/calls/{calls['chat'].pk}/recording/"), 404, "not_found")
    theirs = api_a.get(f"/api/v1/calls/{calls['theirs'].pk}/recording/", HTTP_RANGE="bytes=0-3")
    assert_error(theirs, 404, "not_found")
    assert_error(api_a.get(f"/api/v1/calls/{calls['chat'].pk}/recording/", HTTP_ACCEPT="audio/wav"), 404,
                 "not_found")  # errors are JSON even when audio was asked for
    call, _ = recorded
    call.recording.storage.delete(call.recording.name)  # the row names a file that is gone
    assert_error(api_a.get(f"/api/v1/calls/{call.pk}/recording/"), 404, "not_found")


def test_the_recording_needs_a_key(recorded):
    from rest_framework.test import APIClient

    call, _ = recorded
    assert APIClient().get(f"/api/v1/calls/{call.pk}/recording/").status_code in (401, 403)
