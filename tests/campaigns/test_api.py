"""/api/v1/campaigns/: a key acts for its company only; bad input gets a 4xx naming the field."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from campaigns.models import Campaign
from tests.api.conftest import assert_error
from tests.campaigns.conftest import PHONES, add, make_campaign
from voicebot.models import ApiKey


@pytest.fixture
def api_a(company_a):
    _, raw = ApiKey.issue(company_a, "crm")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def campaign_b(bot_b, number_b):
    campaign = make_campaign(bot_b, name="Beta winback")
    add(campaign, "+12125550123")
    return campaign


def test_create_with_a_key_defaults_to_its_company(api_a, bot_a, number_a):
    hours = {"sat": [["10:00", "13:00"]], "mon": [["9:00", "17:00"]]}
    response = api_a.post("/api/v1/campaigns/", {"name": "Recall", "bot": bot_a.pk, "calling_hours": hours,
                                                 "retry_busy_minutes": 15, "retry_voicemail_times": 0,
                                                 "voicemail_message": "Hi {{name}}"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["company"], body["status"], body["calling_hours"]) == (
        bot_a.company_id, "draft", {"mon": [["09:00", "17:00"]], "sat": [["10:00", "13:00"]]})
    assert {key: body[key] for key in body if key.startswith(("retry_", "breaker_", "max_att"))} == {
        "max_attempts": 3, "retry_busy_minutes": 15, "retry_busy_times": 3, "retry_no_answer_minutes": 60,
        "retry_no_answer_times": 2, "retry_voicemail_minutes": 240, "retry_voicemail_times": 0,
        "retry_failed_minutes": 30, "retry_failed_times": 2, "breaker_failed_percent": 50, "breaker_last_calls": 20,
        "breaker_minutes": 10, "breaker_min_calls": 5}
    assert body["voicemail_message"] == "Hi {{name}}" and body["progress"]["total"] == 0
    default = api_a.post("/api/v1/campaigns/", {"name": "Plain", "bot": bot_a.pk}, format="json").json()
    assert default["calling_hours"] == {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def test_bad_input_names_the_field(api_a, bot_a, bot_b, number_b):
    cases = [
        ({"name": "x", "bot": bot_b.pk}, "bot", None),  # another company's bot is not a choice
        ({"name": "x", "bot": bot_a.pk, "calling_hours": {"mon": [["18:00", "09:00"]]}}, "calling_hours",
         "mon, window 1: it must end after it starts (18:00-09:00)"),
        ({"name": "x", "bot": bot_a.pk, "calling_hours": {"sat": [["10:00", "13:00"]], "xmas": []}},
         "calling_hours", "'xmas' is not a day; use mon, tue, wed, thu, fri, sat, sun"),
        ({"name": "x", "bot": bot_a.pk, "calling_hours": "9-5"}, "calling_hours", "an object of days"),
        ({"name": "x", "bot": bot_a.pk, "retry_busy_times": 99}, "retry_busy_times", None),
        ({"name": "x", "bot": bot_a.pk, "breaker_failed_percent": 101}, "breaker_failed_percent", None),
        ({"name": "x", "bot": bot_a.pk, "timezone": "Mars/Olympus"}, "timezone", None),
        ({"name": "x", "bot": bot_a.pk, "max_concurrent_calls": 0}, "max_concurrent_calls", None),
        ({"name": "x", "bot": bot_a.pk, "from_number": "+12125550100"}, "from_number", None),  # Beta Salon's number
    ]
    for data, field, message in cases:
        response = api_a.post("/api/v1/campaigns/", data, format="json")
        error = assert_error(response, 400, "invalid", field=field)
        assert message is None or message in error["fields"][field][0], error
    assert not Campaign.objects.exists()


def test_a_key_sees_only_its_companys_campaigns(api_a, bot_a, number_a, campaign_b):
    own = make_campaign(bot_a)
    listed = api_a.get("/api/v1/campaigns/").json()["results"]
    assert [c["id"] for c in listed] == [own.pk]
    for url in (f"/api/v1/campaigns/{campaign_b.pk}/", f"/api/v1/campaigns/{campaign_b.pk}/contacts/"):
        assert api_a.get(url).status_code == 404
    for verb in ("start", "pause", "resume", "cancel", "contacts"):
        assert api_a.post(f"/api/v1/campaigns/{campaign_b.pk}/{verb}/", {}, format="json").status_code == 404
    assert api_a.patch(f"/api/v1/campaigns/{campaign_b.pk}/", {"name": "x"}, format="json").status_code == 404
    campaign_b.refresh_from_db()
    assert campaign_b.status == "running" and campaign_b.contacts.count() == 1


def test_contact_lists_by_csv_file_csv_body_and_json(api_a, bot_a, number_a):
    campaign = make_campaign(bot_a, status="draft")
    url = f"/api/v1/campaigns/{campaign.pk}/contacts/"
    upload = SimpleUploadedFile("list.csv", b"phone,name,slot\n030 1234570,Anna,10:00\nnonsense,Bob,11:00\n")
    response = api_a.post(url, {"file": upload}, format="multipart")
    assert response.status_code == 201
    assert response.json() == {"created": 1, "duplicates": 0, "error_count": 1, "duplicate_lines": [], "errors": [
        {"line": 3, "message": "phone: 'nonsense' is not a phone number ((1) The string supplied did not seem to be a phone number.)"}]}
    response = api_a.generic("POST", url, "phone\n030 1234571\n030 1234570\n", content_type="text/csv")
    assert response.json()["created"] == 1 and response.json()["duplicate_lines"] == [
        {"line": 3, "message": "+49301234570 is in the campaign already; left out"}]
    response = api_a.post(url, {"contacts": [{"phone": "030 1234572", "name": "Carla", "variables": {"slot": "9"}}]},
                          format="json")
    assert response.status_code == 201
    listed = api_a.get(url).json()["results"]
    assert [(c["phone"], c["name"], c["variables"], c["status"]) for c in listed] == [
        ("+49301234570", "Anna", {"slot": "10:00"}, "pending"), ("+49301234571", "", {}, "pending"),
        ("+49301234572", "Carla", {"slot": "9"}, "pending")]
    response = api_a.post(url, {"people": []}, format="json")
    assert_error(response, 400, "invalid", field="contacts")
    response = api_a.post(url, {"file": SimpleUploadedFile("x.csv", b"name\nAnna\n")}, format="multipart")
    assert assert_error(response, 400, "invalid", field="file")["fields"]["file"][0].startswith("no phone column")


def test_start_pause_cancel_and_their_refusals(api_a, bot_a, number_a):
    campaign = make_campaign(bot_a, status="draft")
    base = f"/api/v1/campaigns/{campaign.pk}"
    response = api_a.post(f"{base}/start/")
    error = assert_error(response, 400, "invalid", field="contacts")
    assert error["fields"] == {"contacts": ["no contact is waiting to be called; import a contact list first"]}
    add(campaign, *PHONES[:2])
    response = api_a.post(f"{base}/start/")
    assert response.status_code == 200 and response.json()["status"] == "running"
    assert response.json()["progress"]["contacts"]["pending"] == 2
    assert api_a.delete(f"{base}/").status_code == 409
    response = api_a.post(f"{base}/resume/")
    error = assert_error(response, 409, "conflict", field="status")
    assert error["fields"] == {"status": ["only a paused campaign can be resumed (this one is running)"]}
    assert api_a.post(f"{base}/pause/").json()["status"] == "paused"
    resumed = api_a.post(f"{base}/resume/").json()
    assert (resumed["status"], resumed["resumed_at"] is not None) == ("running", True)
    assert api_a.post(f"{base}/pause/").json()["status"] == "paused"
    assert api_a.post(f"{base}/cancel/").json()["status"] == "canceled"
    response = api_a.post(f"{base}/cancel/")
    assert assert_error(response, 409, "conflict")["fields"] == {"status": ["the campaign is canceled already"]}
    assert api_a.post(f"{base}/contacts/", {"contacts": [{"phone": PHONES[3]}]}, format="json").status_code == 409
    assert api_a.delete(f"{base}/").status_code == 204


def test_skip_a_contact_and_filter_by_status(api_a, bot_a, number_a):
    campaign = make_campaign(bot_a, status="draft")
    first, second = add(campaign, *PHONES[:2])
    base = f"/api/v1/campaigns/{campaign.pk}/contacts"
    response = api_a.post(f"{base}/{first.pk}/skip/", {"note": "asked not to be called"}, format="json")
    assert response.status_code == 200 and response.json()["note"] == "asked not to be called"
    assert api_a.post(f"{base}/{first.pk}/skip/").status_code == 409
    assert [c["id"] for c in api_a.get(f"{base}/?status=pending").json()["results"]] == [second.pk]
    assert api_a.get(f"{base}/?status=bogus").status_code == 400


def test_the_company_of_a_campaign_cannot_change(api_a, bot_a, number_a, company_b):
    campaign = make_campaign(bot_a, status="draft")
    response = api_a.patch(f"/api/v1/campaigns/{campaign.pk}/", {"company": company_b.pk, "max_attempts": 5},
                           format="json")
    assert response.status_code == 200
    campaign.refresh_from_db()
    assert (campaign.company_id, campaign.max_attempts) == (bot_a.company_id, 5)


def test_staff_session_sees_its_companies(client, staff_a, bot_a, number_a, campaign_b):
    own = make_campaign(bot_a)
    client.force_login(staff_a)
    listed = client.get("/api/v1/campaigns/").json()["results"]
    assert [c["id"] for c in listed] == [own.pk]


def test_create_with_its_contacts_in_one_request(api_a, bot_a, number_a):
    """The campaign and its list at once: JSON ``contacts``, or a multipart ``file`` beside the fields;
    a list that cannot be read creates no campaign either."""
    response = api_a.post("/api/v1/campaigns/", {"name": "Recall", "bot": bot_a.pk, "contacts": [
        {"phone": "030 1234570", "name": "Anna", "timezone": "Europe/Berlin"}, {"phone": "12"}]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["import"]["created"] == 1 and body["import"]["errors"][0]["line"] == 2
    assert body["progress"]["total"] == 1
    upload = SimpleUploadedFile("list.csv", b"phone,name\n030 1234571,Bea\n030 1234572,Cem\n")
    response = api_a.post("/api/v1/campaigns/", {"name": "Winback", "bot": bot_a.pk, "file": upload},
                          format="multipart")
    assert response.status_code == 201 and response.json()["import"]["created"] == 2
    refused = api_a.post("/api/v1/campaigns/", {"name": "Broken", "bot": bot_a.pk,
                                               "file": SimpleUploadedFile("x.csv", b"name\nAnna\n")},
                         format="multipart")
    assert assert_error(refused, 400, "invalid", field="file")["fields"]["file"][0].startswith("no phone column")
    assert not Campaign.objects.filter(name="Broken").exists()
