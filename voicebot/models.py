"""Core domain: companies (tenants), their bots, phone numbers, calls and API keys."""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from voicebot.scenarios import ScenarioError, validate_scenarios
from voicebot.tenancy import CompanyScopedManager, CompanyScopedQuerySet, can_see_all

E164_VALIDATOR = RegexValidator(
    r"^\+[1-9]\d{6,14}$",
    "Enter the number in E.164 form: '+' then country code and number, digits only (e.g. +14155550123).",
)
NUMBER_VALIDATOR = RegexValidator(
    r"^(\+[1-9]\d{6,14}|\d{2,15})$",
    "Enter the number in E.164 form ('+' then country code and number, e.g. +14155550123) or, for SIP and "
    "Asterisk, the extension or number the PBX sends (digits only, e.g. 200).",
)
COUNTRY_VALIDATOR = RegexValidator(r"^[A-Z]{2}$", "Two capital letters, an ISO 3166 country code such as US or DE.")
LANGUAGE_VALIDATOR = RegexValidator(
    r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", "A language code such as en, de or pt-BR."
)


# Files of the system's zone database that are no zone name PostgreSQL knows.
NOT_ZONE_NAMES = frozenset({"localtime", "posixrules"})


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones() or value in NOT_ZONE_NAMES:
        raise ValidationError(f"'{value}' is not a known time zone; use a name such as Europe/Berlin or America/New_York.")


def _default_country() -> str:
    return settings.DEFAULT_COUNTRY


def _default_language() -> str:
    return settings.DEFAULT_LANGUAGE


class CompanyQuerySet(models.QuerySet):
    def for_user(self, user):
        """The companies ``user`` may see: all for superusers, else those they staff."""
        if can_see_all(user):
            return self.all()
        if not user or not user.is_authenticated or not user.is_active:
            return self.none()
        return self.filter(pk__in=Company.staff.through.objects.filter(user=user).values("company_id"))


