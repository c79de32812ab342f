"""What the admin, the commands and the API do with documents.

``upload_documents`` validates and stores each file and queues its ingestion;
the same bytes twice make one document (found by SHA-256), the same name with
new bytes replaces the old version once the new one is ingested. A refused
file (empty, unsupported or disguised type) is recorded as a failed document
with the reason, and no file is kept; a file over the size limit is not
recorded at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePath

from django.core.files.base import ContentFile
from django.db import transaction

from knowledge.filetypes import UnsupportedFile, detect, max_upload_bytes
from knowledge.models import KnowledgeDocument
from voicebot.models import Bot, Company

Status = KnowledgeDocument.Status


class UploadRejected(ValueError):
    """The upload was not stored at all (too large); the message says why."""


@dataclass
class UploadResult:
    name: str
    outcome: str  # queued | replaced | duplicate | failed | rejected
    message: str
    document: KnowledgeDocument | None = None


def _check_bots(company: Company, bots) -> list[Bot]:
    bots = list(bots or [])
    foreign = [b for b in bots if b.company_id != company.pk]
    if foreign:
        raise ValueError(f"Bot(s) {', '.join(b.slug for b in foreign)} belong to another company than {company}.")
    return bots


def storage_name(name: str) -> str:
    """The stored file's name: the upload's, cut to fit any file system's 255 bytes (with room for
    the storage's de-duplicating suffix), its extension kept. The document keeps the full name."""
    path = PurePath(name)
    suffix = path.suffix if len(path.suffix) <= 16 else ""
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    while stem and len((stem + suffix).encode()) > 180:
        stem = stem[:-1]
    return (stem + suffix) or "document"


def queue_ingestion(document: KnowledgeDocument) -> None:
    """Queue the Celery ingestion once the current transaction has committed."""
    from knowledge.tasks import ingest_document

    document_id = document.pk
    transaction.on_commit(lambda: ingest_document.delay(document_id))


def upload_document(company: Company, name: str, data: bytes, bots=()) -> UploadResult:
    """Validate, store and queue one file for ``company``, serving ``bots``."""
    name = PurePath(name).name[:255] or "unnamed"
    bots = _check_bots(company, bots)
    limit = max_upload_bytes()
    if len(data) > limit:
        return UploadResult(name, "rejected", f"File {name}: {len(data) / 1048576:.1f} MB is over the "
                            f"{limit // 1048576} MB limit for knowledge files.")
    content_hash = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        duplicate = KnowledgeDocument.objects.for_company(company).filter(content_hash=content_hash).first()
        if duplicate is not None:
            duplicate.bots.add(*bots)
            return UploadResult(name, "duplicate",
                                f"File {name}: same content as '{duplicate.name}', already uploaded; not ingested again.",
                                duplicate)
        try:
            file_type = detect(name, data)
        except UnsupportedFile as exc:
            document = KnowledgeDocument.objects.create(
                company=company, name=name, content_hash=content_hash, size_bytes=len(data),
                status=Status.FAILED, error=str(exc),
            )
            document.bots.add(*bots)
            return UploadResult(name, "failed", f"File {name}: {exc}", document)
        # Earlier refused uploads of this name are superseded by a readable one.
        KnowledgeDocument.objects.for_company(company).filter(name=name, file="").delete()
        previous = (KnowledgeDocument.objects.for_company(company).select_for_update()
                    .filter(name=name).exclude(file="").order_by("-created_at").first())
        if previous is not None:
            old_file = previous.file.name
            previous.content_hash = content_hash
            previous.size_bytes = len(data)
            previous.file_type = file_type
            previous.status, previous.error, previous.progress = Status.PENDING, "", 0
            previous.file.save(storage_name(name), ContentFile(data), save=False)
            previous.save()
            previous.bots.add(*bots)
            if old_file and old_file != previous.file.name:
                storage = previous.file.storage
                transaction.on_commit(lambda: storage.delete(old_file))
            queue_ingestion(previous)
            return UploadResult(name, "replaced", f"File {name}: new version queued; it replaces the old one when ready.",
                                previous)
        document = KnowledgeDocument(company=company, name=name, content_hash=content_hash, size_bytes=len(data),
                                     file_type=file_type)
        document.file.save(storage_name(name), ContentFile(data), save=False)
        document.save()
        document.bots.add(*bots)
        queue_ingestion(document)
        return UploadResult(name, "queued", f"File {name}: queued for ingestion.", document)


def upload_documents(company: Company, files, bots=()) -> list[UploadResult]:
    """Upload several files: ``files`` are Django UploadedFiles or (name, bytes) pairs."""
    results = []
    for item in files:
        if isinstance(item, tuple):
            name, data = item
        else:
            if item.size is not None and item.size > max_upload_bytes():
                results.append(UploadResult(item.name, "rejected", f"File {item.name}: {item.size / 1048576:.1f} MB is "
                                            f"over the {max_upload_bytes() // 1048576} MB limit for knowledge files."))
                continue
            name, data = item.name, item.read()
        results.append(upload_document(company, name, data, bots))
    return results


def reingest(documents) -> int:
    """Queue the given documents (that have a file) for ingestion again; returns how many."""
    count = 0
    with transaction.atomic():
        for document in documents:
            if not document.file:
                continue
            KnowledgeDocument.objects.filter(pk=document.pk).update(status=Status.PENDING, error="", progress=0)
            queue_ingestion(document)
            count += 1
    return count


def delete_document(document: KnowledgeDocument) -> None:
    """Delete a document, its chunks and its stored file."""
    document.delete()


@transaction.atomic
def clear_bot_knowledge(bot: Bot) -> dict:
    """Unlink every document from ``bot``; documents no other bot uses are deleted with their chunks."""
    documents = list(KnowledgeDocument.objects.for_company(bot.company_id).filter(bots=bot))
    deleted = unlinked = 0
    for document in documents:
        document.bots.remove(bot)
        if document.bots.exists():
            unlinked += 1
        else:
            document.delete()
            deleted += 1
    return {"bot": bot.slug, "deleted": deleted, "unlinked": unlinked}
