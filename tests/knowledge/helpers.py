import time

from knowledge.models import KnowledgeDocument


def wait_final(document_id: int, timeout: float = 90) -> KnowledgeDocument:
    """The document once the worker has finished with it (ready or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        document = KnowledgeDocument.objects.get(pk=document_id)
        if document.status in ("ready", "failed"):
            return document
        if time.monotonic() > deadline:
            raise AssertionError(f"document {document_id} still {document.status} after {timeout}s")
        time.sleep(0.1)
