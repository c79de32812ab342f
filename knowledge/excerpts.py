"""The sentences of retrieved chunks that answer the question, best first.

A chunk is sized for the embedding model (about 250 word pieces), which is
far more than a caller's question needs: a price list chunk holds a dozen
prices. Given the whole chunk, a small LLM tends to read out the first number
it sees, and every extra token is prefill time before the first word is
spoken (5-7 ms a token on the bundled model). So the chunks found by
``search`` are cut into sentences (lines of a list count as sentences), those
are ranked by similarity to the question with the same embedder, and only the
closest few go to the LLM, the closest first.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

Embed = Callable[[list[str]], np.ndarray]

SENTENCE_BREAK = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
MIN_SENTENCE_CHARS = 3


def sentences(text: str) -> list[str]:
    """``text`` cut at line breaks and sentence ends; fragments shorter than 3 characters dropped."""
    return [s.strip() for s in SENTENCE_BREAK.split(text or "") if len(s.strip()) >= MIN_SENTENCE_CHARS]


def best_sentences(question: str, passages: Sequence[str], embed: Embed, *, limit: int = 3,
                   margin: float = 0.08) -> list[str]:
    """Up to ``limit`` sentences of ``passages`` closest to ``question``, best first.

    A sentence makes the cut if it scores within ``margin`` of the best one, so a
    question with one clear answer gets that sentence alone. Passages with no more
    than ``limit`` sentences in all are returned as they are.
    """
    units = list(dict.fromkeys(s for p in passages for s in sentences(p)))
    if len(units) <= limit or not question.strip():
        return list(passages)
    vectors = np.asarray(embed([question, *units]), dtype=np.float32)
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores)[:limit]
    best = float(scores[order[0]])
    return [units[i] for i in order if scores[i] >= best - margin]
