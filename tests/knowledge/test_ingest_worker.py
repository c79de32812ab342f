"""Uploads go through a real Celery worker on Redis into the real PostgreSQL with pgvector."""

import pytest

from knowledge.models import KnowledgeChunk, KnowledgeDocument
from knowledge.sample_docs import pdf_bytes
from knowledge.search import search
from knowledge.services import upload_document
from tests.knowledge.helpers import wait_final

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

EXPECTED_PAGES = {"pdf": 2, "docx": 2, "txt": 2, "md": 1, "html": 1, "csv": 1}


def test_every_format_ingests_with_page_and_section(celery_worker_process, bot_a, sample_files):
    results = {kind: upload_document(bot_a.company, name, data, [bot_a]) for kind, (name, data) in sample_files.items()}
    assert {r.outcome for r in results.values()} == {"queued"}
    for kind, result in results.items():
        document = wait_final(result.document.pk)
        assert document.status == "ready", (kind, document.error)
        assert document.pages == EXPECTED_PAGES[kind], kind
        chunks = list(document.chunks.order_by("position"))
        assert document.chunk_count == len(chunks) > 0
        assert all(c.embedding_model == "all-minilm-l6-v2" and c.embedding_dim == 384 for c in chunks)
        if kind == "csv":
            assert chunks[0].section == "salon prices" and "service: manicure; price: 25 dollars." in chunks[0].text
            continue
        by_section = {c.section.capitalize(): c for c in chunks}  # TXT headings are in capitals
        assert set(by_section) == {"Price list", "Opening hours"}, kind
        assert "Manicure costs 25 dollars" in by_section["Price list"].text
        if EXPECTED_PAGES[kind] == 2:
            assert by_section["Price list"].page == 1 and by_section["Opening hours"].page == 2, kind
    best = search(bot_a, "what do you charge to paint my toenails?", top_k=3, threshold=0.0)[0]
    assert "pedicure" in best.text.lower() and best.section in ("Price list", "salon prices")


@pytest.mark.parametrize("name,data,message", [
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage without xref or trailer\n", "The PDF is damaged"),
    ("empty.txt", b"", "The file is empty"),
    ("photo.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "It is a PNG image"),
    ("scan.pdf", pdf_bytes([[]]), "no text layer"),
])
def test_bad_files_fail_with_a_reason_and_leave_nothing(celery_worker_process, bot_a, name, data, message):
    result = upload_document(bot_a.company, name, data, [bot_a])
    document = wait_final(result.document.pk)
    assert document.status == "failed"
    assert message in document.error
    assert document.chunk_count == 0
    assert not KnowledgeChunk.objects.filter(document=document).exists()


def test_same_file_twice_is_one_document_and_a_new_version_replaces(celery_worker_process, bot_a, company_a):
    old = b"Parking\n\nThere are four free parking spaces behind the salon.\n"
    first = upload_document(company_a, "parking.txt", old, [bot_a])
    wait_final(first.document.pk)
    again = upload_document(company_a, "copy-of-parking.txt", old, [bot_a])
    assert again.outcome == "duplicate" and again.document.pk == first.document.pk
    assert "already uploaded" in again.message

    new = b"Parking\n\nPark in the public garage on Elm Street; we refund the ticket.\n"
    replaced = upload_document(company_a, "parking.txt", new, [bot_a])
    assert replaced.outcome == "replaced" and replaced.document.pk == first.document.pk
    document = wait_final(replaced.document.pk)
    assert document.status == "ready"
    texts = " ".join(KnowledgeChunk.objects.filter(document=document).values_list("text", flat=True))
    assert "Elm Street" in texts and "four free parking" not in texts
    assert KnowledgeDocument.objects.for_company(company_a).count() == 1
