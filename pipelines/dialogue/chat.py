"""Text chat with a bot: the same engine, knowledge, LLM and config as a call, without audio.

    session = ChatSession.for_bot("elegant-receptionist")
    session.start().reply            # the greeting
    turn = session.send("I'd like to book")
    turn.reply, turn.state           # "Sure. Which service would you like?", {"scenario": "booking", ...}
    session.end()                    # stored like a call, transport "chat"

A session's state is JSON (``snapshot``/``from_snapshot``), so the admin page
keeps it in the Django session between requests.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from django.conf import settings

from pipelines.call_store import CallRecord, TurnRecord, save_call_record
from pipelines.config import BotConfig
from pipelines.dialogue.actions import ActionLog, ActionRunner
from pipelines.dialogue.engine import DialogueEngine, Reply
from pipelines.dialogue.keys import entry_of
from pipelines.dialogue.llm import ChatLLM
from pipelines.dialogue.prompt import reply_tokens, system_instruction
from pipelines.dialogue.reply_guard import ReplyGuard, grounding_metrics
from voicebot.llm_client import LLMUnavailable

logger = logging.getLogger(__name__)
KEYS_RE = re.compile(r"^[0-9*#]*#$")  # a message typed as keypad keys, "0301234567#": a call's DTMF entry


@dataclass
class ChatTurn:
    reply: str
    state: dict
    kind: str = "script"
    ended: bool = False
    latency_ms: int = 0
    # What the reply was based on: ``scenario`` ({name, how, score}), ``field`` (asked next),
    # ``passages`` ([{text, score, document, document_id}]), ``fallback`` (why), ``llm``, ``grounding``.
    why: dict = field(default_factory=dict)


@dataclass
class _Turn:
    role: str
    text: str
    at_ms: int
    latency_ms: int | None = None
    kind: str = ""


def default_llm(config: BotConfig) -> ChatLLM:
    """The call's prompt and reply budget (``prompt.py``), so a chat predicts what a call says."""
    from voicebot import llm_endpoint

    return ChatLLM(llm_endpoint.base_url(), config.llm_model or llm_endpoint.default_model(),
                   system_prompt=system_instruction(config), temperature=config.temperature,
                   max_tokens=reply_tokens(config), timeout=settings.LLM_TIMEOUT_SEC)


def stored_explanation(why: dict) -> dict:
    """A reply's explanation as the stored call keeps it: passages' texts bounded (metrics stay small)."""
    out = dict(why)
    if isinstance(out.get("passages"), list):
        out["passages"] = [_stored_passage(p) for p in out["passages"][:5]]
    return out


def _stored_passage(passage) -> dict | str:
    if not isinstance(passage, dict):
        return str(passage)[:600]
    score = passage.get("score")
    return {**passage, "text": str(passage.get("text", ""))[:600],
            "score": float(score) if isinstance(score, (int, float)) or hasattr(score, "item") else None}


