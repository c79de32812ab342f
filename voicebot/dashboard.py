"""The admin's first page: how each client's lines are doing, and what needs attention.

Figures are computed in the database, in a fixed number of queries whatever the number of
companies or calls: one over the week's calls (counts, answered, bookings, leads by tier),
one over their bot turns (reply latency) plus one for the total, one for today's calls per
hour, and one per list of what needs attention. "Today" and "this week" (Monday first, as
in the reports) are each company's own, in its time zone (``Company.timezone``).

Every query goes through ``for_user``: a staff user sees only the companies they are staff
of, a superuser every company. The other apps' models are looked up by name
(``apps.get_model``), so ``voicebot`` imports none of them (DESIGN.md: imports flow one way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.apps import apps
from django.db.models import (
    Aggregate,
    Avg,
    BooleanField,
    Count,
    DateField,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Trim
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from voicebot.models import Bot, Call, CallTurn, Company

# What counts as a conversation: the call went through (or was handed on) and the caller spoke.
ANSWERED_STATUSES = (Call.Status.COMPLETED, Call.Status.TRANSFERRED)
RECENT_DAYS = 7  # failing webhooks and calls in trouble: this far back
LIST_LIMIT = 10  # rows shown per list of what needs attention
LINK_IDS_LIMIT = 200  # ids in one "show these in the list" link
TIERS = ("hot", "warm", "cold")
# How the dialler words the pauses it makes itself (campaigns.dialer): the circuit breaker,
# and a placing error it cannot get past.
AUTOMATIC_PAUSE_PREFIXES = ("paused by the circuit breaker", "paused by the dialler")


class Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont``: linear interpolation, as ``postcall.analytics.percentile``."""

    function = "PERCENTILE_CONT"
    name = "Percentile"
    output_field = FloatField()
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, *, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _local(timestamp: str, zone: str) -> Func:
    """``timestamp`` as local wall-clock time in the time zone named by the field ``zone``."""
    return Func(F(zone), F(timestamp), function="timezone", output_field=DateTimeField())


def _local_now(now: datetime, zone: str) -> Func:
    return Func(F(zone), Value(now, output_field=DateTimeField()), function="timezone",
                output_field=DateTimeField())


def _week_of(expression) -> Func:
    return Func(Value("week"), expression, function="date_trunc", output_field=DateTimeField())


def _periods(queryset, *, now: datetime, timestamp: str, zone: str):
    """``queryset``'s rows of this week up to ``now`` (local to each row's company); ``TODAY`` keeps today's."""
    local, local_now = _local(timestamp, zone), _local_now(now, zone)
    return queryset.filter(**{f"{timestamp}__gte": now - timedelta(days=8), f"{timestamp}__lte": now}).alias(
        local_day=Cast(local, DateField()), today=Cast(local_now, DateField()),
        local_week=_week_of(local), this_week=_week_of(local_now),
    ).filter(local_week=F("this_week"))


TODAY = Q(local_day=F("today"))


