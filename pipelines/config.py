"""BotConfig: the immutable snapshot of a bot that a call (or chat) runs on.

Read once, in one query, when the call starts; nothing on the hot path goes
back to the database. Admin edits made during a call apply to the next call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from pipelines import variables as call_variables
from pipelines.frozen import freeze
from voicebot.models import Bot, Call, PhoneNumber


class BotNotFound(LookupError):
    """No active bot answers here; the message says what was looked up."""


@dataclass(frozen=True)
class ToolConfig:
    name: str
    description: str
    parameters: Any
    url: str
    secret: str
    requires_confirmation: bool
    speak_response: bool
    timeout_sec: float


@dataclass(frozen=True)
class BotConfig:
    bot_id: int
    company_id: int
    slug: str
    name: str
    company_name: str
    company_timezone: str
    company_country: str
    language: str
    greeting: str
    system_prompt: str
    voice: str
    stt_model: str
    llm_model: str
    temperature: float
    max_tokens: int
    scenarios: tuple = ()
    fallback_phrase: str = ""
    max_turns: int = 20
    silence_timeout_sec: float = 10.0
    transfer_number: str = ""
    use_knowledge: bool = False
    knowledge_top_k: int = 3
    knowledge_score_threshold: float = 0.3
    answer_style: str = "automatic"  # automatic, extractive, generative (Bot.AnswerStyle)
    tools: tuple[ToolConfig, ...] = field(default=())
    company_max_lines: int = 0  # 0: only the runner's limit (admission gate)
    # The number the call came in on, when it was looked up by number (entry points check the provider).
    number: str = ""
    number_provider: str = ""
    voicemail_message: str = ""
    outbound_greeting_wait_sec: float = 2.0
    # An outbound call: the placed Call's id, and its {{name}} values (already filled into the texts).
    outbound_call_id: int | None = None
    variables: Any = field(default_factory=lambda: freeze({}))

    @property
    def outbound(self) -> bool:
        return self.outbound_call_id is not None

    @classmethod
    def from_bot(cls, bot: Bot, *, variables: dict[str, str] | None = None) -> "BotConfig":
        """``variables``: {{name}} values filled into the greeting, prompts and scenarios."""
        company = bot.company
        values = {str(k): str(v) for k, v in (variables or {}).items()}

        def fill(text: str) -> str:
            return call_variables.fill(text, values)

        tools = tuple(
            ToolConfig(
                name=t.name, description=t.description, parameters=freeze(t.parameters), url=t.url,
                secret=t.secret, requires_confirmation=t.requires_confirmation,
                speak_response=t.speak_response, timeout_sec=t.timeout_sec,
            )
            for t in bot.tools.all()
            if t.active
        )
        return cls(
            bot_id=bot.pk,
            company_id=company.pk,
            slug=bot.slug,
            name=bot.name,
            company_name=company.name,
            company_timezone=company.timezone,
            company_country=company.country or settings.DEFAULT_COUNTRY,
            language=bot.language or company.default_language,
            greeting=fill(bot.greeting),
            system_prompt=fill(bot.system_prompt),
            voice=bot.voice,
            stt_model=bot.stt_model,
            llm_model=bot.llm_model,
            temperature=bot.temperature,
            max_tokens=bot.max_tokens,
            scenarios=freeze(call_variables.fill_all(bot.scenarios or [], values)),
            fallback_phrase=bot.fallback_phrase,
            max_turns=bot.max_turns,
            silence_timeout_sec=bot.silence_timeout_sec,
            transfer_number=bot.transfer_number,
            use_knowledge=bot.use_knowledge,
            knowledge_top_k=bot.knowledge_top_k,
            knowledge_score_threshold=bot.knowledge_score_threshold,
            answer_style=bot.answer_style,
            tools=tools,
            company_max_lines=company.max_lines,
            voicemail_message=fill(values.get("voicemail_message") or bot.voicemail_message),
            outbound_greeting_wait_sec=bot.outbound_greeting_wait_sec,
            variables=freeze(values),
        )

    @staticmethod
    def _bots():
        return Bot.objects.select_related("company").prefetch_related("tools")

    @classmethod
    def for_slug(cls, slug: str) -> "BotConfig":
        bot = cls._bots().filter(slug=slug, active=True).first()
        if bot is None:
            raise BotNotFound(f"no active bot with slug {slug!r}")
        return cls.from_bot(bot)

    @classmethod
    def for_outbound_call(cls, call_id: int) -> "BotConfig":
        """The bot of an outbound call placed earlier (still waiting for its conversation), with its variables."""
        call = (Call.objects.select_related("bot__company").prefetch_related("bot__tools")
                .filter(pk=call_id, direction=Call.Direction.OUTBOUND).first())
        if call is None or call.bot is None or not call.bot.active:
            raise BotNotFound(f"no outbound call {call_id} with an active bot")
        if call.end_reason:
            raise BotNotFound(f"outbound call {call_id} has already ended ({call.status})")
        config = cls.from_bot(call.bot, variables=call.variables)
        return dataclasses.replace(config, outbound_call_id=call.pk, number=call.from_number,
                                   number_provider=call.transport)

    @classmethod
    def for_number(cls, number: str) -> "BotConfig":
        """The bot behind a dialled number (E.164), if the number and its bot are active."""
        phone = (
            PhoneNumber.objects.routable()
            .select_related("bot__company")
            .prefetch_related("bot__tools")
            .filter(number=number)
            .first()
        )
        if phone is None:
            raise BotNotFound(f"no active bot answers {number!r}")
        return dataclasses.replace(cls.from_bot(phone.bot), number=phone.number, number_provider=phone.provider)

    @classmethod
    def for_stream_secret(cls, provider: str, secret: str) -> "BotConfig":
        """The bot behind the number whose stream secret this is (providers that sign nothing: Exotel)."""
        phone = (
            PhoneNumber.objects.routable()
            .select_related("bot__company")
            .prefetch_related("bot__tools")
            .filter(provider=provider, stream_secret=secret)
            .first()
        ) if secret else None
        if phone is None:
            raise BotNotFound(f"no active {provider} number has this stream secret")
        return dataclasses.replace(cls.from_bot(phone.bot), number=phone.number, number_provider=phone.provider)
