"""What the agency's client gets from every call: outcome, lead, webhooks, reports.

Every row is reached through its company (``company_path``), like the core models.
Rows written by Celery tasks carry unique constraints so that a task run twice
(a retry, or a redelivery after a worker died) writes nothing twice.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from voicebot.models import Bot, Call, Company
from voicebot.tenancy import CompanyScopedManager


class Source(models.TextChoices):
    """Where a value came from, stored beside it."""

    SCENARIO = "scenario", "Scenario engine"
    TRANSCRIPT = "transcript", "Transcript (rules)"
    CALLER_ID = "caller_id", "Caller id"
    LLM = "llm", "Language model"
    FALLBACK = "fallback", "Built from the transcript"


class CallOutcome(models.Model):
    """The result of one call: summary, intent, fields collected, booking."""

    class Result(models.TextChoices):
        BOOKING = "booking", "Booking made"
        LEAD = "lead", "Lead captured"
        INFORMATION = "information", "Question answered"
        TRANSFERRED = "transferred", "Transferred"
        NO_CONVERSATION = "no_conversation", "No conversation"
        FAILED = "failed", "Failed"

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="outcome")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="call_outcomes")
    result = models.CharField(max_length=24, choices=Result.choices, db_index=True)
    intent = models.CharField(max_length=40, blank=True)
    intent_source = models.CharField(max_length=16, choices=Source.choices, blank=True)
    summary = models.TextField(blank=True)
    summary_source = models.CharField(max_length=16, choices=Source.choices, blank=True)
    fields = models.JSONField(
        default=dict, blank=True, help_text='Field name -> {"value": ..., "source": ...}, in the bot\'s field schema.'
    )
    booking = models.JSONField(null=True, blank=True, help_text="The booking's fields when one was made.")
    processed_at = models.DateTimeField(auto_now=True)

    company_path = "company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["-call__started_at"]

    def __str__(self) -> str:
        return f"{self.get_result_display()} (call {self.call_id})"

    def field_values(self) -> dict:
        return {name: item.get("value") for name, item in (self.fields or {}).items()}


class Lead(models.Model):
    """A prospective customer from a call, with contact fields and a score."""

    class Tier(models.TextChoices):
        HOT = "hot", "Hot"
        WARM = "warm", "Warm"
        COLD = "cold", "Cold"

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="lead")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="leads")
    bot = models.ForeignKey(Bot, on_delete=models.SET_NULL, null=True, blank=True, related_name="leads")
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    email = models.EmailField(blank=True)
    contact_sources = models.JSONField(default=dict, blank=True, help_text="Contact field -> where it came from.")
    score = models.IntegerField(default=0, db_index=True)
    tier = models.CharField(max_length=8, choices=Tier.choices, default=Tier.COLD, db_index=True)
    score_reasons = models.JSONField(default=list, blank=True, help_text="The rules that matched, with points.")
    created_at = models.DateTimeField(auto_now_add=True)

    company_path = "company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or self.phone or self.email or 'Lead'} ({self.tier}, {self.score})"


def default_scoring_rules() -> list[dict]:
    from postcall.scoring import DEFAULT_RULES

    return [dict(rule) for rule in DEFAULT_RULES]


class LeadScoringRules(models.Model):
    """A bot's lead scoring: rules (JSON) and the hot/warm thresholds."""

    bot = models.OneToOneField(Bot, on_delete=models.CASCADE, related_name="lead_scoring")
    rules = models.JSONField(
        default=default_scoring_rules,
        help_text='A list of rules: {"signal": "asked_price", "points": 10, "keywords": ["price", "cost"]} '
        '(keywords: matched in what the caller said) or built-in signals gave_phone, gave_email, gave_name, '
        "booking_created, transferred.",
    )
    hot_threshold = models.IntegerField(default=40)
    warm_threshold = models.IntegerField(default=20)

    company_path = "bot__company"
    objects = CompanyScopedManager()

    class Meta:
        verbose_name = "lead scoring rules"
        verbose_name_plural = "lead scoring rules"

    def __str__(self) -> str:
        return f"Lead scoring of {self.bot.name}"

    def clean(self) -> None:
        from postcall.scoring import RuleError, validate_rules

        try:
            self.rules = validate_rules(self.rules)
        except RuleError as exc:
            raise ValidationError({"rules": exc.errors}) from None
        if self.warm_threshold > self.hot_threshold:
            raise ValidationError({"warm_threshold": "The warm threshold must not be above the hot threshold."})


