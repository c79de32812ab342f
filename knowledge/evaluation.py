"""Retrieval quality: recall@k of a question set whose answers are known by section."""

from __future__ import annotations

import json
from pathlib import Path

from knowledge.search import search


def load_questions(path: Path) -> list[dict]:
    """[{"question": ..., "section": ...}]: the section (heading) that holds the answer."""
    return json.loads(Path(path).read_text())


def recall_at_k(bot, questions: list[dict], k: int = 5) -> tuple[float, list[dict]]:
    """Share of questions with a chunk of the answer's section among the top ``k``; and the misses."""
    misses = []
    for item in questions:
        passages = search(bot, item["question"], top_k=k, threshold=0.0)
        if not any(p.section == item["section"] or p.section.endswith(" > " + item["section"]) for p in passages):
            misses.append({"question": item["question"], "expected": item["section"],
                           "got": [p.section for p in passages]})
    return 1 - len(misses) / len(questions), misses