class Company(models.Model):
    """A client of the agency: the tenant that owns bots, numbers, calls and documents."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    country = models.CharField(
        max_length=2,
        default=_default_country,
        validators=[COUNTRY_VALIDATOR],
        help_text="ISO 3166 country used to read local phone numbers (e.g. US, GB, DE).",
    )
    default_language = models.CharField(max_length=16, default=_default_language, validators=[LANGUAGE_VALIDATOR])
    report_recipients = ArrayField(
        models.EmailField(),
        blank=True,
        default=list,
        help_text="E-mail addresses that receive scheduled reports, separated by commas.",
    )
    max_lines = models.PositiveIntegerField(
        default=5,
        validators=[MaxValueValidator(10000)],
        help_text="Simultaneous calls this company's bots may take, over every runner and entry point "
                  "(the lines the agency sells). 0: no company limit, only the runner's.",
    )
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="companies",
        help_text="Agency staff who may see and edit this company and everything under it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class CompanyOwned(models.Model):
    """Base for rows that belong to a company directly (each declares its ``company``)."""

    company_path = "company"

    objects = CompanyScopedManager()

    class Meta:
        abstract = True


class Bot(CompanyOwned):
    """A phone agent: what it says, how it sounds, which models it runs on."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=120)
    slug = models.SlugField(
        max_length=80, unique=True, help_text="Used in URLs (/call/SLUG) and commands (--bot SLUG)."
    )
    active = models.BooleanField(default=True, help_text="Inactive bots reject calls with a short apology.")
    language = models.CharField(max_length=16, blank=True, validators=[LANGUAGE_VALIDATOR],
                                help_text="Empty: the company's default language.")
    greeting = models.TextField(blank=True, help_text="Spoken when the call connects.")
    system_prompt = models.TextField(
        "instructions (system prompt)",
        blank=True,
        default="You are a friendly phone receptionist. Answer in one or two short sentences.",
        help_text="Instructions for the language model. Keep it short: it is read before every reply.",
    )
    voice = models.CharField(
        "voice",
        max_length=120,
        blank=True,
        help_text="An installed Piper voice (e.g. en_US-joe-medium) or the path of an .onnx voice file. "
                  "Empty: the install's default voice.",
    )
    stt_model = models.CharField(
        "speech recognition model",
        max_length=200,
        blank=True,
        help_text="The Whisper model that turns the caller's speech into text: a name (tiny.en, small, "
                  "large-v3...) or the folder of a local faster-whisper model. Bigger is more accurate and slower. "
                  "Empty: the install's default.",
    )
    llm_model = models.CharField(
        "language model",
        max_length=120, blank=True,
        help_text="A model the language model server serves (e.g. llama3.1:8b on Ollama). "
                  "Empty: the install's default.",
    )
    temperature = models.FloatField(
        "creativity (temperature)", default=0.3, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text="0 gives the same wording every time; higher varies it (0-2). Facts are checked either way.",
    )
    max_tokens = models.PositiveIntegerField(
        "longest reply (tokens)", default=150, validators=[MinValueValidator(16), MaxValueValidator(4096)],
        help_text="A cap on the length of one reply; about 100 tokens are 75 words.",
    )
    scenarios = models.JSONField(
        default=list,
        blank=True,
        help_text="Scripted flows (YAML): each with name, trigger_keywords, collect_fields and on_complete.",
    )
    fallback_phrase = models.TextField(
        default="Sorry, I didn't catch that. Could you say it another way?",
        help_text="Said when nothing else fits, or when the language model fails.",
    )
    max_turns = models.PositiveIntegerField(
        "most caller turns", default=20, validators=[MinValueValidator(1), MaxValueValidator(500)],
        help_text="The bot says goodbye after this many turns of the caller.",
    )
    silence_timeout_sec = models.FloatField(
        "silence before re-prompt (seconds)",
        default=10.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(300.0)],
        help_text="Seconds of caller silence before the bot re-prompts (once), then says goodbye.",
    )
    transfer_number = models.CharField(
        "transfer to",
        max_length=20,
        blank=True,
        validators=[E164_VALIDATOR],
        help_text="Where transfer_call sends the caller (E.164). Empty: transfers are off.",
    )
    voicemail_message = models.TextField(
        blank=True,
        help_text="Outbound calls that reach voicemail: left after the beep ({{name}} variables work). "
                  "Empty: hang up without a message.",
    )
    outbound_greeting_wait_sec = models.FloatField(
        "outbound: wait before greeting (seconds)", default=2.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(10.0)],
        help_text="Outbound calls: the greeting follows the callee's first words, or this many seconds of "
                  "silence after the answer, whichever comes first (0: greet as soon as the call is answered).",
    )
    use_knowledge = models.BooleanField(
        "answer from documents", default=False,
        help_text="Answer questions from the company's knowledge documents linked to this bot (listed below).",
    )

    class AnswerStyle(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic (extractive on the bundled model, generative on bigger ones)"
        EXTRACTIVE = "extractive", "Extractive (the documents' own words)"
        GENERATIVE = "generative", "Generative (the language model's words, every fact checked)"

    answer_style = models.CharField(
        "answer wording", max_length=16, choices=AnswerStyle.choices, default=AnswerStyle.AUTOMATIC,
        help_text="How knowledge answers are worded. Every fact spoken is checked against the documents either way.",
    )
    knowledge_top_k = models.PositiveSmallIntegerField(
        "passages per answer", default=3, validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many passages of the documents an answer may draw on (1-20).",
    )
    knowledge_score_threshold = models.FloatField(
        "minimum passage match",
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="How close (0-1) a passage must be to the question to be used; higher is stricter.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["company__name", "name"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="bot_name_unique_per_company")]

    def __str__(self) -> str:
        return f"{self.name} ({self.company})"

    def clean(self) -> None:
        from voicebot import model_choices  # reads settings and the disk, not the network

        errors = {}
        try:
            self.scenarios = validate_scenarios(self.scenarios)
        except ScenarioError as exc:
            errors["scenarios"] = exc.errors
        for name, check in (("voice", model_choices.check_voice), ("stt_model", model_choices.check_stt)):
            verdict = check(getattr(self, name))
            if verdict.error:
                errors[name] = [verdict.error]
        if errors:
            raise ValidationError(errors)

    @property
    def effective_language(self) -> str:
        return self.language or self.company.default_language


def validate_json_schema_object(value) -> None:
    if not isinstance(value, dict) or value.get("type", "object") != "object":
        raise ValidationError('Parameters must be a JSON schema object, e.g. {"type": "object", "properties": {...}}.')
    if not isinstance(value.get("properties", {}), dict):
        raise ValidationError("'properties' must map parameter names to schemas.")


class BotTool(models.Model):
    """An HTTP action a bot can take (book in the client's calendar, look up an order...).

    Called with the collected fields as a signed JSON POST; its answer can be spoken.
    """

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(
        max_length=64,
        validators=[RegexValidator(r"^[a-z][a-z0-9_]*$", "Lowercase letters, digits and _, e.g. create_booking.")],
    )
    description = models.TextField(help_text="What the tool does, for staff and for LLMs that call tools.")
    parameters = models.JSONField(
        default=dict, blank=True, validators=[validate_json_schema_object],
        help_text='JSON schema of the arguments, e.g. {"type": "object", "properties": {"date": {"type": "string"}}}.',
    )
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128, blank=True, help_text="Signs requests (HMAC-SHA256) like webhooks.")
    requires_confirmation = models.BooleanField(default=False, help_text="The caller must say yes before it runs.")
    speak_response = models.BooleanField(default=True, help_text="Say the tool's 'say' answer to the caller.")
    timeout_sec = models.FloatField(default=5.0, validators=[MinValueValidator(0.5), MaxValueValidator(30.0)])
    active = models.BooleanField(default=True)

    company_path = "bot__company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["bot", "name"]
        constraints = [models.UniqueConstraint(fields=["bot", "name"], name="bot_tool_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.bot.name})"

    def clean(self) -> None:
        """Refuse a URL the guarded client would refuse (voicebot.outbound), on the url field.

        A host that does not resolve yet is accepted: every call checks it again.
        """
        from voicebot.outbound import OutboundRefused, check_url

        super().clean()
        if not self.url:
            return
        try:
            check_url(self.url, unresolved_ok=True)
        except OutboundRefused as exc:
            raise ValidationError({"url": str(exc)}) from None


def new_stream_secret() -> str:
    return secrets.token_urlsafe(24)


class PhoneNumberQuerySet(CompanyScopedQuerySet):
    def routable(self):
        """Numbers that lead to an active bot."""
        return self.filter(active=True, bot__active=True)


class PhoneNumber(CompanyOwned):
    """A number callers dial; it picks the bot that answers."""

    class Provider(models.TextChoices):
        TWILIO = "twilio", "Twilio"
        TELNYX = "telnyx", "Telnyx"
        PLIVO = "plivo", "Plivo"
        EXOTEL = "exotel", "Exotel"
        DAILY = "daily", "Daily (SIP)"
        SIP = "sip", "SIP (PBX or trunk)"
        ASTERISK = "asterisk", "Asterisk stream"

    # A PBX routes extensions and short numbers too; the clouds only E.164.
    LOCAL_PROVIDERS = (Provider.SIP, Provider.ASTERISK)

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="phone_numbers")
    number = models.CharField(
        max_length=20, unique=True, validators=[NUMBER_VALIDATOR],
        help_text="E.164 (+14155550123). SIP and Asterisk numbers may also be a PBX extension (200) or a "
                  "trunk's number without '+' (4930123456), as the PBX sends it in the called number.")
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.TWILIO)
    stream_secret = models.CharField(
        max_length=64, default=new_stream_secret, editable=False,
        help_text="Proves that a media stream is for this number where the provider signs nothing (Exotel: "
                  "part of the stream URL pasted into the Voicebot applet). Regenerate it if it leaks.",
    )
    bot = models.ForeignKey(Bot, on_delete=models.SET_NULL, null=True, blank=True, related_name="phone_numbers")
    label = models.CharField(max_length=120, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PhoneNumberQuerySet.as_manager()

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        if self.bot_id and self.company_id and self.bot.company_id != self.company_id:
            raise ValidationError({"bot": "This bot belongs to another company."})
        if self.number and self.provider not in self.LOCAL_PROVIDERS:
            try:
                E164_VALIDATOR(self.number)
            except ValidationError as exc:
                raise ValidationError({"number": f"A {self.get_provider_display()} number must be E.164. "
                                                 f"{exc.messages[0]}"}) from None


class Call(CompanyOwned):
    """One conversation, written once when it ends (never during the call)."""

    class Transport(models.TextChoices):
        TWILIO = "twilio", "Twilio"
        TELNYX = "telnyx", "Telnyx"
        PLIVO = "plivo", "Plivo"
        EXOTEL = "exotel", "Exotel"
        DAILY = "daily", "Daily (SIP)"
        SIP = "sip", "SIP (PBX or trunk)"
        ASTERISK = "asterisk", "Asterisk stream"
        WEBRTC = "webrtc", "Browser (WebRTC)"
        SIM = "sim", "Simulated"
        CHAT = "chat", "Text chat"

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    class Status(models.TextChoices):
        # An outbound call moves queued -> ringing -> in-progress as its provider reports;
        # every other status is final (``Call.FINAL_STATUSES``).
        QUEUED = "queued", "Queued"
        RINGING = "ringing", "Ringing"
        IN_PROGRESS = "in-progress", "In progress"
        COMPLETED = "completed", "Completed"
        TRANSFERRED = "transferred", "Transferred"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"
        BUSY = "busy", "Busy"
        NO_ANSWER = "no-answer", "No answer"
        CANCELED = "canceled", "Canceled"
        VOICEMAIL = "voicemail", "Voicemail"

    class EndReason(models.TextChoices):
        CALLER_HANGUP = "caller_hangup", "Caller hung up"
        BOT_HANGUP = "bot_hangup", "Bot ended the call"
        GOODBYE = "goodbye", "Goodbye"
        MAX_TURNS = "max_turns", "Turn limit reached"
        SILENCE = "silence", "Caller silent"
        TRANSFER = "transfer", "Transferred"
        UNKNOWN_NUMBER = "unknown_number", "Unknown or inactive number"
        VOICEMAIL = "voicemail", "Reached voicemail"
        NOT_ANSWERED = "not_answered", "Not answered (busy, no answer, failed or canceled)"
        ERROR = "error", "Error"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="calls")
    bot = models.ForeignKey(Bot, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls")
    # Provider values are stored at whatever length the provider sends (SIP URIs, client: names,
    # long call ids): a length limit here would make storing the call fail at hang-up.
    external_id = models.TextField(blank=True, help_text="The provider's call id, e.g. a Twilio CallSid.")
    transport = models.CharField(max_length=16, choices=Transport.choices)
    direction = models.CharField(max_length=16, choices=Direction.choices, default=Direction.INBOUND)
    from_number = models.TextField(blank=True, help_text="The caller's number or address as the provider gave it.")
    to_number = models.TextField(blank=True, help_text="The number or address that was called.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETED)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)
    recording = models.FileField(upload_to="recordings/%Y/%m/", blank=True)
    metrics = models.JSONField(
        default=dict, blank=True, help_text="Latencies measured during the call (ms), per turn and overall."
    )
    collected_fields = models.JSONField(
        default=dict, blank=True, help_text="Values the scenario engine collected (name -> normalised value)."
    )
    scenario = models.CharField(max_length=80, blank=True, help_text="The scenario that was active last.")
    analytics = models.JSONField(default=dict, blank=True, help_text="Computed after the call.")
    variables = models.JSONField(
        default=dict, blank=True,
        help_text="Outbound calls: the values of {{name}}-style variables in the greeting and prompts.",
    )
    answered_at = models.DateTimeField(null=True, blank=True, help_text="Outbound calls: when the callee answered.")
    created_at = models.DateTimeField(auto_now_add=True)

    FINAL_STATUSES = frozenset({
        "completed", "transferred", "rejected", "failed", "busy", "no-answer", "canceled", "voicemail"})

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["transport", "external_id"],
                condition=~models.Q(external_id=""),
                name="call_external_id_unique_per_transport",
            )
        ]
        indexes = [models.Index(fields=["company", "-started_at"])]

    def __str__(self) -> str:
        who = self.from_number or self.get_transport_display()
        return f"Call {self.pk} from {who} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration_sec(self) -> float | None:
        if self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds())


