"""Campaigns: a bot calling a list of contacts, and every attempt it made.

A contact is claimed by one dialler at a time (``SELECT ... FOR UPDATE SKIP LOCKED``), each
attempt is one outbound ``Call`` placed through ``voicebot.outbound_calls.request_call``, and
the attempt is settled from that call's final status (``campaigns.dialer``). Every row is
reached through its company (``company_path``), like the core models.
"""

from __future__ import annotations

import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from campaigns import hours
from voicebot.models import Bot, Call, Company, PhoneNumber, validate_timezone
from voicebot.outbound_calls import DIALING_PROVIDERS
from voicebot.tenancy import CompanyScopedManager

WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"), (5, "Saturday"),
            (6, "Sunday")]
# Final call statuses after which a contact may be called again, each with its own delay and
# limit (the Campaign's retry_<field>_minutes / retry_<field>_times); any other status ends it.
RETRY_OUTCOMES = {Call.Status.BUSY: "busy", Call.Status.NO_ANSWER: "no_answer", Call.Status.VOICEMAIL: "voicemail",
                  Call.Status.FAILED: "failed"}
# Migration 0001's choices of the retry_on field it created (replaced by the fields above in 0003).
RETRYABLE = [(status, label) for status, label in Call.Status.choices
             if status in ("busy", "no-answer", "failed", "voicemail", "rejected", "canceled")]


def default_call_days() -> list[int]:  # migration 0001
    return [0, 1, 2, 3, 4]


def default_retry_on() -> list[str]:  # migration 0001
    return [Call.Status.BUSY, Call.Status.NO_ANSWER, Call.Status.FAILED]


def validate_weekdays(value) -> None:  # migration 0001
    if not value:
        raise ValidationError("Choose at least one day to call on.")
    bad = [day for day in value if day not in range(7)]
    if bad:
        raise ValidationError(f"Days are 0 (Monday) to 6 (Sunday), not {bad}.")


MAX_RETRY_MINUTES = 30 * 24 * 60


def validate_retry_on(value) -> None:  # migration 0001
    allowed = {status for status, _ in RETRYABLE}
    bad = [status for status in value if status not in allowed]
    if bad:
        raise ValidationError(f"{', '.join(map(repr, bad))}: a contact can be called again only after "
                              f"{', '.join(sorted(allowed))}.")


