"""Ingest one document: partition -> chunks -> embeddings -> rows, all or nothing.

The new chunks replace the old ones in one transaction at the end, so a
document being re-ingested keeps answering from its previous version, and a
failure leaves no partial rows: the document is marked failed with the reason.

Bounded (``knowledge.limits``): the file is partitioned in a child process capped in
memory and killed at the document's deadline (``knowledge.isolated``), and the deadline
(``KNOWLEDGE_INGEST_TIMEOUT_SEC`` from the start) is checked again after chunking and
between embedding batches. A document over a limit fails with a reason naming the setting.
"""

from __future__ import annotations

import logging

import numpy as np
from django.db import transaction
from django.utils import timezone

from knowledge.chunking import chunk_blocks
from knowledge.embeddings import EmbeddingError, chunk_budget, get_embedder, wordpiece_tokenizer
from knowledge.filetypes import UnsupportedFile, detect
from knowledge.isolated import partition_isolated
from knowledge.limits import Deadline, Limits
from knowledge.models import KnowledgeChunk, KnowledgeDocument
from knowledge.partition import DocumentUnreadable
from knowledge.vector_index import ensure_index

logger = logging.getLogger(__name__)

Status = KnowledgeDocument.Status


def embed_in_batches(embedder, texts: list[str], batch_size: int, on_progress=None,
                     deadline: Deadline | None = None, name: str = "The file") -> np.ndarray:
    """Embeddings of ``texts`` in their order, computed in batches of similar length (less padding).

    With a ``deadline``, stops between batches once it has passed (LimitExceeded).
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        if deadline is not None:
            deadline.check(name, f"while computing embeddings ({start:,} of {len(texts):,} chunks done)")
        rows = order[start : start + batch_size]
        vectors[rows] = embedder.embed([texts[i] for i in rows])
        if on_progress:
            on_progress(min(len(order), start + batch_size) / len(order))
    return vectors


def set_progress(document_id: int, percent: int) -> None:
    KnowledgeDocument.objects.filter(pk=document_id).update(progress=percent, updated_at=timezone.now())


def fail(document_id: int, message: str) -> None:
    with transaction.atomic():
        KnowledgeChunk.objects.filter(document_id=document_id).delete()
        KnowledgeDocument.objects.filter(pk=document_id).update(
            status=Status.FAILED, error=message, progress=0, chunk_count=0, updated_at=timezone.now()
        )


def ingest(document_id: int, batch_size: int | None = None) -> KnowledgeDocument | None:
    """Run the whole ingestion of one document; return it in its final state (None if deleted meanwhile)."""
    from django.conf import settings

    batch_size = batch_size or settings.KNOWLEDGE_EMBED_BATCH
    document = KnowledgeDocument.objects.filter(pk=document_id).first()
    if document is None:
        return None
    content_hash = document.content_hash
    limits = Limits.from_settings()
    deadline = Deadline(limits)
    KnowledgeDocument.objects.filter(pk=document_id).update(
        status=Status.PROCESSING, error="", progress=1, updated_at=timezone.now()
    )
    try:
        if not document.file:
            raise UnsupportedFile("The upload was refused, so there is no file to read.")
        with document.file.open("rb") as handle:
            data = handle.read()
        file_type = detect(document.name, data)
        blocks, pages = partition_isolated(file_type, document.name, data, limits, deadline)
        del data
        set_progress(document_id, 10)
        embedder = get_embedder()
        size, overlap = chunk_budget(embedder)
        chunks = chunk_blocks(blocks, wordpiece_tokenizer(), size, overlap)
        if not chunks:
            raise DocumentUnreadable("No text found in the file (only headings or empty pages).")
        deadline.check(document.name, "after splitting it into chunks")
        set_progress(document_id, 15)
        vectors = embed_in_batches(
            embedder, [c.embedding_text() for c in chunks], batch_size,
            on_progress=lambda done: set_progress(document_id, 15 + int(done * 80)),
            deadline=deadline, name=document.name,
        )
        ensure_index(embedder.dim)
        rows = [
            KnowledgeChunk(document_id=document_id, position=i, text=c.text, embedding=vectors[i],
                           embedding_model=embedder.name, embedding_dim=embedder.dim, page=c.page,
                           section=c.section, token_count=c.token_count)
            for i, c in enumerate(chunks)
        ]
        with transaction.atomic():
            current = KnowledgeDocument.objects.select_for_update().filter(pk=document_id).first()
            if current is None or current.content_hash != content_hash:
                logger.info("document %s changed or vanished during ingestion; result discarded", document_id)
                return current
            KnowledgeChunk.objects.filter(document_id=document_id).delete()
            KnowledgeChunk.objects.bulk_create(rows, batch_size=1000)
            KnowledgeDocument.objects.filter(pk=document_id).update(
                status=Status.READY, error="", progress=100, pages=pages, chunk_count=len(rows),
                file_type=file_type, embedding_model=embedder.name, ingested_at=timezone.now(),
                updated_at=timezone.now(),
            )
    except (UnsupportedFile, DocumentUnreadable, EmbeddingError) as exc:
        fail(document_id, str(exc))
    except FileNotFoundError:
        fail(document_id, "The stored file is missing; upload it again.")
    except Exception as exc:  # noqa: BLE001  the reason must reach staff, not only the worker log
        logger.exception("ingestion of document %s failed", document_id)
        fail(document_id, f"Unexpected error while reading the file ({type(exc).__name__}: {exc}).")
    return KnowledgeDocument.objects.filter(pk=document_id).first()
