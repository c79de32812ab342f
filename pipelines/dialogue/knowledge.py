"""Where the engine's knowledge passages come from.

The engine takes any ``retrieve(query) -> list[str]``. ``default_retriever``
uses the knowledge app's search over the bot's documents and gives the chunks
found, each under its section heading: extractive answers pick the answering
line from whole chunks (measured: 51 of 54 answerable questions against 38 of 54
from pre-cut sentences); the LLM gets only the closest sentences
(``knowledge.excerpts.best_sentences``, in the engine). ``PassageRetriever`` ranks
a fixed list of passages with an embedder: for a bot's FAQ given inline, the
terminal chat's ``--knowledge FILE`` and tests.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Callable, Sequence

import numpy as np

from pipelines.dialogue.matcher import Embed

logger = logging.getLogger(__name__)


def _passage_text(item) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return str(item.get("text") or item.get("content") or "")
    return str(getattr(item, "text", "") or getattr(item, "content", "") or "")


class Found(str):
    """A passage's text (what the engine reads) that also knows its similarity ``score`` and its
    ``document`` (name and id), so "Try this bot" can show what a reply was based on."""

    score: float | None = None
    document: str = ""
    document_id: int | None = None

    def __new__(cls, text: str, score: float | None = None, document: str = "", document_id: int | None = None):
        found = super().__new__(cls, text)
        found.score, found.document, found.document_id = score, document, document_id
        return found


def default_retriever(config) -> Callable[[str], list[str]] | None:
    """A retriever over the bot's knowledge chunks, or None when the bot uses no knowledge.

    ``knowledge.search.search`` reads only ``pk``, ``company_id`` and the two
    knowledge settings of the bot it is given, so the snapshot stands in for
    the Bot and no query is made here.
    """
    from knowledge.search import search

    wanted = getattr(config, "use_knowledge", False) or any(
        s.get("use_knowledge_base") for s in getattr(config, "scenarios", ()) or ())
    if not wanted:
        return None
    bot = SimpleNamespace(pk=config.bot_id, company_id=config.company_id,
                          knowledge_top_k=config.knowledge_top_k,
                          knowledge_score_threshold=config.knowledge_score_threshold)

    def retrieve(query: str) -> list[str]:
        return [Found(titled(p), round(p.score, 3), p.document, p.document_id) for p in search(bot, query) if p.text]

    return retrieve


def titled(passage) -> str:
    """A chunk's text with its section heading in front: answers read better with their context
    ("Manicures" above "Gel polish ... costs 35 dollars")."""
    section = (getattr(passage, "section", "") or "").strip()
    text = _passage_text(passage).strip()
    return f"{section}\n{text}" if section and not text.startswith(section) else text


class PassageRetriever:
    """Top-k passages by cosine similarity to the query, above a threshold."""

    def __init__(self, passages: Sequence[str], embed: Embed, *, top_k: int = 3, threshold: float = 0.3):
        self.passages = [p for p in passages if p.strip()]
        self.embed = embed
        self.top_k = top_k
        self.threshold = threshold
        self._vectors = np.asarray(embed(self.passages), dtype=np.float32) if self.passages else None

    def __call__(self, query: str) -> list[str]:
        if self._vectors is None or not query.strip():
            return []
        scores = self._vectors @ np.asarray(self.embed([query]), dtype=np.float32)[0]
        order = np.argsort(-scores)[: self.top_k]
        return [Found(self.passages[i], round(float(scores[i]), 3)) for i in order if scores[i] >= self.threshold]
