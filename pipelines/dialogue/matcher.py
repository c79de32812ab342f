"""Which scenario the caller's words ask for: keywords first, then meaning.

Keywords match whole words at word starts ("book" matches "booking"); the
scenario with most keyword hits wins, ties go to the first listed. Without a
keyword hit, the utterance is embedded and compared (cosine) with each
scenario's example phrases; the best one at or above ``threshold`` wins, so
"can I get my nails done Friday?" reaches the booking scenario without saying
"book". The embedder is injected (``embed(texts) -> array of unit vectors``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Embed = Callable[[list[str]], np.ndarray]

# Cosine similarity of all-MiniLM-L6-v2 above which a paraphrase counts as the same
# request. Measured on the demo salon's phrases: paraphrases 0.6-0.9, unrelated < 0.35.
DEFAULT_THRESHOLD = 0.55


@dataclass(frozen=True)
class Match:
    scenario: str
    score: float
    how: str  # "keyword" or "similarity"


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
        if self.embed is None or not self._examples or not text.strip():
            return None
        self.warm_up()
        query = np.asarray(self.embed([text]), dtype=np.float32)[0]
        scores = self._example_vectors @ query
        best = int(np.argmax(scores))
        if scores[best] < self.threshold:
            return None
        return Match(self._examples[best][0], float(scores[best]), "similarity")

    def match(self, text: str) -> Match | None:
        return self.by_keywords(text) or self.by_similarity(text)
