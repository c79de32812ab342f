"""Retrieval for the live-call hot path: one query embedding, one SQL query.

Only chunks of documents linked to the bot *and* owned by the bot's company
are candidates. A bot with few chunks is searched exactly (its chunks are
reached through their document); a bot with many through the HNSW index (per
dimension, see ``vector_index``), with pgvector's iterative scan so the filter
still fills the top k.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection, transaction

from knowledge.embeddings import get_embedder

SQL = """
SELECT c.id, c.text, c.page, c.section, d.id, d.name,
       (c.embedding::vector({dim})) <=> %(q)s::vector({dim}) AS distance
FROM knowledge_knowledgechunk c
JOIN knowledge_knowledgedocument d ON d.id = c.document_id
WHERE c.embedding_dim = {dim} AND c.embedding_model = %(model)s
  AND d.company_id = %(company)s
  AND c.document_id = ANY(%(documents)s)
ORDER BY (c.embedding::vector({dim})) <=> %(q)s::vector({dim})
LIMIT %(k)s
"""


# The bot's documents (of its own company) and how many chunks they hold: none means no
# work, few mean an exact comparison is cheaper and surer than the approximate index. The
# ids go into the search as a literal list, which the planner estimates far better than a
# join (with a join it once read all 100k chunks for a bot that has 30).
COUNT_SQL = """
SELECT coalesce(array_agg(d.id), '{}'), coalesce(sum(d.chunk_count), 0) FROM knowledge_knowledgedocument d
JOIN knowledge_knowledgedocument_bots b ON b.knowledgedocument_id = d.id
WHERE b.bot_id = %(bot)s AND d.company_id = %(company)s
"""

# The same candidates compared exactly: the expression differs from the index's, so
# PostgreSQL reads the bot's chunks through the (document, position) index instead.
EXACT_SQL = SQL.replace("ORDER BY (c.embedding::vector({dim})) <=>", "ORDER BY c.embedding <=>")


@dataclass(frozen=True)
class Passage:
    text: str
    score: float
    document: str
    document_id: int
    page: int | None
    section: str
    chunk_id: int

    def as_dict(self) -> dict:
        return asdict(self)


def vector_literal(vector) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


def search(bot, query: str, top_k: int | None = None, threshold: float | None = None) -> list[Passage]:
    """The ``top_k`` passages most similar to ``query`` (cosine similarity >= ``threshold``), best first.

    ``bot`` is a Bot, or any object with ``id``/``pk`` and ``company_id`` (a call's config
    snapshot); its ``knowledge_top_k`` and ``knowledge_score_threshold``, if any, are the defaults.
    Synchronous (Django ORM): from asyncio, call it in a thread (``asgiref.sync.sync_to_async``).
    """
    bot_id = getattr(bot, "pk", None) or bot.id
    top_k = int(top_k if top_k is not None else getattr(bot, "knowledge_top_k", 3))
    threshold = float(threshold if threshold is not None else getattr(bot, "knowledge_score_threshold", 0.3))
    query = (query or "").strip()
    if not query or top_k <= 0:
        return []
    embedder = get_embedder()
    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL, {"company": bot.company_id, "bot": bot_id})
        documents, candidates = cursor.fetchone()
    if not candidates:
        return []  # no knowledge: no embedding either
    vector = embedder.embed([query])[0]
    params = {"q": vector_literal(vector), "model": embedder.name, "company": bot.company_id,
              "documents": list(documents), "k": top_k}
    dim = int(embedder.dim)
    if candidates <= settings.KNOWLEDGE_EXACT_SEARCH_MAX:
        with connection.cursor() as cursor:
            cursor.execute(EXACT_SQL.format(dim=dim), params)
            rows = cursor.fetchall()
    else:
        ef_search = max(settings.KNOWLEDGE_HNSW_EF_SEARCH, top_k * 2)
        with transaction.atomic(), connection.cursor() as cursor:
            # LOCAL: these planner settings end with this transaction. Without sorting, the
            # planner can only order by distance through the HNSW index.
            cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}; "
                           "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL enable_sort = off")
            cursor.execute(SQL.format(dim=dim), params)
            rows = cursor.fetchall()
            if len(rows) < top_k:
                # The approximate scan gives up after hnsw.max_scan_tuples (the bot's chunks are a
                # small share of a big index, or many rows were just deleted): compare exactly.
                cursor.execute("SET LOCAL enable_sort = on")
                cursor.execute(EXACT_SQL.format(dim=dim), params)
                rows = cursor.fetchall()
    passages = [
        Passage(text=text, score=round(1.0 - float(distance), 4), document=name, document_id=doc_id, page=page,
                section=section, chunk_id=chunk_id)
        for chunk_id, text, page, section, doc_id, name, distance in rows
    ]
    passages.sort(key=lambda p: p.score, reverse=True)  # iterative scans may return slightly out of order
    return [p for p in passages if p.score >= threshold]
