"""Celery tasks of the knowledge base."""

from celery import shared_task

from knowledge.ingest import ingest


@shared_task(name="knowledge.ingest_document")
def ingest_document(document_id: int) -> dict:
    """Ingest one uploaded document; returns its final status for callers that wait."""
    document = ingest(document_id)
    if document is None:
        return {"document": document_id, "status": "deleted"}
    return {"document": document_id, "status": document.status, "chunks": document.chunk_count,
            "error": document.error}
