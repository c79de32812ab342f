"""Company documents and the embedded chunks bots answer from."""

from __future__ import annotations

from django.db import models
from pgvector.django import VectorField

from voicebot.models import Bot, Company, CompanyOwned
from voicebot.tenancy import CompanyScopedManager


def document_upload_to(instance: "KnowledgeDocument", filename: str) -> str:
    return f"knowledge/{instance.company_id}/{instance.content_hash[:2]}/{instance.content_hash}/{filename}"


class KnowledgeDocument(CompanyOwned):
    """One uploaded file of a company, served to the bots linked to it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="knowledge_documents")
    bots = models.ManyToManyField(
        Bot, blank=True, related_name="knowledge_documents", help_text="The bots that answer from this document."
    )
    name = models.CharField(max_length=255, help_text="The uploaded file's name; uploading the same name replaces it.")
    file = models.FileField(upload_to=document_upload_to, max_length=500, blank=True,
                            help_text="Empty when the upload was refused (see error).")
    file_type = models.CharField(max_length=16, blank=True, help_text="Detected from the content: pdf, docx, txt...")
    size_bytes = models.PositiveBigIntegerField(default=0)
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the file: the same file twice is one document.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True, help_text="Why ingestion failed, in words staff can act on.")
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of ingestion done.")
    pages = models.PositiveIntegerField(null=True, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=200, blank=True, help_text="The model its chunks were embedded with.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ingested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["company", "content_hash"], name="knowledge_doc_hash_unique_per_company"),
        ]
        indexes = [models.Index(fields=["company", "name"])]

    def __str__(self) -> str:
        return self.name


class KnowledgeChunk(models.Model):
    """A passage of a document with its embedding; written all at once when ingestion succeeds.

    The vector column has no fixed dimension so that a model change can be
    re-embedded in place; each dimension in use gets its own partial HNSW
    index (``knowledge.vector_index``), which searches hit through
    ``embedding::vector(N)``.
    """

    document = models.ForeignKey(KnowledgeDocument, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField(help_text="Order of the chunk in its document.")
    text = models.TextField()
    embedding = VectorField()
    embedding_model = models.CharField(max_length=200)
    embedding_dim = models.PositiveSmallIntegerField()
    page = models.PositiveIntegerField(null=True, blank=True)
    section = models.CharField(max_length=500, blank=True)
    token_count = models.PositiveIntegerField(default=0)

    company_path = "document__company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["document", "position"]
        constraints = [
            models.UniqueConstraint(fields=["document", "position"], name="knowledge_chunk_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.document.name} #{self.position}"
