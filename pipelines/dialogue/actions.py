"""Actions: on_complete events and per-bot HTTP tools, signed like webhooks.

A tool is called with a JSON body (the collected fields, or the LLM's
arguments) as a POST to its URL, with these headers:

- ``X-Voicebot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``
- ``X-Voicebot-Event``: the event (``booking_created``) or ``tool.<name>``
- ``X-Voicebot-Delivery``: a unique id per attempt, for the receiver's idempotency

A scenario's ``on_complete`` event goes to the bot's tool of the same name.
The receiver may answer JSON with ``say``: the bot speaks it (if the tool's
``speak_response`` is on).

Requests go through ``voicebot.outbound`` (the guarded client webhooks use too):
the URL is checked and its host resolved at call time, so a tool whose name now
points at loopback, a private network (unless allowed) or a link-local/metadata
address is refused and nothing is sent. Otherwise no Django here (imports flow
pipelines -> voicebot).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Sequence

import httpx

from pipelines.frozen import thaw
from voicebot import outbound, signing

logger = logging.getLogger(__name__)

BUILTIN_TOOLS = ("end_call", "transfer_call")


@dataclass
class ActionResult:
    tool: str
    event: str
    ok: bool
    status: int | None = None
    say: str = ""
    data: Any = None
    error: str = ""
    delivery_id: str = ""
    duration_ms: int = 0


@dataclass
class ActionLog:
    """What this conversation's actions did, in order (kept in the call's metrics)."""

    results: list[ActionResult] = field(default_factory=list)

    def as_list(self) -> list[dict]:
        return [
            {"tool": r.tool, "event": r.event, "ok": r.ok, "status": r.status, "error": r.error,
             "delivery": r.delivery_id, "ms": r.duration_ms}
            for r in self.results
        ]

    @classmethod
    def from_list(cls, items: list[dict]) -> "ActionLog":
        """The log back from ``as_list()`` (a conversation kept between requests)."""
        return cls([ActionResult(tool=a["tool"], event=a["event"], ok=a["ok"], status=a["status"], error=a["error"],
                                 delivery_id=a["delivery"], duration_ms=a["ms"]) for a in items])


class ActionRunner:
    """Calls a bot's tools (``ToolConfig``-like objects: name, url, secret, timeout_sec...)."""

    def __init__(self, tools: Sequence[Any] = (), *, client: outbound.GuardedClient | None = None):
        self.tools = {t.name: t for t in tools}
        self.client = client or outbound.client("voicebot-actions/1")
        self.log = ActionLog()

    def tool(self, name: str):
        return self.tools.get(name)

    def fire_event(self, event: str, payload: dict, *, context: dict | None = None) -> ActionResult | None:
        """Deliver an on_complete event to the tool of the same name; None if the bot has none."""
        tool = self.tools.get(event)
        if tool is None:
            return None
        return self._post(tool, event, {"event": event, "fields": payload, **(context or {})})

    def call_tool(self, name: str, arguments: dict, *, context: dict | None = None) -> ActionResult:
        tool = self.tools.get(name)
        if tool is None:
            return ActionResult(tool=name, event=f"tool.{name}", ok=False, error=f"no tool named {name!r}")
        return self._post(tool, f"tool.{name}", {"tool": name, "arguments": arguments, **(context or {})})

    def _post(self, tool, event: str, payload: dict) -> ActionResult:
        body = signing.body_bytes(payload)
        delivery = uuid.uuid4().hex
        headers = signing.headers(tool.secret, body, event, delivery)
        started = time.monotonic()
        result = ActionResult(tool=tool.name, event=event, ok=False, delivery_id=delivery)
        try:
            response = self.client.post(tool.url, content=body, headers=headers, timeout=tool.timeout_sec)
        except (outbound.OutboundRefused, httpx.HTTPError) as exc:
            result.error = outbound.describe_error(exc)
        else:
            _read_reply(result, response, speak=tool.speak_response)
        result.duration_ms = int((time.monotonic() - started) * 1000)
        if not result.ok:
            logger.warning("action %s (%s) failed: %s", tool.name, event, result.error)
        self.log.results.append(result)
        return result

    def openai_tools(self, *, transfer_enabled: bool) -> list[dict]:
        """The tools in the OpenAI function-calling shape, built-ins included."""
        specs = [
            {"type": "function", "function": {
                "name": t.name, "description": t.description,
                "parameters": thaw(t.parameters) or {"type": "object", "properties": {}}}}
            for t in self.tools.values()
        ]
        specs.append({"type": "function", "function": {
            "name": "end_call", "description": "End the conversation politely when the caller is done.",
            "parameters": {"type": "object", "properties": {}}}})
        if transfer_enabled:
            specs.append({"type": "function", "function": {
                "name": "transfer_call", "description": "Transfer the caller to a human colleague.",
                "parameters": {"type": "object", "properties": {}}}})
        return specs


def _read_reply(result: ActionResult, response: outbound.OutboundResponse, *, speak: bool) -> None:
    """Status, error excerpt and the JSON answer (its ``say``) into ``result``."""
    result.status, result.ok, result.error = response.status, response.ok, response.error()
    if "json" not in response.headers.get("content-type", ""):
        return
    try:
        result.data = response.json()
    except ValueError as exc:
        result.error = result.error or outbound.describe_error(exc)
        return
    if isinstance(result.data, dict) and isinstance(result.data.get("say"), str):
        result.say = result.data["say"].strip() if speak else ""
