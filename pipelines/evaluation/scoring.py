"""Scoring replies: stated facts, honest don't-knows, invented facts, bookings, latency.

Facts are matched tolerantly: case, punctuation, currency signs, number words and
digit forms are folded the same way on both sides ("$35", "35 dollars", "thirty-five"
all state "35"; "9:00 a.m." states "9 am"). Invented facts are the grounding
module's (``pipelines.dialogue.grounding``): a number, price, time, date, phone,
e-mail or name in a reply that none of the sources (documents, the bot's
configuration, the caller's words) supports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipelines.dialogue.normalize import ORDINALS, TENS, UNITS

NUMBER_WORDS = {k: v for k, v in UNITS.items() if k not in ("oh", "o", "nought")}
DONT_KNOW_RE = re.compile(
    r"\b(i|we) (do not|don't|dont) (have|know|see|offer information)\b|"
    r"\b(no|not any|don't have any|do not have any) (information|info|details|record)\b|"
    r"\bnot sure\b|\bno idea\b|\bi('m| am) (afraid|sorry),? (i|we) (can't|cannot|don't|do not)\b|"
    r"\b(can't|cannot|couldn't|could not|unable to) (answer|find|say|tell|help with that|confirm)\b|"
    r"\b(isn't|is not|wasn't) (something|anything) (i|we) (know|have)\b|"
    r"\bnot (in|on) (my|our) (information|documents|records|notes|list)\b|"
    r"\bdon'?t have that\b|\b(please )?(ask|check with|contact) (the|our) (salon|staff|team|front desk|reception)\b",
    re.IGNORECASE,
)


# --- folding text for fact matching ------------------------------------------------

def _below_hundred(words: list[str], i: int) -> tuple[int, int] | None:
    """(value, next index) of "twenty five", "seven", "fifteen" at ``i``."""
    if i < len(words) and words[i] in TENS:
        value = TENS[words[i]]
        if i + 1 < len(words) and 1 <= NUMBER_WORDS.get(words[i + 1], 0) <= 9:
            return value + NUMBER_WORDS[words[i + 1]], i + 2
        return value, i + 1
    if i < len(words) and words[i] in NUMBER_WORDS:
        return NUMBER_WORDS[words[i]], i + 1
    return None


def _number_at(words: list[str], i: int) -> tuple[int, int] | None:
    """One spoken number at ``i`` (up to the thousands): "one hundred and twenty five" -> (125, i + 5).

    Digits said one by one ("two one two") are separate numbers, as a caller means them.
    """
    total, j = 0, i
    first = _below_hundred(words, j)
    if first is None:
        if j < len(words) and words[j] in ("hundred", "thousand"):
            first = (1, j)  # "a hundred": the "a" was its own word
        else:
            return None
    value, j = first
    for scale, size in (("thousand", 1000), ("hundred", 100)):
        if j < len(words) and words[j] == scale:
            total += value * size
            j += 1
            k = j + 1 if j < len(words) and words[j] == "and" else j
            rest = _below_hundred(words, k)
            if rest is None:
                return total, j
            value, j = rest
            if scale == "thousand" and j < len(words) and words[j] == "hundred":
                continue
            return total + value, j
    return total + value, j


def fold(text: str) -> str:
    """Text reduced to what a fact comparison needs: lower case words and plain digits."""
    t = text.lower().replace("\u2019", "'")
    t = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", t)                 # a.m. -> am
    t = re.sub(r"(\d)[:.]00\b", r"\1", t)                          # 9:00, 35.00 -> 9, 35
    t = re.sub(r"(\d),(\d{3})\b", r"\1\2", t)                      # 1,000 -> 1000
    t = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", t)                   # 3rd -> 3
    t = re.sub(r"(\d)\s*%", r"\1 percent", t)
    t = re.sub(r"(\d)([a-z])", r"\1 \2", t)                        # 9am -> 9 am
    t = re.sub(r"([a-z])(\d)", r"\1 \2", t)
    t = t.replace("-", " ")
    words = re.findall(r"[a-z']+|\d+(?:[.:]\d+)?", t)
    words = [w.strip("'") for w in words if w.strip("'")]
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        best = None
        if i + 1 < len(words) and f"{word} {words[i + 1]}" in ORDINALS:  # "twenty first"
            best = (i + 2, str(ORDINALS[f"{word} {words[i + 1]}"]))
        if best is None and (found := _number_at(words, i)):
            best = (found[1], str(found[0]))
        if best is None and word in ORDINALS:
            best = (i + 1, str(ORDINALS[word]))
        if best is not None:
            out.append(best[1])
            i = best[0]
        else:
            out.append(word)
            i += 1
    return " ".join(out)


def states(reply: str, fact: str) -> bool:
    """Whether ``reply`` states ``fact`` (tolerantly: see ``fold``)."""
    wanted = fold(fact)
    if not wanted:
        return False
    if f" {wanted} " in f" {fold(reply)} ":
        return True
    return _same_fact_keys(reply, fact)


def _same_fact_keys(reply: str, fact: str) -> bool:
    """The grounding module's reading: the fact's own facts (price, time, phone...) all in the reply."""
    grounding = load_grounding()
    if grounding is None:
        return False
    try:
        wanted = {f.key for f in grounding.facts(fact)}
        said = {f.key for f in grounding.facts(reply)}
    except Exception:  # noqa: BLE001 - a matcher's failure must not stop the benchmark
        return False
    return bool(wanted) and wanted <= said


def missing_facts(reply: str, facts: list[list[str]]) -> list[str]:
    """The expected facts (each a list of alternatives) that the reply does not state."""
    return [" / ".join(options) for options in facts if not any(states(reply, o) for o in options)]


def is_dont_know(reply: str, *, fallback: str = "", extra: list[str] = ()) -> bool:
    """An honest "I don't know": the bot's fallback phrase, or words saying it has no answer."""
    folded = fold(reply)
    for phrase in [fallback, *extra]:
        if phrase and fold(phrase) and fold(phrase) in folded:
            return True
    return bool(DONT_KNOW_RE.search(reply.replace("\u2019", "'")))


