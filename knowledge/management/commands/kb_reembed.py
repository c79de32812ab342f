"""Rebuild chunks and embeddings made with another model than the configured one."""

import json

from django.core.management.base import BaseCommand
from django.db.models import Q

from knowledge.embeddings import get_embedder
from knowledge.ingest import ingest
from knowledge.models import KnowledgeChunk, KnowledgeDocument
from knowledge.services import reingest


class Command(BaseCommand):
    help = ("Re-chunk and re-embed every ready document whose chunks were made with another embedding model "
            "(chunk size follows the model's window). In this process, or through Celery with --queue.")

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Rebuild every document, even current ones.")
        parser.add_argument("--queue", action="store_true", help="Queue through Celery instead of running here.")

    def handle(self, *args, all: bool, queue: bool, **options):
        model = get_embedder().name
        documents = KnowledgeDocument.objects.exclude(file="").filter(status=KnowledgeDocument.Status.READY)
        if not all:
            stale = KnowledgeChunk.objects.exclude(embedding_model=model).values("document_id")
            documents = documents.filter(~Q(embedding_model=model) | Q(pk__in=stale))
        documents = list(documents.distinct())
        if queue:
            self.stdout.write(json.dumps({"model": model, "queued": reingest(documents)}))
            return
        for document in documents:
            result = ingest(document.pk)
            self.stdout.write(json.dumps({"document": document.pk, "name": document.name, "status": result.status,
                                          "chunks": result.chunk_count, "model": result.embedding_model,
                                          "error": result.error or None}))
        self.stdout.write(json.dumps({"model": model, "rebuilt": len(documents)}))
