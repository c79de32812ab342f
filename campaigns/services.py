"""What staff and the API do to a campaign: start, pause, resume, cancel, skip a contact, read its progress.

The dialler (``campaigns.dialer``) does the calling; these only change the rows it reads, each
under the campaign's row lock, so a tick never sees half a change.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, Contact
from voicebot.outbound_calls import CallRequestError, caller_id_for


class CampaignError(ValueError):
    """A change the campaign cannot take; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update(of=("self",)).select_related("company", "bot__company").get(
        pk=campaign.pk)


def start_campaign(*, campaign: Campaign) -> Campaign:
    """Start (or resume) dialling; ``CampaignError`` if the bot, caller id or contacts are missing."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status == Campaign.Status.CANCELED:
            raise CampaignError("status", "a canceled campaign cannot be started again; copy it into a new one")
        if campaign.status == Campaign.Status.RUNNING:
            return campaign
        if not campaign.bot.active:
            raise CampaignError("bot", f"bot {campaign.bot.slug!r} is inactive")
        try:
            caller_id_for(campaign.bot, campaign.from_number)
        except CallRequestError as exc:
            raise CampaignError("from_number", str(exc)) from None
        if not campaign.contacts.filter(status__in=(Contact.Status.PENDING, Contact.Status.CALLING)).exists():
            raise CampaignError("contacts", "no contact is waiting to be called; import a contact list first")
        if campaign.ends_at and campaign.ends_at <= timezone.now():
            raise CampaignError("ends_at", "the campaign's end has passed; move ends_at or clear it")
        now = timezone.now()
        campaign.status, campaign.status_note, campaign.finished_at = Campaign.Status.RUNNING, "", None
        campaign.started_at = campaign.started_at or now
        campaign.resumed_at = now  # the circuit breaker counts calls that end from now on
        campaign.save(update_fields=["status", "status_note", "started_at", "resumed_at", "finished_at",
                                     "updated_at"])
        return campaign


def resume_campaign(*, campaign: Campaign) -> Campaign:
    """Go on dialling a paused campaign (paused by staff, the dialler or the circuit breaker)."""
    with transaction.atomic():
        status = _locked(campaign).status
        if status != Campaign.Status.PAUSED:
            raise CampaignError("status", f"only a paused campaign can be resumed (this one is {status})")
        return start_campaign(campaign=campaign)


def pause_campaign(*, campaign: Campaign, note: str = "") -> Campaign:
    """Stop placing new calls; calls in progress go on and are settled as usual."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status != Campaign.Status.RUNNING:
            raise CampaignError("status", f"only a running campaign can be paused (this one is {campaign.status})")
        campaign.status, campaign.status_note = Campaign.Status.PAUSED, note
        campaign.save(update_fields=["status", "status_note", "updated_at"])
        return campaign


def cancel_campaign(*, campaign: Campaign) -> Campaign:
    """Stop for good: contacts still waiting are skipped; calls in progress go on to their end."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status in Campaign.FINISHED:
            raise CampaignError("status", f"the campaign is {campaign.status} already")
        now = timezone.now()
        campaign.contacts.filter(status=Contact.Status.PENDING).update(
            status=Contact.Status.SKIPPED, note="the campaign was canceled", next_attempt_at=None, updated_at=now)
        campaign.status, campaign.finished_at = Campaign.Status.CANCELED, now
        campaign.save(update_fields=["status", "finished_at", "updated_at"])
        return campaign


def skip_contact(*, contact: Contact, note: str = "skipped by staff") -> Contact:
    """Never call ``contact`` (again); a call already in progress is not hung up."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.status in Contact.FINAL:
            raise CampaignError("status", f"the contact is {contact.get_status_display().lower()} already")
        contact.status, contact.note, contact.next_attempt_at = Contact.Status.SKIPPED, note, None
        contact.save(update_fields=["status", "note", "next_attempt_at", "updated_at"])
        return contact


def progress(*, campaign: Campaign, now=None) -> dict:
    """Contacts per status, how many are finished, calls in flight and in the last hour, and why the
    campaign is not dialling now (if it is not)."""
    from campaigns.dialer import waiting_reason

    now = now or timezone.now()
    counts = dict(campaign.contacts.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    contacts = {status: counts.get(status, 0) for status in Contact.Status.values}
    waiting = waiting_reason(campaign, now) if campaign.status == Campaign.Status.RUNNING else ""
    total = sum(contacts.values())
    finished = sum(contacts[status] for status in Contact.FINAL)
    return {"contacts": contacts, "total": total, "finished": finished,
            "percent": round(100 * finished / total) if total else 0,
            "calls_in_flight": campaign.attempts.filter(settled_at__isnull=True).count(),
            "calls_last_hour": campaign.attempts.filter(placed_at__gt=now - timedelta(hours=1),
                                                        placed_at__lte=now).count(),
            "attempts": campaign.attempts.count(), "waiting": waiting}
