"""Call summaries (and extra fields) from the LLM, with a deterministic fallback.

The LLM is the platform's OpenAI-compatible ``/v1`` server. Small local models
follow instructions loosely and invent details, so: a short prompt, bounded
``max_tokens``, a timeout, a junk check on the answer, and a summary built
from the transcript whenever the LLM is down or its answer is not usable.
Fields the LLM proposes are kept only when the caller actually said them.

A summary is grounded like a spoken reply (``grounding_problem``): one that only
echoes the bot's own lines (the greeting), names what the call does not contain
(a number, a day, a product nobody said) or repeats itself is not kept; the
factual summary built from the transcript and the scenario's fields is stored
instead, with its source ``fallback``.
"""

from __future__ import annotations

import difflib
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


# --- grounding a summary ---------------------------------------------------------------------

# Words a summary may use that no call needs to contain: how calls are described, not what was in one.
SUMMARY_WORDS = set(
    "about above after again agent agreed also answer answered answers any appointment ask asked asking asks "
    "assistant available bot briefly business call called caller calling calls client confirm confirmed "
    "conversation customer details did discussed does enquired ended explained further gave given had has help "
    "helped his her information inquired inquiring interested know like may mentioned more need needed needs "
    "noted offered person phone provided question questions receptionist regarding replied request requested "
    "requesting requests responded said says service services some speak spoke summary team thanked their them "
    "then they told wanted wanting wants was were when where which who will wished wishes "
    # topics a summary names in its own words (not facts: those are numbers, days, names, products)
    "availability book booked booking cost costs date enquiry fee inquiry number price prices pricing "
    "reservation reserve reserved schedule scheduled scheduling time visit".split())
NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
                "fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
                "hundred": "100",
                "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5"}
DAYS_MONTHS = set("monday tuesday wednesday thursday friday saturday sunday weekend weekends today tomorrow "
                  "yesterday tonight morning afternoon evening noon midnight january february march april june "
                  "july august september october november december".split())
PERSON_RE = re.compile(r"\b(i|i'm|i've|i'll|me|my|we|we're|we've|our|us|you|you're|you'll|your|yours)\b",
                       re.IGNORECASE)
WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def stem(word: str) -> str:
    word = word.lower().removesuffix("'s")
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words_of(text: str) -> list[str]:
    """Lowercase words, number words as digits ("nine" -> "9", "thirty-five" -> "35", "3-day" -> "3", "day")."""
    out: list[str] = []
    for word in WORD_RE.findall(text.lower()):
        value = NUMBER_WORDS.get(word, word)
        if (value.isdigit() and len(value) == 1 and out and out[-1] in ("20", "30", "40", "50")
                and word in NUMBER_WORDS):
            out[-1] = str(int(out[-1]) + int(value))
            continue
        out.append(value)
    return out


def sentences_of(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def _same_word(word: str, known: set[str]) -> bool:
    if word in known or stem(word) in known:
        return True
    root = stem(word)
    return len(root) >= 4 and any(len(k) >= 4 and (k.startswith(root) or root.startswith(k)) for k in known)


def grounding_problem(text: str, turns: list[CallTurn], fields: dict | None = None,
                      known: list[str] | None = None) -> str | None:
    """Why ``text`` is not a summary to keep, or None when it is grounded in the call.

    - it echoes the bot: a sentence (nearly) one of the bot's own lines, or in the bot's voice
      ("I", "you", "we"), or nothing in it beyond the greeting;
    - it names what the call does not contain: every number, day, month, time and name must be in
      the transcript, the collected fields or ``known`` (bot and company names), and so must every
      other content word (a product, a service, a place) unless it is one of the words summaries
      are written in (``SUMMARY_WORDS``: "caller", "asked", "pricing", "scheduled", ...);
    - it repeats itself: the same sentence twice, or a run of words said again.
    """
    bot_lines = [t.text for t in turns if t.role == CallTurn.Role.BOT and t.text.strip()]
    said = [t.text for t in turns if t.text]
    values = [f"{name} {item.get('value', '') if isinstance(item, dict) else item}"
              for name, item in (fields or {}).items()]
    source_words = {w for text_ in [*said, *values, *(known or [])] for w in words_of(text_)}
    source_words |= {stem(w) for w in source_words}
    sentences = sentences_of(text)
    # Echo: said back, not summarised.
    quoted = re.sub(r'"[^"]*"', " ", text)
    if PERSON_RE.search(quoted):
        return "written in the bot's voice (I, you, we): an echo of the call, not a summary"
    for sentence in sentences:
        mine = words_of(sentence)
        for line in bot_lines:
            if len(mine) >= 3 and difflib.SequenceMatcher(None, mine, words_of(line)).ratio() >= 0.7:
                return f"echoes the bot's line {line[:80]!r}"
    content = [w for w in words_of(text) if w not in STOPWORDS and w not in SUMMARY_WORDS
               and stem(w) not in SUMMARY_WORDS and (len(w) > 1 or w.isdigit())]
    if bot_lines and content:
        greeting = {w for w in words_of(bot_lines[0])} | {stem(w) for w in words_of(bot_lines[0])}
        caller = {w for t in turns if t.role == CallTurn.Role.CALLER for w in words_of(t.text)}
        if all(_same_word(w, greeting) for w in content) and not any(w in caller for w in content):
            return "says nothing beyond the greeting"
    # Invented: facts the call does not contain.
    capitalised = {w.lower() for sentence in sentences for w in re.findall(r"[A-Za-z]+", sentence)[1:]
                   if w[0].isupper()}  # names: capitalised past a sentence's first word
    missing_facts, missing_words = [], []
    for word in dict.fromkeys(content):
        if _same_word(word, source_words):
            continue
        if any(ch.isdigit() for ch in word) or word in DAYS_MONTHS or word in capitalised:
            missing_facts.append(word)
        else:
            missing_words.append(word)
    if missing_facts:
        return "names what the call does not contain: " + ", ".join(missing_facts)
    if missing_words:  # a product, a service, a place nobody mentioned: invented
        return "names what the call does not contain: " + ", ".join(missing_words)
    # Repeats itself.
    normalised = [" ".join(words_of(s)) for s in sentences]
    for i, first in enumerate(normalised):
        for second in normalised[i + 1:]:
            if first and difflib.SequenceMatcher(None, first, second).ratio() >= 0.85:
                return "repeats itself"
    all_words = words_of(text)
    runs = [tuple(all_words[i:i + 4]) for i in range(len(all_words) - 3)]
    if len(runs) != len(set(runs)):
        return "repeats itself"
    return None


def summarize(turns: list[CallTurn], intent: str, fields: dict, duration_sec: float | None,
              known: list[str] | None = None) -> tuple[str, str]:
    """``(summary, source)``: the LLM's when usable and grounded in the call, else the fallback.

    ``known``: other words a summary may name (the bot's and the company's names).
    """
    transcript = transcript_text(turns)
    if transcript and any(t.role == CallTurn.Role.CALLER and t.text.strip() for t in turns):
        try:
            answer = chat([{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": transcript}],
                          max_tokens=settings.POSTCALL_SUMMARY_MAX_TOKENS)
            summary = clean_summary(answer, transcript)
            problem = grounding_problem(summary, turns, fields, known) if summary else "junk"
            if not problem:
                return summary, Source.LLM
            log.info("LLM summary not kept (%s): %r", problem, answer[:200])
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