class ChatSession:
    def __init__(self, config: BotConfig, *, embed=None, retrieve=None, llm: ChatLLM | None = None,
                 actions: ActionRunner | None = None, clock=None, use_default_models: bool = True):
        if use_default_models:
            from pipelines.dialogue.embedder import default_embedder
            from pipelines.dialogue.knowledge import default_retriever

            embed = embed if embed is not None else default_embedder()
            retrieve = retrieve if retrieve is not None else default_retriever(config)
        self.config = config
        self.engine = DialogueEngine(config, embed=embed, retrieve=retrieve, actions=actions, clock=clock)
        self.llm = llm if llm is not None else default_llm(config)
        self.turns: list[_Turn] = []
        self.started_at = datetime.now(timezone.utc)
        self.external_id = f"chat-{uuid.uuid4().hex}"
        self.llm_turns = 0
        self.grounding: list[dict] = []  # each LLM reply's fact check (ReplyGuard.metrics)
        self.stored_call_id: int | None = None
        self.explanations: dict[int, dict] = {}  # a bot turn's index in ``turns``: what its reply was based on

    @classmethod
    def for_bot(cls, slug: str, **kwargs) -> "ChatSession":
        return cls(BotConfig.for_slug(slug), **kwargs)

    # --- conversation --------------------------------------------------------------

    def _elapsed_ms(self) -> int:
        return int((datetime.now(timezone.utc) - self.started_at).total_seconds() * 1000)

    def start(self) -> ChatTurn:
        reply = self.engine.start()
        if reply.text:
            self.turns.append(_Turn("bot", reply.text, self._elapsed_ms(), kind="greeting"))
        return ChatTurn(reply.text, self.engine.state(), kind="greeting")

    def send(self, text: str) -> ChatTurn:
        if self.engine.ended:
            return ChatTurn("", self.engine.state(), kind="end", ended=True)
        started = time.monotonic()
        if not any(t.role == "caller" for t in self.turns):  # the chat starts with the first message
            self.started_at = datetime.now(timezone.utc)
            for turn in self.turns:
                turn.at_ms = 0
        history = [(t.role, t.text) for t in self.turns]
        self.turns.append(_Turn("caller", text, self._elapsed_ms()))
        reply = self.engine.handle_keys(entry_of(text)) if KEYS_RE.match(text.strip()) else None
        if reply is None or reply.kind == "ignored":  # keys that do nothing here are read as text
            reply = self.engine.handle(text)
        why = self.engine.explain()
        if reply.use_llm:
            reply = self._ask_llm(history, text, reply, why)
        latency = int((time.monotonic() - started) * 1000)
        state = self.engine.state()
        if state.get("field"):
            why["field"] = state["field"]
        self.explanations[len(self.turns)] = why
        self.turns.append(_Turn("bot", reply.text, self._elapsed_ms(), latency_ms=latency, kind=reply.kind))
        return ChatTurn(reply.text, state, kind=reply.kind, ended=reply.end_call, latency_ms=latency, why=why)

    def _ask_llm(self, history, text: str, reply: Reply, why: dict | None = None) -> Reply:
        why = why if why is not None else {}
        tools = self.engine.actions.openai_tools(transfer_enabled=bool(self.config.transfer_number))
        self.llm_turns += 1
        why["llm"] = {"model": getattr(self.llm, "model", ""), "passages_given": len(reply.passages)}
        try:
            answer = self.llm.answer(history, text, reply.passages, tools=tools)
        except LLMUnavailable as exc:
            logger.warning("LLM unavailable for chat with %s: %s", self.config.slug, exc)
            why["fallback"] = f"the language model is unavailable ({exc})"
            return Reply(f"{self.config.fallback_phrase} {reply.then_say}".strip(), kind="fallback")
        if answer.tool_calls:
            name, arguments = answer.tool_calls[0]
            why["llm"]["tool"] = name
            return self.engine.run_tool(name, arguments)
        if not answer.text:
            why["fallback"] = "the language model returned no text"
            return Reply(f"{self.config.fallback_phrase} {reply.then_say}".strip(), kind="fallback")
        guard = ReplyGuard(self.config, question=text, passages=list(reply.documents or reply.passages),
                           caller_words=[t.text for t in self.turns if t.role == "caller"],
                           embed=self.engine.matcher.embed, evidence=reply.evidence)
        said = guard.check_reply(answer.text) or guard.replacement()
        self.grounding.append(guard.metrics())
        if guard.replaced:  # a sentence stated what the passages, the config and the caller do not hold
            why["grounding"] = list(guard.replaced)
            why.setdefault("fallback", "grounding replaced a sentence whose facts were not in the sources: "
                                       + "; ".join(f for r in guard.replaced for f in r["facts"]))
        return Reply(f"{said} {reply.then_say}".strip(), kind=reply.kind)

    @property
    def transcript(self) -> list[dict]:
        return [{"role": t.role, "text": t.text, "kind": t.kind, "latency_ms": t.latency_ms,
                 "why": self.explanations.get(i, {})} for i, t in enumerate(self.turns)]

    # --- storing --------------------------------------------------------------------

    def record(self, end_reason: str = "") -> CallRecord:
        scenario, fields = self.engine.record_fields()
        reason = end_reason or self.engine.end_reason or "caller_hangup"
        status = "transferred" if reason == "transfer" else "completed"
        latencies = sorted(t.latency_ms for t in self.turns if t.latency_ms is not None)
        metrics = {"scenario_engine": self.engine.summary(), "llm_turns": self.llm_turns,
                   "grounding": grounding_metrics(self.grounding)}
        if latencies:
            metrics["reply_ms_median"] = latencies[len(latencies) // 2]
        if self.explanations:  # what each reply was based on, by its turn's index: the call page shows it
            metrics["explanations"] = {str(i): stored_explanation(why) for i, why in self.explanations.items() if why}
        return CallRecord(
            company_id=self.config.company_id, bot_id=self.config.bot_id, transport="chat",
            started_at=self.started_at, ended_at=datetime.now(timezone.utc), end_reason=reason,
            external_id=self.external_id, status=status,
            turns=[TurnRecord(role=t.role, text=t.text, start_ms=t.at_ms, end_ms=t.at_ms, latency_ms=t.latency_ms)
                   for t in self.turns],
            metrics=metrics, collected_fields=fields, scenario=scenario,
        )

    def end(self, end_reason: str = ""):
        """Store the chat like a call (transport ``chat``); idempotent. Returns the Call."""
        call = save_call_record(self.record(end_reason))
        self.stored_call_id = getattr(call, "pk", None)
        return call

    # --- keeping a session between requests -------------------------------------------

    def snapshot(self) -> dict:
        return {
            "bot_id": self.config.bot_id, "external_id": self.external_id,
            "started_at": self.started_at.isoformat(), "llm_turns": self.llm_turns,
            "turns": [[t.role, t.text, t.at_ms, t.latency_ms, t.kind] for t in self.turns],
            "engine": self.engine.snapshot(), "stored_call_id": self.stored_call_id,
            # What earlier LLM replies were checked against, and what the tools did: the stored
            # call's metrics need them however many requests the conversation took.
            "grounding": self.grounding, "actions": self.engine.actions.log.as_list(),
            # What each bot reply was based on, by its index in "turns" (kept beside them: the turns'
            # five-item rows are read by the REST chat as they are).
            "explanations": {str(i): why for i, why in self.explanations.items()},
        }

    @classmethod
    def from_snapshot(cls, config: BotConfig, data: dict, **kwargs) -> "ChatSession":
        session = cls(config, **kwargs)
        session.external_id = data["external_id"]
        session.started_at = datetime.fromisoformat(data["started_at"])
        session.llm_turns = data.get("llm_turns", 0)
        session.turns = [_Turn(*t) for t in data["turns"]]
        session.engine.restore(data["engine"])
        session.stored_call_id = data.get("stored_call_id")
        session.grounding = list(data.get("grounding", []))
        session.engine.actions.log = ActionLog.from_list(data.get("actions", []))
        session.explanations = {int(i): why for i, why in (data.get("explanations") or {}).items()}
        return session