class CallTurn(models.Model):
    """One utterance of a call: what the caller or the bot said, and when."""

    class Role(models.TextChoices):
        CALLER = "caller", "Caller"
        BOT = "bot", "Bot"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    role = models.CharField(max_length=8, choices=Role.choices)
    text = models.TextField(blank=True)
    start_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Offset from the call's start.")
    end_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Bot turns: end of caller speech to first bot audio."
    )
    interrupted = models.BooleanField(default=False, help_text="The caller barged in before it finished.")

    company_path = "call__company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["call", "index"]
        constraints = [models.UniqueConstraint(fields=["call", "index"], name="call_turn_index_unique")]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:60]}"

    @property
    def start_clock(self) -> str:
        """The turn's offset in the call as m:ss, for transcripts."""
        if self.start_ms is None:
            return ""
        seconds = self.start_ms // 1000
        return f"{seconds // 60}:{seconds % 60:02d}"


class ApiKeyQuerySet(CompanyScopedQuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(CompanyOwned):
    """A key for the REST API. Only a hash is stored; the key is shown once.

    A company's key acts for that company only. An agency key (no company, issued by a
    superuser) acts for every company and may create companies: the agency's automation.
    A read-only key may read everything in its scope and change nothing.
    """

    PREFIX = "vb_"

    class Access(models.TextChoices):
        READ_WRITE = "read-write", "Read and write"
        READ = "read", "Read only"

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="api_keys", null=True, blank=True,
        help_text="The company this key acts for. Empty (superusers only): an agency key, for every company.")
    name = models.CharField(max_length=120)
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.READ_WRITE)
    key_prefix = models.CharField(max_length=16, editable=False, db_index=True)
    key_hash = models.CharField(max_length=64, editable=False, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_agency(self) -> bool:
        return self.company_id is None

    @property
    def read_only(self) -> bool:
        return self.access == self.Access.READ

    @staticmethod
    def hash(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @classmethod
    def issue(cls, company: Company | None, name: str, *, access: str = Access.READ_WRITE) -> tuple["ApiKey", str]:
        """Create a key (``company=None``: an agency key); return it with the raw secret, never stored."""
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(company=company, name=name, access=access, key_prefix=raw[:10],
                                 key_hash=cls.hash(raw))
        return key, raw

    @classmethod
    def authenticate(cls, raw_key: str) -> "ApiKey | None":
        key = cls.objects.active().select_related("company").filter(key_hash=cls.hash(raw_key)).first()
        if key is not None:
            cls.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        return key