class Event(models.TextChoices):
    CALL_ENDED = "call.ended", "call.ended"
    LEAD_CAPTURED = "lead.captured", "lead.captured"
    BOOKING_CREATED = "booking.created", "booking.created"
    REPORT_READY = "report.ready", "report.ready"
    TEST = "webhook.test", "webhook.test (admin's test button)"


SUBSCRIBABLE_EVENTS = [choice for choice in Event.choices if choice[0] != Event.TEST]


def validate_events(value) -> None:
    unknown = [event for event in value or [] if event not in dict(SUBSCRIBABLE_EVENTS)]
    if unknown:
        raise ValidationError(f"Unknown event(s) {', '.join(unknown)}; choose from {', '.join(dict(SUBSCRIBABLE_EVENTS))}.")
    if not value:
        raise ValidationError("Choose at least one event.")


def validate_webhook_url(value: str) -> None:
    from postcall.webhooks import WebhookUrlError, check_url

    try:
        check_url(value)
    except WebhookUrlError as exc:
        raise ValidationError(str(exc)) from None


class WebhookEndpoint(models.Model):
    """Where a company's events are POSTed, signed with its secret."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500, validators=[validate_webhook_url])
    events = ArrayField(
        models.CharField(max_length=32, choices=SUBSCRIBABLE_EVENTS),
        default=list,
        validators=[validate_events],
        help_text="Events sent to this URL.",
    )
    secret = models.CharField(
        max_length=128, help_text="Shared secret for the X-Voicebot-Signature HMAC. Keep it private."
    )
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    company_path = "company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["company__name", "url"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint; its id is sent as X-Voicebot-Delivery on every attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=Event.choices)
    event_key = models.CharField(
        max_length=120, help_text="What the event is about (e.g. call:42), so an event is queued once."
    )
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    company_path = "endpoint__company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event", "event_key"], name="webhook_delivery_once_per_event")
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint.url} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP POST of a delivery: when, what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    replay = models.BooleanField(default=False, help_text="Sent from the admin's replay action.")

    company_path = "delivery__endpoint__company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.response_code or self.error[:40]}"

    @property
    def ok(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


class Period(models.TextChoices):
    DAY = "day", "Daily"
    WEEK = "week", "Weekly"


class ReportSchedule(models.Model):
    """A company's daily or weekly report, sent by Celery beat at a local hour."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="report_schedules")
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.DAY)
    hour = models.PositiveSmallIntegerField(
        default=7, help_text="Local hour (0-23, in the company's time zone) when the report is sent."
    )
    weekday = models.PositiveSmallIntegerField(
        default=1, help_text="Weekly reports: day of week (0 = Sunday, 1 = Monday ... 6 = Saturday)."
    )
    active = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )

    company_path = "company"
    objects = CompanyScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "period"], name="report_schedule_once_per_period")]

    def __str__(self) -> str:
        return f"{self.get_period_display()} report of {self.company}"

    def clean(self) -> None:
        if self.hour > 23:
            raise ValidationError({"hour": "An hour from 0 to 23."})
        if self.weekday > 6:
            raise ValidationError({"weekday": "A day of week from 0 (Sunday) to 6 (Saturday)."})


class Report(models.Model):
    """A company's figures for one day or week (local time), built once per period."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="reports")
    period = models.CharField(max_length=8, choices=Period.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    emailed_to = ArrayField(models.EmailField(), default=list, blank=True)

    company_path = "company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["company", "period", "period_start"], name="report_once_per_period")
        ]

    def __str__(self) -> str:
        local = self.period_start.astimezone(self.company.tz)
        return f"{self.get_period_display()} report of {self.company}, {local:%Y-%m-%d}"
