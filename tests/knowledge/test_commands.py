"""kb_ingest queues through the Celery worker and waits; kb_search and kb_clear print JSON."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from knowledge.models import KnowledgeChunk, KnowledgeDocument
from knowledge.sample_docs import pdf_bytes


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ingest_search_and_clear_from_the_command_line(celery_worker_process, bot_a, tmp_path):
    price_list = tmp_path / "price-list.pdf"
    price_list.write_bytes(pdf_bytes([[("h", "Treatments"), ("p", "Teeth whitening costs 350 euros per session.")],
                                      [("h", "Check-ups"), ("p", "A check-up with cleaning costs 90 euros.")]]))
    fake = tmp_path / "fake.docx"
    fake.write_bytes(b"not a word file at all")
    out = StringIO()
    with pytest.raises(SystemExit) as exit_code:
        call_command("kb_ingest", "--bot", bot_a.slug, str(price_list), str(fake), stdout=out)
    assert exit_code.value.code == 1  # one file failed
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["status"] == "ready" and lines[0]["chunks"] == 2 and lines[0]["pages"] == 2
    assert lines[1]["status"] == "failed" and "content is plain text" in lines[1]["error"]

    out = StringIO()
    call_command("kb_search", "--bot", bot_a.slug, "--top-k", "1", "--json", "how much to make my teeth whiter?",
                 stdout=out)
    [hit] = json.loads(out.getvalue())
    assert set(hit) == {"text", "score", "document", "page", "section"}
    assert hit["document"] == "price-list.pdf" and hit["page"] == 1 and hit["section"] == "Treatments"
    assert "350 euros" in hit["text"]

    out = StringIO()
    call_command("kb_clear", "--bot", bot_a.slug, stdout=out)
    assert json.loads(out.getvalue())["deleted"] == 2
    assert not KnowledgeDocument.objects.exists() and not KnowledgeChunk.objects.exists()
