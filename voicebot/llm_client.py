"""The one client for request-response LLM calls: text chat, post-call summaries and fields.

Every request goes to the same OpenAI-compatible ``/v1`` endpoint and model as
the calls (``voicebot.llm_endpoint``), with a time limit. Calls stream through
Pipecat's OpenAI-compatible service on that same endpoint
(``pipelines.live.services.FallbackLLMService``), with the same prompt builder
(``pipelines.dialogue.prompt``), so a chat predicts what a call says.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import httpx

from voicebot import llm_endpoint


class LLMUnavailable(RuntimeError):
    """The LLM did not answer usefully (down, hung, an error or an unreadable reply); the message says how."""


@dataclass
class Completion:
    text: str = ""
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def http_client() -> httpx.Client:
    """One pooled client per process (building one per request costs tens of ms)."""
    return httpx.Client()


def complete(messages: list[dict], *, model: str = "", max_tokens: int, temperature: float = 0.3,
             timeout: float = 30.0, tools: list[dict] | None = None, base_url: str = "",
             client: httpx.Client | None = None) -> Completion:
    """One chat completion; raises ``LLMUnavailable`` on any transport, status or format problem."""
    url = (base_url or llm_endpoint.base_url()).rstrip("/") + "/chat/completions"
    body = {"model": model or llm_endpoint.default_model(), "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature, "stream": False}
    if tools:
        body["tools"] = tools
    try:
        response = (client or http_client()).post(url, json=body, timeout=timeout)
        response.raise_for_status()
        message = response.json()["choices"][0]["message"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMUnavailable(f"{type(exc).__name__}: {exc}") from exc
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        calls.append((function.get("name", ""), arguments if isinstance(arguments, dict) else {}))
    return Completion(text=(message.get("content") or "").strip(), tool_calls=calls)
