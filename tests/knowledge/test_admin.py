"""Staff upload several files in admin and see only their own companies' documents."""

from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge.models import KnowledgeDocument
from knowledge.services import upload_document

pytestmark = pytest.mark.django_db

ADD = reverse("admin:knowledge_knowledgedocument_add")
LIST = reverse("admin:knowledge_knowledgedocument_changelist")


def test_multi_file_upload_queues_valid_files_and_records_refused_ones(client_a, bot_a):
    files = [SimpleUploadedFile("prices.txt", b"Prices\n\nA cleaning costs 80 euros."),
             SimpleUploadedFile("faq.md", b"# FAQ\n\nWe speak English and German."),
             SimpleUploadedFile("logo.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)]
    with mock.patch("knowledge.services.queue_ingestion") as queue:
        response = client_a.post(ADD, {"company": bot_a.company_id, "bots": [bot_a.pk], "files": files}, follow=True)
    assert response.status_code == 200
    assert queue.call_count == 2
    documents = {d.name: d for d in KnowledgeDocument.objects.all()}
    assert documents["prices.txt"].status == "pending" and documents["faq.md"].file_type == "md"
    assert documents["logo.pdf"].status == "failed" and "PNG image" in documents["logo.pdf"].error
    assert not documents["logo.pdf"].file
    assert all(list(d.bots.all()) == [bot_a] for d in documents.values())
    page = response.content.decode()
    assert "File prices.txt: queued for ingestion." in page and "File logo.pdf: It is a PNG image" in page


def test_oversized_file_is_refused_before_anything_is_stored(client_a, bot_a, settings):
    settings.KNOWLEDGE_MAX_UPLOAD_MB = 1
    big = SimpleUploadedFile("big.txt", b"a" * (1024 * 1024 + 1))
    response = client_a.post(ADD, {"company": bot_a.company_id, "files": [big]}, follow=True)
    assert "over the 1 MB limit" in response.content.decode()
    assert not KnowledgeDocument.objects.exists()


def test_upload_form_offers_only_own_companies_and_bots(client_a, bot_a, bot_b):
    page = client_a.get(ADD).content.decode()
    assert bot_a.name in page and bot_b.name not in page and bot_b.company.name not in page
    with mock.patch("knowledge.services.queue_ingestion"):
        response = client_a.post(ADD, {"company": bot_b.company_id, "bots": [bot_b.pk],
                                       "files": [SimpleUploadedFile("x.txt", b"hello there")]})
    assert response.status_code == 200  # the form is shown again with errors
    assert "Select a valid choice" in response.content.decode()
    assert not KnowledgeDocument.objects.exists()


def test_list_shows_status_progress_and_error_of_own_company_only(client_a, bot_a, bot_b):
    with mock.patch("knowledge.services.queue_ingestion"):
        mine = upload_document(bot_a.company, "empty.txt", b"", [bot_a]).document
        theirs = upload_document(bot_b.company, "beta-secret.txt", b"Beta only", [bot_b]).document
    page = client_a.get(LIST).content.decode()
    assert "empty.txt" in page and "The file is empty." in page and "Failed" in page and "<progress" in page
    assert "beta-secret.txt" not in page
    assert client_a.get(reverse("admin:knowledge_knowledgedocument_change", args=[theirs.pk])).status_code == 302
    assert client_a.get(reverse("admin:knowledge_knowledgedocument_change", args=[mine.pk])).status_code == 200


def test_actions_reingest_and_clear_filtered_bot(client_a, bot_a):
    with mock.patch("knowledge.services.queue_ingestion") as queue:
        document = upload_document(bot_a.company, "hours.txt", b"Hours\n\nOpen at nine.", [bot_a]).document
        KnowledgeDocument.objects.filter(pk=document.pk).update(status="failed", error="boom")
        client_a.post(LIST, {"action": "reingest_action", "_selected_action": [document.pk]})
        assert queue.call_count == 2
    assert KnowledgeDocument.objects.get(pk=document.pk).status == "pending"
    response = client_a.post(LIST, {"action": "clear_bot_action", "_selected_action": [document.pk]}, follow=True)
    assert "Filter the list by a bot first" in response.content.decode()
    client_a.post(f"{LIST}?bots__id__exact={bot_a.pk}",
                  {"action": "clear_bot_action", "_selected_action": [document.pk]})
    assert not KnowledgeDocument.objects.exists()
