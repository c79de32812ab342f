"""Paraphrased questions find their answer among the top 5 passages (real MiniLM, real pgvector)."""

from pathlib import Path
from unittest import mock

import pytest

from knowledge.evaluation import load_questions, recall_at_k
from knowledge.ingest import ingest
from knowledge.services import upload_document

DATA = Path(__file__).parent / "data"


@pytest.mark.models
@pytest.mark.django_db
def test_recall_at_5_on_the_shipped_question_set(bot_a, embedder):
    with mock.patch("knowledge.services.queue_ingestion"):
        result = upload_document(bot_a.company, "salon_handbook.md", (DATA / "salon_handbook.md").read_bytes(), [bot_a])
    document = ingest(result.document.pk)
    assert document.status == "ready" and document.chunk_count >= 30  # more passages than the top 5
    recall, misses = recall_at_k(bot_a, load_questions(DATA / "questions.json"), k=5)
    assert recall >= 0.95, misses
