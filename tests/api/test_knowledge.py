"""Knowledge through the API: upload to a bot, list, delete, ingest again, search as the bot does.

The first test is end to end: a text file uploaded through the API is ingested by the real
Celery worker into pgvector and then found by the search endpoint. The others need no
worker (uploads queue their ingestion on commit, which a test's transaction never reaches).
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import KnowledgeChunk, KnowledgeDocument
from knowledge.services import upload_document
from tests.api.conftest import assert_error
from tests.waiting import wait_until

PARKING = (b"Parking\n\nThere are four free parking spaces behind the clinic, reached from Elm Street.\n\n"
           b"Opening hours\n\nWe are open Monday to Friday from 8 am to 6 pm.\n")
PRICES = b"Prices\n\nA cleaning costs 80 euros. A filling costs 120 euros.\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def upload(client, slug, *files, field="files"):
    body = {field: [SimpleUploadedFile(name, data) for name, data in files]}
    return client.post(f"/api/v1/bots/{slug}/knowledge/", body, format="multipart")


def status_of(document_id):
    return KnowledgeDocument.objects.filter(pk=document_id).values_list("status", flat=True).first()


# --- end to end: API upload -> real worker -> pgvector -> API search --------------------------------------

@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_uploaded_text_is_ingested_by_the_worker_and_found_by_search(celery_worker_process, api_a, bot_a, bot_b):
    response = upload(api_a, "alpha-desk", ("parking.txt", PARKING), ("prices.txt", PRICES))
    assert response.status_code == 201, response.json()
    entry, prices = response.json()["results"]
    assert entry["outcome"] == prices["outcome"] == "queued"
    assert entry["document"]["status"] in ("pending", "processing")
    document_id = entry["document"]["id"]
    assert entry["document"]["bots"] == ["alpha-desk"]

    wait_until(lambda: {status_of(document_id), status_of(prices["document"]["id"])} <= {"ready", "failed"},
               timeout=120, what="the documents' ingestion")
    detail = api_a.get(f"/api/v1/knowledge/{document_id}/").json()
    assert detail["status"] == "ready", detail["error"]
    assert detail["chunk_count"] == KnowledgeChunk.objects.filter(document_id=document_id).count() > 0
    assert detail["progress"] == 100 and detail["ingested_at"] and detail["file_type"] == "txt"

    found = api_a.post("/api/v1/bots/alpha-desk/knowledge/search/", {"query": "Where can I park my car?"},
                       format="json")
    assert found.status_code == 200, found.json()
    body = found.json()
    assert body["query"] == "Where can I park my car?"
    assert (body["top_k"], body["threshold"]) == (bot_a.knowledge_top_k, bot_a.knowledge_score_threshold)
    best = body["results"][0]
    assert "parking spaces behind the clinic" in best["text"]
    assert best["document"] == document_id and best["document_name"] == "parking.txt"
    assert best["section"] == "Parking" and 0.3 <= best["score"] <= 1
    assert [r["score"] for r in body["results"]] == sorted((r["score"] for r in body["results"]), reverse=True)
    assert status_of(prices["document"]["id"]) == "ready"
    # top_k and threshold of the request replace the bot's
    def names(**request):
        found = api_a.post("/api/v1/bots/alpha-desk/knowledge/search/", {"query": "parking", **request},
                           format="json")
        return [r["document_name"] for r in found.json()["results"]]

    chunks = KnowledgeChunk.objects.filter(document__bots=bot_a).count()
    assert chunks >= 3  # parking.txt's two sections and prices.txt
    everything = names(threshold=0, top_k=20)
    assert len(everything) == chunks and everything[0] == "parking.txt" and "prices.txt" in everything
    assert names(threshold=0, top_k=1) == ["parking.txt"]
    assert api_a.post("/api/v1/bots/alpha-desk/knowledge/search/", {"query": "parking", "threshold": 1},
                      format="json").json()["results"] == []
    # another company's bot finds none of it
    assert api_a.post("/api/v1/bots/beta-desk/knowledge/search/", {"query": "parking"},
                      format="json").status_code == 404

    # ingested again through the API: pending, then ready again with its chunks
    again = api_a.post(f"/api/v1/knowledge/{document_id}/reingest/")
    assert again.status_code == 200 and again.json()["status"] == "pending"
    wait_until(lambda: status_of(document_id) == "ready", timeout=120, what="the document's second ingestion")
    assert KnowledgeChunk.objects.filter(document_id=document_id).exists()

    # deleted through the API: the bot finds nothing any more
    assert api_a.delete(f"/api/v1/knowledge/{document_id}/").status_code == 204
    assert not KnowledgeChunk.objects.filter(document_id=document_id).exists()
    assert api_a.post("/api/v1/bots/alpha-desk/knowledge/search/", {"query": "Where can I park my car?"},
                      format="json").json()["results"] == []


# --- upload ---------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_several_files_at_once_each_with_its_outcome(api_a, bot_a, company_a):
    response = upload(api_a, "alpha-desk", ("parking.txt", PARKING), ("logo.pdf", PNG),
                      ("setup.exe", b"MZ\x90\x00program"), ("empty.txt", b""), ("copy-of-parking.txt", PARKING))
    assert response.status_code == 201, response.json()
    results = response.json()["results"]
    assert [(r["name"], r["outcome"]) for r in results] == [
        ("parking.txt", "queued"), ("logo.pdf", "failed"), ("setup.exe", "failed"), ("empty.txt", "failed"),
        ("copy-of-parking.txt", "duplicate")]
    queued, disguised, unsupported, empty, duplicate = results
    assert queued["document"]["status"] == "pending" and queued["document"]["bots"] == ["alpha-desk"]
    assert queued["document"]["size_bytes"] == len(PARKING) and queued["document"]["file_type"] == "txt"
    assert disguised["document"]["status"] == "failed" and "It is a PNG image" in disguised["document"]["error"]
    assert "It is a PNG image" in disguised["message"]
    assert "'.exe' are not supported" in unsupported["document"]["error"]
    assert "The file is empty" in empty["document"]["error"]
    assert duplicate["document"]["id"] == queued["document"]["id"] and "already uploaded" in duplicate["message"]
    stored = KnowledgeDocument.objects.get(pk=disguised["document"]["id"])
    assert stored.company == company_a and not stored.file and list(stored.bots.all()) == [bot_a]
    assert KnowledgeDocument.objects.filter(company=company_a).count() == 4

    # Nothing new: 200. The same bytes under `file` (the single-file field) are the same document.
    response = upload(api_a, "alpha-desk", ("parking-again.txt", PARKING), field="file")
    assert response.status_code == 200
    assert [r["outcome"] for r in response.json()["results"]] == ["duplicate"]
    # A new version of a document of the same name replaces it (the same document, pending again).
    response = upload(api_a, "alpha-desk", ("parking.txt", PARKING + b"\nBicycles go in the yard.\n"))
    assert response.status_code == 200
    [replaced] = response.json()["results"]
    assert replaced["outcome"] == "replaced" and replaced["document"]["id"] == queued["document"]["id"]


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_rejected_and_not_stored(api_a, bot_a, settings):
    settings.KNOWLEDGE_MAX_UPLOAD_MB = 1
    big = b"Prices\n\n" + b"A cleaning costs 80 euros. " * 45000  # over 1 MB
    response = upload(api_a, "alpha-desk", ("big.txt", big), ("small.txt", b"Small\n\nA small file.\n"))
    assert response.status_code == 201
    rejected, small = response.json()["results"]
    assert rejected["outcome"] == "rejected" and rejected["document"] is None
    assert "over the 1 MB limit" in rejected["message"]
    assert small["outcome"] == "queued"
    assert list(KnowledgeDocument.objects.values_list("name", flat=True)) == ["small.txt"]
    only_big = upload(api_a, "alpha-desk", ("big.txt", big))
    assert only_big.status_code == 200 and only_big.json()["results"][0]["outcome"] == "rejected"


@pytest.mark.django_db
def test_a_long_file_name_is_kept_on_the_document_and_shortened_on_disk(api_a, bot_a):
    name = "料金表と予約の案内 " * 12 + ".txt"  # 124 characters, 340 bytes in UTF-8: more than a file system takes
    for version in (b"Prices\n\nA cleaning costs 80 euros.\n", b"Prices\n\nA cleaning costs 90 euros.\n"):
        response = upload(api_a, "alpha-desk", (name, version))
        assert response.status_code in (200, 201), response.json()
        [entry] = response.json()["results"]
        assert entry["outcome"] in ("queued", "replaced") and entry["document"]["name"] == name
    document = KnowledgeDocument.objects.get(name=name)
    stored = document.file.name.rsplit("/", 1)[1]
    assert stored.endswith(".txt") and len(stored.encode()) < 255 and document.file.storage.exists(document.file.name)


@pytest.mark.django_db
def test_an_upload_without_files_names_the_field(api_a, bot_a):
    url = "/api/v1/bots/alpha-desk/knowledge/"
    assert_error(api_a.post(url, {}, format="multipart"), 400, "invalid", field="files")
    assert_error(api_a.post(url, {"files": "not a file"}, format="multipart"), 400, "invalid", field="files")
    assert_error(api_a.post(url, {"files": ["a.txt"]}, format="json"), 415, "unsupported_media_type")
    assert not KnowledgeDocument.objects.exists()


# --- lists, detail, delete, reingest ----------------------------------------------------------------------

@pytest.fixture
def documents(bot_a, bot_b):
    """Company A: a queued document of bot A, a failed one, one of no bot; company B: one of bot B."""
    from voicebot.models import Bot

    other_a = Bot.objects.create(company=bot_a.company, name="Alpha night line", slug="alpha-night")
    return {
        "a": upload_document(bot_a.company, "prices.txt", b"Prices\n\nA cleaning costs 80 euros.\n", [bot_a]).document,
        "a_failed": upload_document(bot_a.company, "logo.pdf", PNG, [bot_a]).document,
        "a_night": upload_document(bot_a.company, "night.txt", b"Night\n\nCall 112 at night.\n", [other_a]).document,
        "b": upload_document(bot_b.company, "salon.txt", b"Salon\n\nA manicure costs 25 dollars.\n", [bot_b]).document,
    }


def ids(response):
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.django_db
def test_lists_are_scoped_and_filtered(api_a, agency_api, documents, company_a, company_b):
    a, failed, night, b = documents["a"], documents["a_failed"], documents["a_night"], documents["b"]
    assert ids(api_a.get("/api/v1/bots/alpha-desk/knowledge/")) == {a.pk, failed.pk}
    assert ids(api_a.get("/api/v1/bots/alpha-desk/knowledge/?status=failed")) == {failed.pk}
    assert ids(api_a.get("/api/v1/knowledge/")) == {a.pk, failed.pk, night.pk}
    assert ids(api_a.get("/api/v1/knowledge/?bot=alpha-night")) == {night.pk}
    assert ids(api_a.get("/api/v1/knowledge/?status=pending&bot=alpha-desk")) == {a.pk}
    assert ids(api_a.get(f"/api/v1/knowledge/?company={company_a.pk}")) == {a.pk, failed.pk, night.pk}
    # none of company B's, however asked
    assert ids(api_a.get("/api/v1/knowledge/?bot=beta-desk")) == set()
    assert ids(api_a.get(f"/api/v1/knowledge/?company={company_b.pk}")) == set()
    assert ids(agency_api.get("/api/v1/knowledge/")) == {a.pk, failed.pk, night.pk, b.pk}
    assert ids(agency_api.get(f"/api/v1/knowledge/?company={company_b.pk}")) == {b.pk}
    # an agency key uploads for any company's bot: stored for the bot's company
    stored = upload(agency_api, "beta-desk", ("nails.txt", b"Nails\n\nGel polish costs 35 dollars.\n"))
    assert stored.status_code == 201 and stored.json()["results"][0]["document"]["company"] == company_b.pk

    row = api_a.get(f"/api/v1/knowledge/{failed.pk}/").json()
    assert set(row) == {"id", "company", "name", "file_type", "size_bytes", "status", "progress", "error", "pages",
                        "chunk_count", "bots", "created_at", "updated_at", "ingested_at"}
    assert row["status"] == "failed" and "PNG image" in row["error"] and row["bots"] == ["alpha-desk"]

    assert_error(api_a.get("/api/v1/knowledge/?status=done"), 400, "invalid", field="status")
    assert_error(api_a.get("/api/v1/knowledge/?company=first"), 400, "invalid", field="company")
    assert_error(api_a.get("/api/v1/bots/alpha-desk/knowledge/?status=done"), 400, "invalid", field="status")
    page = api_a.get("/api/v1/knowledge/?limit=1").json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"]


@pytest.mark.django_db
def test_company_a_key_cannot_reach_company_b_knowledge(api_a, documents, bot_b):
    b = documents["b"]
    assert_error(api_a.get("/api/v1/bots/beta-desk/knowledge/"), 404, "not_found")
    assert_error(upload(api_a, "beta-desk", ("mine.txt", b"Mine\n\nIn B's bot?\n")), 404, "not_found")
    assert_error(api_a.post("/api/v1/bots/beta-desk/knowledge/search/", {"query": "manicure"}, format="json"),
                 404, "not_found")
    assert_error(api_a.get("/api/v1/bots/no-such-bot/knowledge/"), 404, "not_found")
    for method, url in [("get", f"/api/v1/knowledge/{b.pk}/"), ("delete", f"/api/v1/knowledge/{b.pk}/"),
                        ("post", f"/api/v1/knowledge/{b.pk}/reingest/")]:
        assert_error(getattr(api_a, method)(url), 404, "not_found")
    assert_error(api_a.get("/api/v1/knowledge/99999999999999999999/"), 404, "not_found")
    assert_error(api_a.get("/api/v1/knowledge/abc/"), 404, "not_found")
    b.refresh_from_db()
    assert b.status == "pending" and list(b.bots.all()) == [bot_b]
    assert not KnowledgeDocument.objects.filter(name="mine.txt").exists()


@pytest.mark.django_db
def test_read_only_key_lists_and_searches_but_cannot_write(readonly_a, documents):
    a = documents["a"]
    assert ids(readonly_a.get("/api/v1/bots/alpha-desk/knowledge/")) == {a.pk, documents["a_failed"].pk}
    assert readonly_a.get(f"/api/v1/knowledge/{a.pk}/").status_code == 200
    searched = readonly_a.post("/api/v1/bots/alpha-desk/knowledge/search/", {"query": "cleaning"}, format="json")
    assert searched.status_code == 200 and searched.json()["results"] == []  # nothing ingested yet
    assert_error(upload(readonly_a, "alpha-desk", ("new.txt", b"New\n\nA new file.\n")), 403, "permission_denied")
    assert_error(readonly_a.delete(f"/api/v1/knowledge/{a.pk}/"), 403, "permission_denied")
    assert_error(readonly_a.post(f"/api/v1/knowledge/{a.pk}/reingest/"), 403, "permission_denied")
    assert KnowledgeDocument.objects.filter(pk=a.pk).exists()
    assert not KnowledgeDocument.objects.filter(name="new.txt").exists()


@pytest.mark.django_db
def test_delete_removes_the_document_and_its_file(api_a, documents, django_capture_on_commit_callbacks):
    a = documents["a"]
    storage, name = a.file.storage, a.file.name
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_a.delete(f"/api/v1/knowledge/{a.pk}/").status_code == 204
    assert not KnowledgeDocument.objects.filter(pk=a.pk).exists()
    assert not storage.exists(name)
    assert_error(api_a.get(f"/api/v1/knowledge/{a.pk}/"), 404, "not_found")


@pytest.mark.django_db
def test_reingest_queues_the_document_again(api_a, documents, django_capture_on_commit_callbacks):
    a = documents["a"]
    KnowledgeDocument.objects.filter(pk=a.pk).update(status="ready", progress=100, error="")
    with django_capture_on_commit_callbacks() as queued:
        response = api_a.post(f"/api/v1/knowledge/{a.pk}/reingest/")
    assert response.status_code == 200
    assert response.json()["id"] == a.pk and response.json()["status"] == "pending"
    assert response.json()["progress"] == 0 and len(queued) == 1  # ingestion queued once the request commits
    # a refused upload kept no file: nothing to ingest again
    failed = documents["a_failed"]
    error = assert_error(api_a.post(f"/api/v1/knowledge/{failed.pk}/reingest/"), 409, "conflict", field="file")
    assert "upload the file again" in error["message"]
    failed.refresh_from_db()
    assert failed.status == "failed"


# --- search validation ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_search_validates_its_input(api_a, bot_a):
    url = "/api/v1/bots/alpha-desk/knowledge/search/"
    assert_error(api_a.post(url, {"query": ""}, format="json"), 400, "invalid", field="query")
    assert_error(api_a.post(url, {"query": "   "}, format="json"), 400, "invalid", field="query")
    assert_error(api_a.post(url, {}, format="json"), 400, "invalid", field="query")
    assert_error(api_a.post(url, {"query": "x" * 2001}, format="json"), 400, "invalid", field="query")
    for top_k in (0, 21, "many"):
        assert_error(api_a.post(url, {"query": "hours", "top_k": top_k}, format="json"), 400, "invalid",
                     field="top_k")
    for threshold in (-0.1, 1.5, "NaN", "high"):
        assert_error(api_a.post(url, {"query": "hours", "threshold": threshold}, format="json"), 400, "invalid",
                     field="threshold")
    assert_error(api_a.post(url, "query=hours", content_type="application/x-www-form-urlencoded"), 415,
                 "unsupported_media_type")
    assert_error(api_a.post(url, ["hours"], format="json"), 400, "invalid")
    # a bot without ready documents: nothing found, the bot's own settings reported
    bot_a.knowledge_top_k, bot_a.knowledge_score_threshold, bot_a.use_knowledge = 5, 0.5, False
    bot_a.save()
    body = api_a.post(url, {"query": "hours"}, format="json").json()
    assert body == {"query": "hours", "top_k": 5, "threshold": 0.5, "use_knowledge": False, "results": []}
