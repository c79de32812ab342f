"""The Ollama backend (its /v1/embeddings API on a local server) and rebuilding after a model change."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from unittest import mock

import numpy as np
import pytest
from django.core.management import call_command

from knowledge.embeddings import get_embedder, reset_embedder
from knowledge.ingest import ingest
from knowledge.models import KnowledgeChunk
from knowledge.search import search
from knowledge.services import upload_document
from knowledge.vector_index import index_name

pytestmark = pytest.mark.django_db

DOC = b"Whitening\n\nTeeth whitening costs 350 euros per session.\n\nHours\n\nWe open at eight every weekday.\n"


@pytest.fixture
def ollama_like_server(embedder):
    """An HTTP server speaking Ollama's /v1/embeddings, answering with 768-dimensional vectors.

    They come from the real MiniLM (each vector twice), so similarities are real ones.
    """
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            vectors = np.hstack([embedder.embed(body["input"])] * 2)
            payload = {"object": "list", "model": body["model"],
                       "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                                for i, v in enumerate(vectors)]}
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    server.shutdown()


def test_ollama_backend_and_kb_reembed_rebuild_when_the_model_changes(settings, bot_a, ollama_like_server):
    url, requests = ollama_like_server
    with mock.patch("knowledge.services.queue_ingestion"):
        document = upload_document(bot_a.company, "whitening.txt", DOC, [bot_a]).document
    assert ingest(document.pk).embedding_model == "all-minilm-l6-v2"

    settings.KNOWLEDGE_EMBEDDING_BACKEND = "ollama"
    settings.OLLAMA_BASE_URL = url
    settings.KNOWLEDGE_OLLAMA_MODEL = "nomic-embed-text"
    reset_embedder()
    try:
        assert get_embedder().dim == 768 and get_embedder().window == settings.KNOWLEDGE_OLLAMA_WINDOW
        # Chunks of the old model are not compared with vectors of the new one.
        assert search(bot_a, "how much is whitening", top_k=3, threshold=0.0) == []
        out = StringIO()
        call_command("kb_reembed", stdout=out)
        assert json.loads(out.getvalue().splitlines()[-1]) == {"model": "ollama:nomic-embed-text", "rebuilt": 1}
        chunks = KnowledgeChunk.objects.filter(document=document)
        assert {(c.embedding_model, c.embedding_dim) for c in chunks} == {("ollama:nomic-embed-text", 768)}
        assert all(r["model"] == "nomic-embed-text" for r in requests)
        best = search(bot_a, "how much is whitening", top_k=1, threshold=0.0)[0]
        assert "350 euros" in best.text and best.section == "Whitening"
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [index_name(768)])
            assert cursor.fetchone() is not None
        out = StringIO()
        call_command("kb_reembed", stdout=out)  # nothing left to rebuild
        assert json.loads(out.getvalue()) == {"model": "ollama:nomic-embed-text", "rebuilt": 0}
    finally:
        reset_embedder()


def test_ollama_unreachable_fails_the_document_with_the_reason(settings, bot_a):
    with mock.patch("knowledge.services.queue_ingestion"):
        document = upload_document(bot_a.company, "whitening.txt", DOC, [bot_a]).document
    settings.KNOWLEDGE_EMBEDDING_BACKEND = "ollama"
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    reset_embedder()
    try:
        result = ingest(document.pk)
    finally:
        reset_embedder()
    assert result.status == "failed"
    assert "Ollama embeddings at http://127.0.0.1:9/v1/embeddings" in result.error
    assert not KnowledgeChunk.objects.filter(document=document).exists()
