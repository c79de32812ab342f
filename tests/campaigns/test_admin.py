"""Campaign admin: staff see and change only their companies' campaigns; import and controls work."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns import dialer
from campaigns.models import Campaign, Contact
from tests.campaigns.conftest import PHONES, add, make_campaign


@pytest.fixture
def campaign_b(bot_b, number_b):
    campaign = make_campaign(bot_b, name="Beta winback")
    add(campaign, "+12125550123", name="Secret Beta customer")
    return campaign


def campaign_form(company, bot, **overrides):
    data = {"company": company.pk, "name": "Spring recall", "bot": bot.pk, "from_number": "", "timezone": "",
            "call_days": ["0", "1", "2"], "window_start": "09:30", "window_end": "17:00", "starts_at_0": "",
            "starts_at_1": "", "ends_at_0": "", "ends_at_1": "", "max_concurrent_calls": 2, "calls_per_minute": 5,
            "max_attempts": 3, "retry_delay_minutes": 60, "retry_on": ["busy", "no-answer"]}
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
    response = client_a.post(reverse("admin:campaigns_campaign_add"),
                             campaign_form(company_a, bot_a, window_end="08:00"))
    assert "The calling window must end after it starts (09:30) on the same day." in response.content.decode()
    response = client_a.post(reverse("admin:campaigns_campaign_add"), campaign_form(company_a, bot_a))
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Spring recall")
    assert (campaign.status, campaign.call_days, campaign.retry_on) == ("draft", [0, 1, 2], ["busy", "no-answer"])


def test_import_page_adds_contacts_and_lists_bad_lines(client_a, bot_a, number_a):
    campaign = make_campaign(bot_a, status="draft")
    url = reverse("admin:campaigns_campaign_import", args=[campaign.pk])
    assert "Import contacts into Recall" in client_a.get(url).content.decode()
    upload = SimpleUploadedFile("list.csv", b"phone,name\n030 1234570,Anna\n030 1234570,Anna again\n99,Bob\n")
    body = client_a.post(url, {"file": upload}).content.decode()
    assert "1 contacts added, 1 duplicates left out, 1 lines with errors." in body
    assert "line 4: phone: &#x27;99&#x27; is not a valid phone number in DE" in body
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
