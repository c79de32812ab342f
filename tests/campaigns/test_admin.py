"""Campaign admin: staff see and change only their companies' campaigns; import, controls, progress, export."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns import dialer, services
from campaigns.importing import import_csv
from campaigns.models import Campaign, Contact
from tests.campaigns.conftest import PHONES, add, make_campaign
from voicebot.models import Call
from voicebot.outbound_calls import record_status


@pytest.fixture
def campaign_b(bot_b, number_b):
    campaign = make_campaign(bot_b, name="Beta winback")
    add(campaign, "+12125550123", name="Secret Beta customer")
    return campaign


def campaign_form(company, bot, **overrides):
    data = {"company": company.pk, "name": "Spring recall", "bot": bot.pk, "from_number": "", "timezone": "",
            "hours_mon": "09:00-17:00", "hours_tue": "09:00-17:00", "hours_wed": "09:00-12:00, 13:00-17:00",
            "hours_thu": "9:00-17:00", "hours_fri": "09:00-17:00", "hours_sat": "10:00-13:00", "hours_sun": "",
            "starts_at_0": "", "starts_at_1": "", "ends_at_0": "", "ends_at_1": "", "max_concurrent_calls": 2,
            "calls_per_minute": 5, "max_attempts": 4, "retry_busy_minutes": 10, "retry_busy_times": 3,
            "retry_no_answer_minutes": 60, "retry_no_answer_times": 2, "retry_voicemail_minutes": 240,
            "retry_voicemail_times": 0, "retry_failed_minutes": 30, "retry_failed_times": 1,
            "breaker_failed_percent": 50, "breaker_last_calls": 20, "breaker_minutes": 10, "breaker_min_calls": 5,
            "voicemail_message": "Hi {{name}}, please call us back."}
    data.update(overrides)
    return data


def test_lists_and_pages_show_only_own_company(client_a, bot_a, number_a, campaign_b):
    own = make_campaign(bot_a, name="Alpha recall")
    add(own, PHONES[0], name="Anna")
    body = client_a.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "Alpha recall" in body and "Beta winback" not in body
    body = client_a.get(reverse("admin:campaigns_contact_changelist")).content.decode()
    assert "Anna" in body and "Secret Beta customer" not in body
    contact_b = campaign_b.contacts.get()
    for url in (reverse("admin:campaigns_campaign_change", args=[campaign_b.pk]),
                reverse("admin:campaigns_campaign_import", args=[campaign_b.pk]),
                reverse("admin:campaigns_contact_change", args=[contact_b.pk])):
        response = client_a.get(url, follow=True)
        assert response.status_code == 404 or "doesn’t exist" in response.content.decode(), url
        assert "Secret Beta customer" not in response.content.decode()
    response = client_a.post(reverse("admin:campaigns_campaign_control", args=[campaign_b.pk, "pause"]))
    assert response.status_code == 404
    campaign_b.refresh_from_db()
    assert campaign_b.status == "running"


def test_create_a_campaign_with_only_own_bots(client_a, company_a, bot_a, bot_b):
    response = client_a.post(reverse("admin:campaigns_campaign_add"), campaign_form(company_a, bot_b))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    response = client_a.post(reverse("admin:campaigns_campaign_add"), campaign_form(company_a, bot_a))
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Spring recall")
    assert campaign.status == "draft"
    assert campaign.calling_hours == {
        "mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "12:00"], ["13:00", "17:00"]],
        "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]], "sat": [["10:00", "13:00"]]}
    assert (campaign.retry_rule("busy"), campaign.retry_rule("voicemail"), campaign.retry_rule("failed")) == (
        (3, 10), (0, 240), (1, 30))
    assert campaign.voicemail_message == "Hi {{name}}, please call us back."
    page = client_a.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'name="hours_wed" value="09:00-12:00, 13:00-17:00"' in page and 'name="hours_sat" value="10:00-13:00"' in page


def test_calling_hours_errors_are_shown_on_their_day(client_a, company_a, bot_a):
    url = reverse("admin:campaigns_campaign_add")
    body = client_a.post(url, campaign_form(company_a, bot_a, hours_tue="17:00-09:00",
                                            hours_sat="10:00-13:00, 12:00-14:00", hours_fri="9 to 5")).content.decode()
    assert "tue, window 1: it must end after it starts (17:00-09:00)" in body
    assert "sat: the windows 10:00-13:00 and 12:00-14:00 overlap" in body
    assert "fri, window 1: &#x27;9 to 5&#x27; is not start-end, such as 09:00-17:00" in body
    empty = {f"hours_{day}": "" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    body = client_a.post(url, campaign_form(company_a, bot_a, **empty)).content.decode()
    assert "Add calling hours on at least one day." in body
    assert not Campaign.objects.exists()


def test_import_page_adds_contacts_and_lists_bad_lines(client_a, bot_a, number_a):
    campaign = make_campaign(bot_a, status="draft")
    url = reverse("admin:campaigns_campaign_import", args=[campaign.pk])
    assert "Import contacts into Recall" in client_a.get(url).content.decode()
    upload = SimpleUploadedFile("list.csv", b"phone,name\n030 1234570,Anna\n030 1234570,Anna again\n99,Bob\n")
    body = client_a.post(url, {"file": upload}).content.decode()
    assert "1 contacts added, 1 duplicates left out, 1 lines with errors." in body
    assert "line 4: phone: &#x27;99&#x27; is not a valid phone number in DE" in body
    assert "line 3: +49301234570 is on line 2 already; left out" in body
    body = client_a.post(url, {"text": "name\nAnna\n"}).content.decode()
    assert "no phone column" in body
    body = client_a.post(url, {"text": "phone\n030 1234571\n"}).content.decode()
    assert "1 contacts added" in body
    assert list(campaign.contacts.values_list("phone", flat=True)) == ["+49301234570", "+49301234571"]


def test_start_pause_and_cancel_buttons(client_a, bot_a, number_a):
    campaign = make_campaign(bot_a, status="draft")
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    start = reverse("admin:campaigns_campaign_control", args=[campaign.pk, "start"])
    assert client_a.get(start).status_code == 405  # state changes only by POST (CSRF-protected)
    body = client_a.post(start, follow=True).content.decode()
    assert "Recall was not started: no contact is waiting to be called" in body
    add(campaign, PHONES[0])
    body = client_a.post(start, follow=True).content.decode()
    assert "Recall started." in body
    campaign.refresh_from_db()
    assert campaign.status == "running"
    page = client_a.get(change).content.decode()
    assert reverse("admin:campaigns_campaign_control", args=[campaign.pk, "pause"]) in page
    assert start not in page
    assert "1 contacts (waiting to be called: 1" in page
    client_a.post(reverse("admin:campaigns_campaign_changelist"),
                  {"action": "cancel_selected", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.status == "canceled"


def test_contact_page_shows_its_attempts_and_can_be_skipped(client_a, bot_a, number_a, dial_tasks,
                                                            django_capture_on_commit_callbacks):
    campaign = make_campaign(bot_a)
    first, second = add(campaign, *PHONES[:2])
    with django_capture_on_commit_callbacks(execute=True):
        dialer.tick()
    call = first.attempts.get().call
    body = client_a.get(reverse("admin:campaigns_contact_change", args=[first.pk])).content.decode()
    assert reverse("admin:voicebot_call_change", args=[call.pk]) in body
    client_a.post(reverse("admin:campaigns_contact_changelist"),
                  {"action": "skip_selected", "_selected_action": [second.pk]})
    assert Contact.objects.get(pk=second.pk).status == "skipped"


@pytest.fixture
def called(bot_a, number_a, dial_tasks, queued, django_capture_on_commit_callbacks):
    """A campaign with one contact reached (a booking, a hot lead), one not reached, one not called yet."""
    from postcall.models import CallOutcome, Lead
    from tests.campaigns.test_dialer import answer

    campaign = make_campaign(bot_a, max_attempts=2, retry_busy_minutes=0)
    # Anna's own zone: one where it is midday now, so that she is inside the calling hours whenever this runs.
    import_csv(campaign=campaign, data=f"phone,name,timezone,slot\n{PHONES[0]},Anna,{campaign.timezone},Tue 10:00\n"
                                       f"{PHONES[1]},=HYPERLINK(1),,Wed 9:00\n{PHONES[2]},Carla,,\n")

    def tick():
        with django_capture_on_commit_callbacks(execute=True):
            dialer.tick()

    tick()
    anna, bob = (campaign.contacts.get(phone=p).attempts.get().call for p in PHONES[:2])
    answer(anna)
    record_status(call_id=bob.pk, status="busy")
    tick()  # Anna done; Bob called again at once
    record_status(call_id=campaign.contacts.get(phone=PHONES[1]).attempts.get(number=2).call_id, status="no-answer")
    tick()
    CallOutcome.objects.create(call=anna, company=bot_a.company, result="booking",
                               booking={"service": "cleaning", "date": "2026-12-08", "time": "10:00"})
    Lead.objects.create(call=anna, company=bot_a.company, bot=bot_a, name="Anna", score=45, tier="hot")
    return campaign


def test_progress_bar_calls_per_hour_and_the_breakers_reason_are_shown(client_a, called):
    campaign = called
    counts = dict(campaign.contacts.values_list("phone", "status"))
    assert counts == {PHONES[0]: "done", PHONES[1]: "failed", PHONES[2]: "calling"}
    page = client_a.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'class="vb-progress" title="67%"' in page and "2 / 3 (67%, 1 reached)" in page
    assert "3 contacts (waiting to be called: 0, call in progress: 1, reached: 1, not reached: 1, skipped: 0); " \
           "1 calls in flight, 4 calls in the last hour." in page
    assert reverse("admin:campaigns_campaign_export", args=[campaign.pk]) in page
    listing = client_a.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "2 / 3 (67%, 1 reached)" in listing and '<td class="field-calls_last_hour">4</td>' in listing

    note = "paused by the circuit breaker: 5 of the last 8 calls failed within 10 minutes (twilio refused ...)"
    services.pause_campaign(campaign=campaign, note=note)
    page = client_a.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert f'<p class="errornote vb-paused-note"><strong>Paused:</strong> {note}</p>' in page
    resume = reverse("admin:campaigns_campaign_control", args=[campaign.pk, "resume"])
    assert resume in page
    listing = client_a.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert note in listing
    assert "Recall resumed." in client_a.post(resume, follow=True).content.decode()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.status_note) == ("running", "")


def test_results_export_as_csv(client_a, called, bot_b, number_b):
    campaign = called
    response = client_a.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="campaign-{campaign.pk}-results.csv"'
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeffcampaign,phone,name,timezone,variables,status,attempts,outcome,call_result,")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    calls = {c.to_number: c.pk for c in Call.objects.filter(campaign_attempt__campaign=campaign)}
    picked = [{key: json.loads(row[key]) if key in ("variables", "booking") and row[key] else row[key]
               for key in ("phone", "name", "timezone", "variables", "status", "attempts", "outcome", "call_result",
                           "lead_score", "lead_tier", "booking", "note")} for row in rows]
    assert picked == [
        {"phone": PHONES[0], "name": "Anna", "timezone": campaign.timezone, "variables": {"slot": "Tue 10:00"},
         "status": "done", "attempts": "1", "outcome": "completed", "call_result": "booking", "lead_score": "45",
         "lead_tier": "hot", "booking": {"service": "cleaning", "date": "2026-12-08", "time": "10:00"}, "note": ""},
        {"phone": PHONES[1], "name": "'=HYPERLINK(1)", "timezone": "", "variables": {"slot": "Wed 9:00"},
         "status": "failed", "attempts": "2", "outcome": "no-answer", "call_result": "", "lead_score": "",
         "lead_tier": "", "booking": "", "note": "not reached in 2 attempts (last: no answer)"},
        {"phone": PHONES[2], "name": "Carla", "timezone": "", "variables": {"slot": ""}, "status": "calling",
         "attempts": "1", "outcome": "", "call_result": "", "lead_score": "", "lead_tier": "", "booking": "",
         "note": ""},
    ]
    assert rows[0]["campaign"] == "Recall" and rows[0]["last_call_id"] == str(calls[PHONES[0]])
    assert rows[1]["last_call_id"] == str(max(Call.objects.filter(to_number=PHONES[1]).values_list("pk", flat=True)))

    other = make_campaign(bot_b, name="Beta winback")  # another company's: not found, not in an export
    assert client_a.get(reverse("admin:campaigns_campaign_export", args=[other.pk])).status_code == 404
    response = client_a.post(reverse("admin:campaigns_campaign_changelist"),
                             {"action": "export_selected", "_selected_action": [campaign.pk, other.pk]})
    assert response["Content-Disposition"] == 'attachment; filename="campaign-results.csv"'
    text = b"".join(response.streaming_content).decode("utf-8")
    assert len(list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))) == 3
