"""Call summaries (and extra fields) from the LLM, with a deterministic fallback.

The LLM is the platform's OpenAI-compatible ``/v1`` server. Small local models
follow instructions loosely and invent details, so: a short prompt, bounded
``max_tokens``, a timeout, a junk check on the answer, and a summary built
from the transcript whenever the LLM is down or its answer is not usable.
Fields the LLM proposes are kept only when the caller actually said them.
"""

from __future__ import annotations

import json
import logging
import re

from django.conf import settings

from postcall.models import Source
from voicebot import llm_client
from voicebot.llm_client import LLMUnavailable
from voicebot.models import CallTurn

log = logging.getLogger(__name__)

SUMMARY_PROMPT = (
    "Summarize this phone call in two short sentences: what the caller wanted and what was agreed. "
    "Use only facts from the call."
)
STOPWORDS = set("a an and are at be but by can do for from have hello hi i in is it me my of on or please so that "
                "the this to uh um want was we what with would yes you your".split())
REFUSALS = ("as an ai", "i'm sorry", "i am sorry", "i cannot", "i can't", "summary:", "<|", "assistant")


def transcript_text(turns: list[CallTurn], limit_chars: int = 3000) -> str:
    lines = [f"{'Caller' if t.role == CallTurn.Role.CALLER else 'Agent'}: {t.text.strip()}" for t in turns if t.text]
    text = "\n".join(lines)
    return text if len(text) <= limit_chars else text[-limit_chars:]  # the end holds what was agreed


def chat(messages: list[dict], max_tokens: int) -> str:
    """One chat completion through the platform's one LLM client; raises LLMUnavailable."""
    return llm_client.complete(messages, max_tokens=max_tokens, temperature=0.2,
                               timeout=settings.POSTCALL_LLM_TIMEOUT_SEC).text


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in STOPWORDS and len(w) > 2}


def clean_summary(answer: str, transcript: str) -> str | None:
    """The answer as a summary, or None when it is junk (empty, a refusal, unrelated, runaway)."""
    text = re.sub(r"\s+", " ", answer).strip().strip('"')
    text = re.sub(r"^(summary|here is a summary[^:]*)\s*:\s*", "", text, flags=re.IGNORECASE)
    if len(text) < 20 or any(marker in text.lower()[:40] for marker in REFUSALS):
        return None
    if re.search(r"\b(caller|agent|user|assistant)\s*:", text, re.IGNORECASE):
        return None  # the transcript echoed back, not a summary
    if not content_words(text) & content_words(transcript):
        return None  # shares nothing with the call: invented
    if len(text) > settings.POSTCALL_SUMMARY_MAX_CHARS:
        cut = text[: settings.POSTCALL_SUMMARY_MAX_CHARS]
        text = cut[: cut.rfind(". ") + 1] if ". " in cut else cut.rstrip() + "…"
    return text


def fallback_summary(turns: list[CallTurn], intent: str, fields: dict, duration_sec: float | None) -> str:
    """A factual summary built from the transcript and the extracted outcome."""
    caller = [t.text.strip() for t in turns if t.role == CallTurn.Role.CALLER and t.text.strip()]
    if not caller:
        return "The caller did not say anything."
    first = caller[0] if len(caller[0]) <= 160 else caller[0][:157] + "…"
    parts = [f'The caller said: "{first}".']
    if intent and intent != "other":
        parts.append(f"Intent: {intent}.")
    if fields:
        listed = ", ".join(f"{name} {item['value']}" for name, item in fields.items())
        parts.append(f"Collected: {listed}.")
    minutes = f"{int(duration_sec // 60)}:{int(duration_sec % 60):02d}" if duration_sec is not None else None
    parts.append(f"{len(caller)} caller turn{'s' if len(caller) != 1 else ''}" + (f", {minutes} long." if minutes
                                                                                   else "."))
    return " ".join(parts)


def summarize(turns: list[CallTurn], intent: str, fields: dict, duration_sec: float | None) -> tuple[str, str]:
    """``(summary, source)``: the LLM's when usable, else the fallback."""
    transcript = transcript_text(turns)
    if transcript and any(t.role == CallTurn.Role.CALLER and t.text.strip() for t in turns):
        try:
            answer = chat([{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": transcript}],
                          max_tokens=settings.POSTCALL_SUMMARY_MAX_TOKENS)
            summary = clean_summary(answer, transcript)
            if summary:
                return summary, Source.LLM
            log.info("LLM summary rejected as junk: %r", answer[:200])
        except LLMUnavailable as exc:
            log.warning("LLM unavailable for the summary, using the fallback: %s", exc)
    return fallback_summary(turns, intent, fields, duration_sec), Source.FALLBACK


def grounded(value: str, caller_text: str) -> bool:
    """Whether the caller actually said ``value`` (words, or digits for numbers)."""
    value = value.strip().lower()
    if not value:
        return False
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 4 and digits == re.sub(r"[^\d]", "", value.replace(" ", "")):
        return digits in re.sub(r"\D", "", caller_text)
    return value in caller_text.lower()


def llm_fields(turns: list[CallTurn], wanted: list[dict]) -> dict[str, str]:
    """Values for ``wanted`` fields proposed by the LLM, kept only when grounded in the caller's words."""
    said = "\n".join(t.text for t in turns if t.role == CallTurn.Role.CALLER and t.text)
    if not wanted or not said.strip() or not settings.POSTCALL_LLM_FIELDS:
        return {}
    names = [f["name"] for f in wanted]
    prompt = ("Read what the caller said. Reply with only a JSON object with these keys: "
              + ", ".join(names) + ". Use null when the caller did not say it.")
    try:
        answer = chat([{"role": "system", "content": prompt}, {"role": "user", "content": said[-1500:]}],
                      max_tokens=settings.POSTCALL_FIELDS_MAX_TOKENS)
    except LLMUnavailable as exc:
        log.warning("LLM unavailable for field extraction: %s", exc)
        return {}
    match = re.search(r"\{.*?\}", answer, re.DOTALL)
    try:
        proposed = json.loads(match.group(0)) if match else {}
    except ValueError:
        return {}
    if not isinstance(proposed, dict):
        return {}
    return {name: str(value).strip() for name, value in proposed.items()
            if name in names and isinstance(value, (str, int)) and grounded(str(value), said)}
