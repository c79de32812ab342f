"""A bot retrieves only its own company's linked documents; delete and clear leave no orphans."""

from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.db import transaction

from knowledge.ingest import ingest
from knowledge.models import KnowledgeChunk, KnowledgeDocument
from knowledge.search import search
from knowledge.services import clear_bot_knowledge, upload_document
from voicebot.models import Bot

pytestmark = pytest.mark.django_db

ALPHA = b"Implants\n\nA dental implant at Alpha costs 1900 euros including the crown.\n"
BETA = b"Colour\n\nA full hair colour at Beta costs 80 dollars, highlights 120 dollars.\n"


def ingested(company, name, data, bots):
    with mock.patch("knowledge.services.queue_ingestion"):
        result = upload_document(company, name, data, bots)
    document = ingest(result.document.pk)
    assert document.status == "ready", document.error
    return document


def test_one_company_never_retrieves_another_companys_chunks(bot_a, bot_b, embedder):
    ingested(bot_a.company, "implants.txt", ALPHA, [bot_a])
    ingested(bot_b.company, "colour.txt", BETA, [bot_b])
    # Identical content in both companies stays two separate documents.
    ingested(bot_b.company, "implants.txt", ALPHA, [bot_b])
    for question in ("How much is a dental implant?", "price of hair colour"):
        a_docs = {p.document_id for p in search(bot_a, question, top_k=10, threshold=0.0)}
        b_docs = {p.document_id for p in search(bot_b, question, top_k=10, threshold=0.0)}
        assert a_docs <= set(KnowledgeDocument.objects.for_company(bot_a.company).values_list("pk", flat=True))
        assert b_docs <= set(KnowledgeDocument.objects.for_company(bot_b.company).values_list("pk", flat=True))
        assert a_docs and b_docs
    assert all("Beta" not in p.text for p in search(bot_a, "hair colour highlights Beta", top_k=10, threshold=0.0))


def test_a_bot_sees_only_documents_linked_to_it(bot_a, company_a, embedder):
    other = Bot.objects.create(company=company_a, name="Alpha night line", slug="alpha-night")
    ingested(company_a, "implants.txt", ALPHA, [bot_a])
    assert search(other, "dental implant price", top_k=5, threshold=0.0) == []
    assert search(bot_a, "dental implant price", top_k=5, threshold=0.0)


def test_a_document_cannot_serve_another_companys_bot(bot_a, bot_b):
    with mock.patch("knowledge.services.queue_ingestion"):
        document = upload_document(bot_a.company, "implants.txt", ALPHA, [bot_a]).document
    with pytest.raises(ValueError, match="own company"), transaction.atomic():
        document.bots.add(bot_b)
    with pytest.raises(ValueError, match="own company"), transaction.atomic():
        bot_b.knowledge_documents.add(document)
    assert not document.bots.filter(pk=bot_b.pk).exists()
    with pytest.raises(ValueError, match="another company"):
        upload_document(bot_a.company, "x.txt", b"text", [bot_b])


def test_threshold_and_top_k(bot_a, embedder):
    ingested(bot_a.company, "implants.txt", ALPHA, [bot_a])
    assert search(bot_a, "dental implant price", top_k=5, threshold=0.99) == []
    assert len(search(bot_a, "dental implant price", top_k=1, threshold=0.0)) == 1
    passage = search(bot_a, "dental implant price", top_k=1, threshold=0.0)[0]
    assert passage.document == "implants.txt" and passage.section == "Implants" and passage.page == 1
    assert 0.3 < passage.score <= 1.0


def test_delete_removes_chunks_and_file(bot_a, embedder):
    document = ingested(bot_a.company, "implants.txt", ALPHA, [bot_a])
    path = document.file.name
    assert default_storage.exists(path) and KnowledgeChunk.objects.filter(document=document).exists()
    with mock.patch("django.db.transaction.on_commit", side_effect=lambda fn, *a, **k: fn()):
        document.delete()
    assert not KnowledgeChunk.objects.filter(document_id=document.pk).exists()
    assert not default_storage.exists(path)
    assert search(bot_a, "dental implant price", top_k=5, threshold=0.0) == []


def test_clear_bot_deletes_its_own_documents_and_keeps_shared_ones(bot_a, company_a, embedder):
    other = Bot.objects.create(company=company_a, name="Alpha night line", slug="alpha-night")
    own = ingested(company_a, "implants.txt", ALPHA, [bot_a])
    shared = ingested(company_a, "hours.txt", b"Hours\n\nOpen daily from eight to eight.\n", [bot_a, other])
    assert clear_bot_knowledge(bot_a) == {"bot": "alpha-desk", "deleted": 1, "unlinked": 1}
    assert not KnowledgeDocument.objects.filter(pk=own.pk).exists()
    assert not KnowledgeChunk.objects.filter(document_id=own.pk).exists()
    assert search(bot_a, "when are you open", top_k=5, threshold=0.0) == []
    assert search(other, "when are you open", top_k=5, threshold=0.0)[0].document_id == shared.pk
    # No chunk anywhere points at a missing document.
    assert not KnowledgeChunk.objects.exclude(document__in=KnowledgeDocument.objects.all()).exists()


def test_the_hnsw_path_finds_what_the_exact_path_finds_and_stays_isolated(settings, bot_a, bot_b, embedder):
    ingested(bot_a.company, "implants.txt", ALPHA, [bot_a])
    ingested(bot_a.company, "hours.txt", b"Hours\n\nOpen daily from eight to eight.\n", [bot_a])
    ingested(bot_b.company, "colour.txt", BETA, [bot_b])
    question = "How much is a dental implant?"
    settings.KNOWLEDGE_EXACT_SEARCH_MAX = 10_000
    exact = search(bot_a, question, top_k=5, threshold=0.0)
    settings.KNOWLEDGE_EXACT_SEARCH_MAX = 0  # every bot through the HNSW index
    indexed = search(bot_a, question, top_k=5, threshold=0.0)
    assert [p.chunk_id for p in indexed] == [p.chunk_id for p in exact] and len(exact) == 2
    assert {p.document for p in search(bot_b, question, top_k=5, threshold=0.0)} == {"colour.txt"}
    from django.db import connection

    with connection.cursor() as cursor:  # the planner settings did not leak out of the search
        cursor.execute("SHOW enable_sort")
        assert cursor.fetchone()[0] == "on"


def test_search_takes_a_config_snapshot_as_well_as_a_bot(bot_a, bot_b, embedder):
    from types import SimpleNamespace

    ingested(bot_a.company, "implants.txt", ALPHA, [bot_a])
    snapshot = SimpleNamespace(id=bot_a.pk, company_id=bot_a.company_id)
    assert search(snapshot, "dental implant price", top_k=1, threshold=0.0)[0].document == "implants.txt"
    # A snapshot claiming another company finds nothing: documents are matched by company too.
    assert search(SimpleNamespace(id=bot_a.pk, company_id=bot_b.company_id), "dental implant", 5, 0.0) == []