@dataclass
class Figures:
    """One company's figures (or the total over several)."""

    calls_today: int = 0
    calls_week: int = 0
    answered_today: int = 0
    answered_week: int = 0
    bookings_today: int = 0
    bookings_week: int = 0
    leads_week: dict = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    latency_avg_ms: int | None = None  # bot replies this week
    latency_p95_ms: int | None = None
    latency_samples: int = 0
    calls_by_hour: list = field(default_factory=lambda: [0] * 24)  # today, local hours 0-23

    @staticmethod
    def _rate(part: int, whole: int) -> int | None:
        return round(100 * part / whole) if whole else None

    @property
    def answered_rate_today(self) -> int | None:
        return self._rate(self.answered_today, self.calls_today)

    @property
    def answered_rate_week(self) -> int | None:
        return self._rate(self.answered_week, self.calls_week)

    @property
    def hours(self) -> list[dict]:
        """The calls-per-hour chart's bars: hour, count and height in per cent of the busiest hour."""
        top = max(self.calls_by_hour) or 1
        return [{"hour": hour, "count": n, "percent": round(100 * n / top)}
                for hour, n in enumerate(self.calls_by_hour)]

    @property
    def hours_max(self) -> int:
        return max(self.calls_by_hour)

    def add(self, other: Figures) -> None:
        for name in ("calls_today", "calls_week", "answered_today", "answered_week", "bookings_today",
                     "bookings_week"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for tier in TIERS:
            self.leads_week[tier] += other.leads_week[tier]
        self.calls_by_hour = [a + b for a, b in zip(self.calls_by_hour, other.calls_by_hour)]


@dataclass
class CompanyRow:
    company: Company
    figures: Figures
    local_now: datetime

    @property
    def local_clock(self) -> str:
        """The company's own day and time now, e.g. "Tue 21:05"."""
        return f"{self.local_now:%a %H:%M}"

    def _calls_since(self, start: datetime) -> str:
        return _changelist(Call, company__id__exact=self.company.pk, started_at__gte=start.isoformat())

    @property
    def calls_today_url(self) -> str:
        """The calls list holding today's calls (local midnight on)."""
        return self._calls_since(self.local_now.replace(hour=0, minute=0, second=0, microsecond=0))

    @property
    def calls_week_url(self) -> str:
        monday = self.local_now.date() - timedelta(days=self.local_now.weekday())
        return self._calls_since(datetime.combine(monday, datetime.min.time(), tzinfo=self.company.tz))


@dataclass
class AttentionItem:
    company: Company
    label: str
    detail: str
    url: str


@dataclass
class AttentionList:
    key: str
    title: str
    items: list[AttentionItem]
    total: int
    url: str  # the filtered changelist with all of them
    empty: str


@dataclass
class Dashboard:
    companies: list[Company]  # every company the user may see (the picker)
    selected: Company | None  # the one picked, or None for all
    rows: list[CompanyRow]
    total: Figures
    attention: list[AttentionList]
    has_calls: bool
    getting_started: list[dict]  # bots to try, when no company has a call yet

    @property
    def needs_attention(self) -> int:
        return sum(item.total for item in self.attention)


def _model(label: str):
    try:
        return apps.get_model(label)
    except LookupError:
        return None


def _changelist(model, **params) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _ids(values) -> str:
    return ",".join(str(pk) for pk in list(values)[:LINK_IDS_LIMIT])


def _company_filter(companies: list[Company]) -> dict:
    """Changelist parameters that keep to one company when only one is shown."""
    return {"company__id__exact": companies[0].pk} if len(companies) == 1 else {}


# --- figures -------------------------------------------------------------------

def company_figures(*, user, companies: list[Company], now: datetime | None = None) -> dict[int, Figures]:
    """Each of ``companies``' figures (those ``user`` may see), by company id, in four queries."""
    now = now or timezone.now()
    figures = {company.pk: Figures() for company in companies}
    if not companies:
        return figures
    calls = _periods(Call.objects.for_user(user).filter(company__in=companies), now=now, timestamp="started_at",
                     zone="company__timezone")
    answered = Q(status__in=ANSWERED_STATUSES) & Q(Exists(
        CallTurn.objects.filter(call=OuterRef("pk"), role=CallTurn.Role.CALLER)))
    aggregates = {"calls_week": Count("pk"), "calls_today": Count("pk", filter=TODAY),
                  "answered_week": Count("pk", filter=answered), "answered_today": Count("pk", filter=answered & TODAY)}
    if _model("postcall.CallOutcome") is not None:
        booked = Q(outcome__booking__isnull=False) | Q(outcome__result="booking")
        aggregates.update(bookings_week=Count("pk", filter=booked), bookings_today=Count("pk", filter=booked & TODAY))
    if _model("postcall.Lead") is not None:
        aggregates.update({f"lead_{tier}": Count("pk", filter=Q(lead__tier=tier)) for tier in TIERS})
    for row in calls.values("company_id").annotate(**aggregates).order_by():
        item = figures[row.pop("company_id")]
        for tier in TIERS:
            item.leads_week[tier] = row.pop(f"lead_{tier}", 0)
        for name, value in row.items():
            setattr(item, name, value)

    hours = calls.filter(TODAY).annotate(
        hour=Func(_local("started_at", "company__timezone"), template="EXTRACT(HOUR FROM %(expressions)s)",
                  output_field=IntegerField()))
    for row in hours.values("company_id", "hour").annotate(n=Count("pk")).order_by():
        figures[row["company_id"]].calls_by_hour[int(row["hour"])] = row["n"]

    for row in _replies(user=user, companies=companies, now=now).values("call__company_id").annotate(
            **_latency_aggregates()).order_by():
        _set_latency(figures[row["call__company_id"]], row)
    return figures


def _replies(*, user, companies: list[Company], now: datetime):
    turns = CallTurn.objects.for_user(user).filter(call__company__in=companies, role=CallTurn.Role.BOT,
                                                   latency_ms__isnull=False)
    return _periods(turns, now=now, timestamp="call__started_at", zone="call__company__timezone")


def _latency_aggregates() -> dict:
    return {"avg": Avg("latency_ms"), "p95": Percentile("latency_ms", fraction=0.95), "samples": Count("pk")}


def _set_latency(figures: Figures, row: dict) -> None:
    figures.latency_samples = row["samples"] or 0
    figures.latency_avg_ms = round(row["avg"]) if row["avg"] is not None else None
    figures.latency_p95_ms = round(row["p95"]) if row["p95"] is not None else None


def total_figures(*, user, companies: list[Company], per_company: dict[int, Figures],
                  now: datetime | None = None) -> Figures:
    """The sum over ``companies``; the latency over all their replies (one query)."""
    total = Figures()
    for item in per_company.values():
        total.add(item)
    if len(per_company) == 1:
        only = next(iter(per_company.values()))
        total.latency_avg_ms, total.latency_p95_ms = only.latency_avg_ms, only.latency_p95_ms
        total.latency_samples = only.latency_samples
    elif companies:
        _set_latency(total, _replies(user=user, companies=companies, now=now or timezone.now()).aggregate(
            **_latency_aggregates()))
    return total


# --- what needs attention --------------------------------------------------------

def failed_documents(*, user, companies: list[Company]) -> AttentionList | None:
    Document = _model("knowledge.KnowledgeDocument")
    if Document is None:
        return None
    rows = list(Document.objects.for_user(user).filter(company__in=companies, status="failed")
                .select_related("company").order_by("-updated_at")[:LINK_IDS_LIMIT])
    items = [AttentionItem(company=doc.company, label=doc.name, detail=(doc.error or "no reason stored")[:160],
                           url=reverse("admin:knowledge_knowledgedocument_change", args=[doc.pk]))
             for doc in rows[:LIST_LIMIT]]
    return AttentionList(key="documents", title="Documents that failed to ingest", items=items,
                         total=len(rows),
                         url=_changelist(Document, status__exact="failed", **_company_filter(companies)),
                         empty="Every document was ingested.")


def failing_webhooks(*, user, companies: list[Company], now: datetime | None = None) -> AttentionList | None:
    """Endpoints with deliveries that gave up or are being retried, in the last ``RECENT_DAYS`` days."""
    Delivery = _model("postcall.WebhookDelivery")
    if Delivery is None:
        return None
    since = (now or timezone.now()) - timedelta(days=RECENT_DAYS)
    failing = Delivery.objects.for_user(user).filter(endpoint__company__in=companies, status__in=("failed", "retrying"),
                                                     created_at__gte=since)
    last_error = failing.filter(endpoint=OuterRef("endpoint_id")).order_by("-created_at").values("last_error")[:1]
    rows = list(failing.values("endpoint_id", "endpoint__url", "endpoint__company_id").annotate(
        failed=Count("pk", filter=Q(status="failed")), retrying=Count("pk", filter=Q(status="retrying")),
        last=Max("created_at"), last_error=Subquery(last_error)).order_by("-last"))
    by_id = {company.pk: company for company in companies}
    items = []
    for row in rows[:LIST_LIMIT]:
        counts = ", ".join(part for part in (f"{row['failed']} gave up" if row["failed"] else "",
                                             f"{row['retrying']} retrying" if row["retrying"] else "") if part)
        detail = f"{counts}; last error: {row['last_error'][:120]}" if row["last_error"] else counts
        items.append(AttentionItem(
            company=by_id[row["endpoint__company_id"]], label=row["endpoint__url"], detail=detail,
            url=_changelist(Delivery, endpoint__id__exact=row["endpoint_id"], status__in="failed,retrying",
                            created_at__gte=since.isoformat(timespec="seconds"))))
    params = {"status__in": "failed,retrying", "created_at__gte": since.isoformat(timespec="seconds")}
    if len(companies) == 1:
        params["endpoint__company__id__exact"] = companies[0].pk
    return AttentionList(key="webhooks", title=f"Webhook endpoints failing (last {RECENT_DAYS} days)", items=items,
                         total=len(rows), url=_changelist(Delivery, **params), empty="Every webhook was delivered.")


def calls_in_trouble(*, user, companies: list[Company], now: datetime | None = None) -> AttentionList:
    """Calls of the last ``RECENT_DAYS`` days that ended in an error, or got only the fallback phrase.

    Fallback only: the caller spoke, and every bot turn after the caller first spoke (the
    replies; the greeting comes before) starts with the bot's fallback phrase.
    """
    since = (now or timezone.now()) - timedelta(days=RECENT_DAYS)
    fallback = Trim(OuterRef("bot__fallback_phrase"))
    replies = CallTurn.objects.filter(call=OuterRef("pk"), role=CallTurn.Role.BOT).filter(Exists(
        CallTurn.objects.filter(call=OuterRef("call"), role=CallTurn.Role.CALLER, index__lt=OuterRef("index"))))
    errored = Q(end_reason=Call.EndReason.ERROR) | Q(status=Call.Status.FAILED)
    fallback_only = (~Q(bot__fallback_phrase="") & Q(Exists(replies))
                     & ~Q(Exists(replies.annotate(said=Trim("text")).exclude(said__startswith=fallback))))
    calls = (Call.objects.for_user(user).filter(company__in=companies, started_at__gte=since)
             .filter(errored | fallback_only)
             .annotate(is_error=ExpressionWrapper(errored, output_field=BooleanField()))
             .select_related("company", "bot").order_by("-started_at"))
    rows = list(calls[:LINK_IDS_LIMIT])
    items = []
    for call in rows[:LIST_LIMIT]:
        when = timezone.localtime(call.started_at, call.company.tz)
        if call.is_error:
            detail = f"{call.get_status_display()}, {call.get_end_reason_display() or 'no end reason'}"
        else:
            detail = "only the fallback phrase was said"
        label = f"{when:%a %d %b %H:%M} {call.from_number or ''}".strip()
        items.append(AttentionItem(company=call.company, label=label,
                                   detail=f"{call.bot.name if call.bot else 'no bot'}: {detail}",
                                   url=reverse("admin:voicebot_call_change", args=[call.pk])))
    return AttentionList(key="calls", title=f"Calls in error or fallback only (last {RECENT_DAYS} days)", items=items,
                         total=len(rows), url=_changelist(Call, id__in=_ids(call.pk for call in rows)),
                         empty="No call ended in an error or got only the fallback phrase.")


def paused_campaigns(*, user, companies: list[Company]) -> AttentionList | None:
    """Campaigns the dialler paused itself (its circuit breaker, or an error placing calls)."""
    Campaign = _model("campaigns.Campaign")
    if Campaign is None:
        return None
    automatic = Q()
    for prefix in AUTOMATIC_PAUSE_PREFIXES:
        automatic |= Q(status_note__startswith=prefix)
    rows = list(Campaign.objects.for_user(user).filter(automatic, company__in=companies, status="paused")
                .select_related("company").order_by("-updated_at")[:LINK_IDS_LIMIT])
    items = [AttentionItem(company=c.company, label=c.name, detail=c.status_note[:200],
                           url=reverse("admin:campaigns_campaign_change", args=[c.pk])) for c in rows[:LIST_LIMIT]]
    return AttentionList(key="campaigns", title="Campaigns paused by the dialler", items=items, total=len(rows),
                         url=_changelist(Campaign, id__in=_ids(c.pk for c in rows)),
                         empty="No campaign was paused by its circuit breaker.")


def getting_started(*, user, companies: list[Company]) -> list[dict]:
    """A few bots to try (chat and test call links), for users whose companies have no call yet."""
    bots = Bot.objects.for_user(user).filter(company__in=companies, active=True).select_related("company")
    hints = []
    for bot in bots.order_by("company__name", "name")[:5]:
        try:
            try_url = reverse("try_bot", args=[bot.pk])
        except NoReverseMatch:
            try_url = ""
        hints.append({"bot": bot, "try_url": try_url,
                      "test_call_url": reverse("admin:voicebot_bot_test_call", args=[bot.pk]),
                      "change_url": reverse("admin:voicebot_bot_change", args=[bot.pk])})
    return hints


# --- the page ----------------------------------------------------------------------

def build_dashboard(*, user, company_id: int | str | None = None, now: datetime | None = None) -> Dashboard:
    """Everything the first page shows for ``user``; ``company_id`` picks one of their companies."""
    now = now or timezone.now()
    visible = list(Company.objects.for_user(user).order_by("name"))
    selected = None
    if company_id not in (None, ""):
        selected = next((c for c in visible if str(c.pk) == str(company_id)), None)
    companies = [selected] if selected else visible
    per_company = company_figures(user=user, companies=companies, now=now)
    total = total_figures(user=user, companies=companies, per_company=per_company, now=now)
    rows = [CompanyRow(company=c, figures=per_company[c.pk], local_now=timezone.localtime(now, c.tz))
            for c in companies]
    attention = [item for item in (
        calls_in_trouble(user=user, companies=companies, now=now),
        failing_webhooks(user=user, companies=companies, now=now),
        failed_documents(user=user, companies=companies),
        paused_campaigns(user=user, companies=companies),
    ) if item is not None]
    has_calls = total.calls_week > 0 or Call.objects.for_user(user).filter(company__in=companies).exists()
    hints = [] if has_calls or not companies else getting_started(user=user, companies=companies)
    return Dashboard(companies=visible, selected=selected, rows=rows, total=total, attention=attention,
                     has_calls=has_calls, getting_started=hints)
