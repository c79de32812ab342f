"""Which scenario the caller's words ask for: keywords first, then meaning.

Keywords match whole words at word starts ("book" matches "booking"); the
scenario with most keyword hits wins, ties go to the first listed. Without a
keyword hit, the utterance is embedded and compared (cosine) with each
scenario's example phrases; the best one at or above ``threshold`` wins, so
"can I get my nails done Friday?" reaches the booking scenario without saying
"book". The embedder is injected (``embed(texts) -> array of unit vectors``).

Callers ramble ("um hi, yeah, so I was wondering if I could come in for a pedicure"):
fillers are dropped first (``normalize.clean``), and the sentence's clauses are
compared too, so one clause that means the request is enough. Last, a field's
``choices`` value (a service name, matched tolerantly) together with a booking
verb ("come in", "get", "book", "see", "fit me in") starts that field's scenario.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pipelines.dialogue import normalize

Embed = Callable[[list[str]], np.ndarray]

# Cosine similarity of all-MiniLM-L6-v2 above which a paraphrase counts as the same
# request. Measured on the demo salon's phrases: paraphrases 0.6-0.9, unrelated < 0.35.
DEFAULT_THRESHOLD = 0.55

# Verbs that, with a service name, ask for an appointment: "I'd like to come in for a haircut",
# "can you fit me in for a pedicure", "could I get a gel manicure". A price question ("how much
# is a haircut") has none of them and goes on to keywords or knowledge.
BOOKING_VERB_RE = re.compile(
    r"\b(come in|coming in|pop in|drop in|stop by|swing by|get|getting|book|booking|appointment|see|fit me in|"
    r"fit me|fit in|squeeze me in|schedule|reserve|slot|available|availability|i'?m looking for|"
    r"(?:i'?d like|i would like|i want|i need)(?: to (?:get|have|book|come)| an?| some| my)?(?= (?:an?|some|my|the)\b))\b",
    re.IGNORECASE)
CLAUSE_RE = re.compile(r"[,.;!?]+|\s+(?:and|but|so|because|cause)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Match:
    scenario: str
    score: float
    how: str  # "keyword", "similarity" or "choice"


def _keyword_pattern(keyword: str) -> re.Pattern:
    words = [re.escape(w) for w in keyword.lower().split()]
    return re.compile(r"\b" + r"\s+".join(words), re.IGNORECASE)


class ScenarioMatcher:
    def __init__(self, scenarios: Sequence[dict], *, embed: Embed | None = None,
                 threshold: float = DEFAULT_THRESHOLD):
        self.scenarios = list(scenarios)
        self.embed = embed
        self.threshold = threshold
        self._keywords = [
            (s["name"], [_keyword_pattern(k) for k in s.get("trigger_keywords") or ()]) for s in self.scenarios
        ]
        self._examples: list[tuple[str, str]] = [
            (s["name"], phrase) for s in self.scenarios for phrase in s.get("example_phrases") or ()
        ]
        self._example_vectors: np.ndarray | None = None
        self._choices = [
            (s["name"], normalize.choices_of(f)) for s in self.scenarios for f in s.get("collect_fields") or ()
            if f.get("type") == "choice" and normalize.choices_of(f)
        ]

    def warm_up(self) -> None:
        """Embed the example phrases now (once per conversation), not on the first turn."""
        if self.embed is not None and self._examples and self._example_vectors is None:
            self._example_vectors = np.asarray(self.embed([p for _, p in self._examples]), dtype=np.float32)

    def by_keywords(self, text: str) -> Match | None:
        best: Match | None = None
        for name, patterns in self._keywords:
            hits = sum(1 for p in patterns if p.search(text))
            if hits and (best is None or hits > best.score):
                best = Match(name, float(hits), "keyword")
        return best

    def by_similarity(self, text: str) -> Match | None:
        """The closest example phrase to the sentence or to one of its clauses, at or above the threshold."""
        if self.embed is None or not self._examples or not text.strip():
            return None
        self.warm_up()
        queries = [text, *(c for c in clauses(text) if c != text)]
        vectors = np.asarray(self.embed(queries), dtype=np.float32)
        scores = self._example_vectors @ vectors.T  # examples x queries
        best_example, _ = np.unravel_index(int(np.argmax(scores)), scores.shape)
        score = float(scores.max())
        if score < self.threshold:
            return None
        return Match(self._examples[int(best_example)][0], score, "similarity")

    def by_choices(self, text: str) -> Match | None:
        """A choice of a scenario's field (a service) said with a booking verb: that scenario."""
        if not self._choices or not BOOKING_VERB_RE.search(text):
            return None
        for name, choices in self._choices:
            found = normalize.find_choice(text, choices)
            if found is not None:
                return Match(name, found.score, "choice")
        return None

    def match(self, text: str) -> Match | None:
        text = normalize.clean(text)
        return self.by_keywords(text) or self.by_similarity(text) or self.by_choices(text)


def clauses(text: str) -> list[str]:
    """The parts of a rambling sentence worth comparing on their own (three words or more)."""
    parts = [p.strip() for p in CLAUSE_RE.split(text)]
    return [p for p in parts if len(p.split()) >= 3]