# --- invented facts (pipelines.dialogue.grounding) -----------------------------------

_GROUNDING: list = []


def load_grounding():
    """The grounding module, or None while it is not in the tree."""
    if not _GROUNDING:
        try:
            from pipelines.dialogue import grounding
        except ImportError:
            grounding = None
        _GROUNDING.append(grounding)
    return _GROUNDING[0]


SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END_RE.split(text.strip()) if s.strip()]


class Grounder:
    """The sources of one evaluation (documents + bot configuration), per case plus the caller's words."""

    def __init__(self, texts: list[str]):
        self.texts = [t for t in texts if t and t.strip()]
        self.grounding = load_grounding()

    @property
    def available(self) -> bool:
        return self.grounding is not None

    def invented(self, reply: str, caller_words: list[str]) -> list[str] | None:
        """The facts in ``reply`` no source supports (None when grounding is not available)."""
        if self.grounding is None:
            return None
        sources = self.grounding.Sources(*self.texts, *[w for w in caller_words if w])
        found: list[str] = []
        for sentence in sentences(reply):
            for fact in self.grounding.ungrounded(sentence, sources):
                text = getattr(fact, "text", str(fact))
                if text not in found:
                    found.append(text)
        return found


# --- cases -------------------------------------------------------------------------

@dataclass
class QuestionScore:
    correct: bool
    missing: list[str] = field(default_factory=list)
    invented: list[str] | None = None
    dont_know: bool = False


def score_question(reply: str, *, facts: list[list[str]], absent: bool, invented: list[str] | None,
                   fallback: str = "", dont_know_phrases: list[str] = ()) -> QuestionScore:
    """Right: every fact stated (a fact question) or an honest don't-know (an absent one), and in
    both cases no fact or claim the sources lack ("American Express is not accepted" states the
    fact "American Express" and is still wrong)."""
    dont_know = is_dont_know(reply, fallback=fallback, extra=list(dont_know_phrases))
    if absent:
        return QuestionScore(correct=dont_know and not invented, invented=invented, dont_know=dont_know)
    missing = missing_facts(reply, facts)
    return QuestionScore(correct=not missing and not invented, missing=missing, invented=invented,
                         dont_know=dont_know)


def fold_value(value) -> str:
    text = "" if value is None else str(value)
    text = re.sub(r"[^\w+:@.\- ]", " ", text.lower().replace("\u2019", "'").replace("'", ""))
    words = [w for w in text.replace("-", " ").split() if w not in ("a", "an", "the")]
    return " ".join(words)


def booking_mismatches(got: dict, expect: dict[str, str]) -> dict[str, dict]:
    """Expected fields whose value differs: {name: {"expected", "got"}} (text folded, others exact)."""
    wrong = {}
    for name, wanted in expect.items():
        value = got.get(name)
        if fold_value(value) != fold_value(wanted):
            wrong[name] = {"expected": wanted, "got": value}
    return wrong


def end_reason_of(reason: str | None) -> str:
    """An engine's or a call's end reason in the suite's terms (a conversation that did not end: none)."""
    if not reason or reason in ("caller_hangup", "hangup"):
        return "none"
    return reason


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    rank = max(1, -(-len(values) * q // 100))  # ceil
    return values[int(rank) - 1]


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def latency(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    return {"n": len(values), "median_ms": _round(median(values)), "p95_ms": _round(percentile(values, 95))}


def _round(value):
    return None if value is None else round(value)