class Campaign(models.Model):
    """A bot calling a contact list within calling hours, at a bounded pace, with retries."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELED = "canceled", "Canceled"

    FINISHED = (Status.COMPLETED, Status.CANCELED)

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="campaigns")
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    from_number = models.CharField(
        max_length=20, blank=True,
        help_text="Caller id: one of the company's active Twilio, Telnyx, Plivo or SIP numbers. "
                  "Empty: the bot's own first number.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    status_note = models.TextField(blank=True, help_text="Why the dialler paused or stopped the campaign.")
    timezone = models.CharField(
        max_length=64, blank=True, validators=[validate_timezone],
        help_text="Calling hours are read in the contact's own time zone (its list's timezone column), else in "
                  "this one. Empty: the company's.")
    calling_hours = models.JSONField(
        default=hours.default_calling_hours,
        help_text='Local calling windows per weekday, e.g. {"mon": [["09:00", "17:00"]], "sat": [["10:00", '
                  '"13:00"]]}; a day left out has no calls. The start is included, the end is not ("24:00": midnight).')
    starts_at = models.DateTimeField(null=True, blank=True, help_text="No call before this moment. Empty: at once.")
    ends_at = models.DateTimeField(
        null=True, blank=True,
        help_text="No call after this moment; contacts not reached by then are skipped. Empty: until all are done.")
    max_concurrent_calls = models.PositiveIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(500)],
        help_text="Calls of this campaign at once (the company's lines bound every campaign together).")
    calls_per_minute = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text="New calls started per minute, at most.")
    max_attempts = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Calls to one contact, at most, whatever their outcomes (the first included).")
    retry_busy_minutes = models.PositiveIntegerField(
        default=10, validators=[MaxValueValidator(MAX_RETRY_MINUTES)], verbose_name="busy: call again after (minutes)")
    retry_busy_times = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(20)], verbose_name="busy: times at most",
        help_text="How often a contact is called again after a busy line (0: never).")
    retry_no_answer_minutes = models.PositiveIntegerField(
        default=60, validators=[MaxValueValidator(MAX_RETRY_MINUTES)],
        verbose_name="no answer: call again after (minutes)")
    retry_no_answer_times = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(20)], verbose_name="no answer: times at most",
        help_text="How often a contact is called again after ringing out (0: never).")
    retry_voicemail_minutes = models.PositiveIntegerField(
        default=240, validators=[MaxValueValidator(MAX_RETRY_MINUTES)],
        verbose_name="voicemail: call again after (minutes)")
    retry_voicemail_times = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(20)], verbose_name="voicemail: times at most",
        help_text="How often a contact is called again after reaching voicemail (0: never: the contact is done).")
    retry_failed_minutes = models.PositiveIntegerField(
        default=30, validators=[MaxValueValidator(MAX_RETRY_MINUTES)], verbose_name="failed: call again after (minutes)")
    retry_failed_times = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(20)], verbose_name="failed: times at most",
        help_text="How often a contact is called again after the call failed (the provider's or the runner's "
                  "error; 0: never).")
    breaker_failed_percent = models.PositiveSmallIntegerField(
        default=50, validators=[MaxValueValidator(100)], verbose_name="circuit breaker: failed calls (%)",
        help_text="Pause the campaign when at least this share of its recent calls failed (0: never pause).")
    breaker_last_calls = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        verbose_name="circuit breaker: of the last calls",
        help_text="The recent calls are at most this many, the last ones to end...")
    breaker_minutes = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        verbose_name="circuit breaker: within (minutes)", help_text="...within this many minutes...")
    breaker_min_calls = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        verbose_name="circuit breaker: at least (calls)", help_text="...and at least this many (fewer: no pause).")
    voicemail_message = models.TextField(
        blank=True, help_text="Left on an answering machine, with {{variables}} filled in (a contact list's "
                              "voicemail_message column wins). Empty: the bot's own message.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    resumed_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When it was last started or resumed: the circuit breaker counts only calls that ended since.")
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    company_path = "company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["company__name", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="campaign_name_unique_per_company")]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone or self.company.timezone)

    @property
    def week(self) -> dict[int, list[tuple[int, int]]]:
        """Weekday (0 = Monday) -> its calling windows in minutes after local midnight."""
        return hours.parse(self.calling_hours)

    def retry_rule(self, result: str) -> tuple[int, int]:
        """(times at most, minutes to wait) of calling a contact again after ``result``; (0, 0): never."""
        field = RETRY_OUTCOMES.get(result)
        if field is None:
            return 0, 0
        return getattr(self, f"retry_{field}_times"), getattr(self, f"retry_{field}_minutes")

    def save(self, *args, **kwargs):
        # Bad hours never reach the dialler, whichever way the row is written (clean() names the field).
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "calling_hours" in update_fields:
            self.calling_hours = hours.normalize(self.calling_hours)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors = {}
        if self.bot_id and self.company_id and self.bot.company_id != self.company_id:
            errors["bot"] = "This bot belongs to another company."
        try:
            self.calling_hours = hours.normalize(self.calling_hours)
        except ValidationError as exc:
            errors["calling_hours"] = exc.messages
        own_numbers = PhoneNumber.objects.filter(company_id=self.company_id, active=True,
                                                 provider__in=DIALING_PROVIDERS)
        if self.from_number and self.company_id and not own_numbers.filter(number=self.from_number.strip()).exists():
            errors["from_number"] = (f"{self.from_number!r} is not an active Twilio, Telnyx, Plivo or SIP number "
                                     "of this company.")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The campaign must end after it starts."
        if errors:
            raise ValidationError(errors)


class Contact(models.Model):
    """One person to call in a campaign, with the values the bot's {{variables}} read."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be called"
        CALLING = "calling", "Call in progress"
        DONE = "done", "Reached"
        FAILED = "failed", "Not reached"
        SKIPPED = "skipped", "Skipped"

    FINAL = (Status.DONE, Status.FAILED, Status.SKIPPED)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contacts")
    phone = models.CharField(max_length=255, help_text="E.164, or a SIP URI where the campaign calls from SIP.")
    name = models.CharField(max_length=200, blank=True)
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone],
                                help_text="Calling hours are read in this time zone. Empty: the campaign's.")
    variables = models.JSONField(default=dict, blank=True,
                                 help_text="Values of the bot's {{name}}-style variables for this contact.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts_made = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True,
                                           help_text="Not called before this moment. Empty: as soon as possible.")
    last_status = models.CharField(max_length=16, blank=True, help_text="The last attempt's result.")
    note = models.TextField(blank=True, help_text="Why the contact was not reached or skipped.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    company_path = "campaign__company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["campaign", "pk"]
        constraints = [models.UniqueConstraint(fields=["campaign", "phone"], name="contact_phone_unique_per_campaign")]
        indexes = [models.Index(fields=["campaign", "status", "next_attempt_at"], name="contact_due")]

    def __str__(self) -> str:
        return f"{self.name} ({self.phone})" if self.name else self.phone


class Attempt(models.Model):
    """One call placed to a contact; ``result`` stays empty until the call has ended."""

    UNKNOWN = "unknown"  # no final status came within the time limit: never retried (no double calls)
    RESULTS = [*Call.Status.choices, (UNKNOWN, "Unknown (no final status in time)")]

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="attempts")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="attempts")
    call = models.OneToOneField(Call, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="campaign_attempt")
    number = models.PositiveSmallIntegerField(help_text="1 for the first call to the contact, 2 for the next...")
    placed_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=16, choices=RESULTS, blank=True)
    note = models.TextField(blank=True)

    company_path = "campaign__company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["-placed_at"]
        constraints = [models.UniqueConstraint(fields=["contact", "number"], name="attempt_number_unique")]
        indexes = [models.Index(fields=["campaign"], condition=models.Q(settled_at__isnull=True),
                                name="attempt_in_flight"),
                   models.Index(fields=["campaign", "placed_at"], name="attempt_placed")]

    def __str__(self) -> str:
        return f"Attempt {self.number} to {self.contact.phone}"
