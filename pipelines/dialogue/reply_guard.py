"""Checks an LLM reply sentence by sentence before anyone hears or reads it (calls and chat alike).

A sentence may be said when every fact in it (numbers, prices, times, dates,
phones, e-mails, names, policy claims) is found in what the bot may rely on:
this turn's knowledge passages, the bot's own configuration, the caller's
words (``grounding.Sources``). The first sentence that fails is replaced by an
answer from the passages' own words, or an honest "I don't have that
information" (``answers``), and the rest of that reply is dropped. Every
replacement is kept (``replaced``) for the call's metrics and the call page.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from pipelines.dialogue import grounding

VALUE_KINDS = ("number", "price", "time", "date", "phone")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def config_texts(config) -> list[str]:
    """Everything in the bot's configuration a reply may repeat: prompt, greeting, scenario texts, choices."""
    texts = [getattr(config, name, "") or "" for name in ("system_prompt", "greeting", "fallback_phrase",
                                                           "company_name", "name", "transfer_number")]

    def walk(value: Any) -> Iterable[str]:
        if isinstance(value, str):
            yield value
        elif hasattr(value, "items"):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from walk(item)

    texts += list(walk(getattr(config, "scenarios", ()) or ()))
    return [t for t in texts if t]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text or "") if s.strip()]


@dataclass
class ReplyGuard:
    """One reply's check. ``check(sentence)`` -> the text to say, or None (dropped after a replacement)."""

    config: Any
    question: str
    passages: list[str] = field(default_factory=list)
    caller_words: list[str] = field(default_factory=list)
    embed: Any = None
    evidence: str = ""  # the documents' sentence that answers: numbers, times and prices must come from it
    replaced: list[dict] = field(default_factory=list)
    checked: int = 0
    check_ms: float = 0.0
    _sources: grounding.Sources | None = None
    _evidence_sources: grounding.Sources | None = None
    _done: bool = False

    @property
    def sources(self) -> grounding.Sources:
        if self._sources is None:
            self._sources = grounding.Sources(*config_texts(self.config), *self.caller_words, self.question,
                                              *self.passages)
        return self._sources

    def check(self, sentence: str) -> str | None:
        if self._done or not sentence.strip():
            return None
        started = time.perf_counter()
        bad = grounding.ungrounded(sentence, self.sources)
        if not bad and self.evidence:
            bad = self._values_off_the_answer(sentence)
        if not bad and self.passages and self._echoes(sentence):
            bad = [grounding.Fact("echo", sentence, "")]  # the question (or the greeting) said back: no answer
        self.checked += 1
        self.check_ms += (time.perf_counter() - started) * 1000
        if not bad:
            return sentence
        self._done = True
        instead = self.replacement()
        self.replaced.append({"tried": sentence, "said": instead,
                              "facts": [f"{f.kind}: {f.text}" for f in bad]})
        return instead

    def _values_off_the_answer(self, sentence: str) -> list:
        """Values stated that the answering sentence does not hold: "deposits are 10 dollars" is grounded
        somewhere in a price list, but not by the deposit rule (20 dollars)."""
        if self._evidence_sources is None:
            self._evidence_sources = grounding.Sources(self.evidence, self.question, *self.caller_words,
                                                       *config_texts(self.config))
        return [f for f in grounding.facts(sentence)
                if f.kind in VALUE_KINDS and not self._evidence_sources.supports(f)]

    def _echoes(self, sentence: str) -> bool:
        """A sentence that only repeats the question or the bot's greeting (a weak model's way of not answering)."""
        said = set(grounding.words(sentence))
        if not said:
            return False
        echo = set(grounding.words(self.question)) | set(grounding.words(getattr(self.config, "greeting", "") or ""))
        return said <= echo

    def replacement(self) -> str:
        from pipelines.dialogue import answers

        answer = answers.extractive_answer(self.question, self.passages, embed=self.embed) if self.passages else None
        if answer is not None:
            return answer.text
        return answers.dont_know(fallback=getattr(self.config, "fallback_phrase", ""),
                                 can_transfer=bool(getattr(self.config, "transfer_number", "")))

    def check_reply(self, text: str) -> str:
        """A whole reply (text chat): its sentences checked in order."""
        said = [s for s in (self.check(sentence) for sentence in split_sentences(text)) if s]
        return " ".join(said)

    def metrics(self) -> dict:
        return {"checked": self.checked, "replaced": list(self.replaced), "check_ms": round(self.check_ms, 2)}


def grounding_metrics(replies: list[dict]) -> dict:
    """What the fact check did over a conversation: sentences checked, the replaced ones, time spent."""
    return {"checked": sum(r["checked"] for r in replies),
            "replaced": [item for r in replies for item in r["replaced"]],
            "check_ms_max": max((r["check_ms"] for r in replies), default=0.0)}
