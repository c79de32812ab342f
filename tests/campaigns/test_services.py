"""Starting, pausing and cancelling a campaign: each refusal names what is wrong."""

import datetime
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign
from tests.campaigns.conftest import PHONES, add, make_campaign


@pytest.fixture
def draft(bot_a, number_a):
    return make_campaign(bot_a, status="draft")


def refused(change, campaign) -> tuple[str, str]:
    with pytest.raises(services.CampaignError) as caught:
        change(campaign=campaign)
    return caught.value.field, str(caught.value)


def test_start_needs_contacts_then_runs(draft):
    assert refused(services.start_campaign, draft) == (
        "contacts", "no contact is waiting to be called; import a contact list first")
    add(draft, PHONES[0])
    started = services.start_campaign(campaign=draft)
    assert started.status == "running" and started.started_at is not None
    first_start = started.started_at
    services.pause_campaign(campaign=draft, note="lunch")
    draft.refresh_from_db()
    assert (draft.status, draft.status_note) == ("paused", "lunch")
    assert services.start_campaign(campaign=draft).started_at == first_start


def test_start_refuses_a_caller_id_the_company_does_not_have(draft, number_b):
    add(draft, PHONES[0])
    draft.from_number = number_b.number  # Beta Salon's number
    draft.save()
    field, message = refused(services.start_campaign, draft)
    assert field == "from_number"
    assert message == "'+12125550100' is not an active Twilio, Telnyx, Plivo or SIP number of Alpha Dental"


def test_start_refuses_an_inactive_bot_and_a_past_end(draft):
    add(draft, PHONES[0])
    draft.bot.active = False
    draft.bot.save()
    assert refused(services.start_campaign, draft) == ("bot", "bot 'alpha-desk' is inactive")
    draft.bot.active = True
    draft.bot.save()
    draft.ends_at = timezone.now() - timedelta(minutes=1)
    draft.save()
    assert refused(services.start_campaign, draft)[0] == "ends_at"


def test_cancel_is_final(draft):
    add(draft, *PHONES[:2])
    services.cancel_campaign(campaign=draft)
    assert set(draft.contacts.values_list("status", flat=True)) == {"skipped"}
    assert refused(services.start_campaign, draft)[0] == "status"
    assert refused(services.cancel_campaign, draft) == ("status", "the campaign is canceled already")
    assert refused(services.pause_campaign, draft)[0] == "status"


def test_progress_counts_contacts_and_says_why_it_waits(draft):
    add(draft, *PHONES[:3])
    services.skip_contact(contact=draft.contacts.first())
    draft.status, draft.timezone = Campaign.Status.RUNNING, "Etc/GMT-12"
    noon_utc = timezone.now().astimezone(datetime.UTC).replace(hour=12, minute=0)  # midnight at UTC+12
    report = services.progress(campaign=draft, now=noon_utc)
    assert report["contacts"] == {"pending": 2, "calling": 0, "done": 0, "failed": 0, "skipped": 1}
    assert (report["total"], report["finished"], report["percent"], report["calls_in_flight"]) == (3, 1, 33, 0)
    assert report["waiting"] == "outside calling hours (09:00-18:00 Etc/GMT-12; it is 00:00 there)"


def test_model_checks_name_their_field(bot_a, bot_b):
    campaign = Campaign(company=bot_a.company, bot=bot_b, name="x", calling_hours={"mon": [["18:00", "09:00"]]},
                        retry_busy_times=21, breaker_failed_percent=101)
    with pytest.raises(ValidationError) as caught:
        campaign.full_clean()
    errors = caught.value.message_dict
    assert errors["bot"] == ["This bot belongs to another company."]
    assert errors["calling_hours"] == [("mon, window 1: it must end after it starts (18:00-09:00); a window cannot "
                                        "run past midnight, split it over two days")]
    assert errors["retry_busy_times"] == ["Ensure this value is less than or equal to 20."]
    assert errors["breaker_failed_percent"] == ["Ensure this value is less than or equal to 100."]
    campaign.bot = bot_a
    with pytest.raises(ValidationError, match="mon, window 1: it must end after it starts"):
        campaign.save()  # not even the ORM stores hours the dialler cannot read
    assert not Campaign.objects.exists()


def test_resume_only_a_paused_campaign(draft):
    add(draft, PHONES[0])
    assert refused(services.resume_campaign, draft) == (
        "status", "only a paused campaign can be resumed (this one is draft)")
    services.start_campaign(campaign=draft)
    services.pause_campaign(campaign=draft, note="paused by the circuit breaker: ...")
    resumed = services.resume_campaign(campaign=draft)
    assert (resumed.status, resumed.status_note) == ("running", "")
    assert resumed.resumed_at >= resumed.started_at
