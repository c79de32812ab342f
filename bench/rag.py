"""Knowledge-base benchmark: ingestion throughput, search latency at 100k chunks, recall@5.

    .venv/bin/python bench/rag.py [--chunks 100000] [--pages 40] [--queries 300] [--keep]

Prints one JSON object per line, one figure each, then a summary line.

- Ingestion: a generated corpus of text pages (about 330 words each, as PDF
  and as TXT) runs through the same ``knowledge.ingest.ingest`` the Celery
  task runs (partition, chunk, embed in batches, bulk insert), in this process
  and after warm-up documents, so model loading and the first batch's buffer
  sizing (a worker pays them once) are not counted.
- Search: one bot linked to the shipped handbook (real embeddings) and to
  filler chunks up to ``--chunks`` in all, so the HNSW index and the bot
  filter see 100k candidates. The filler is 100k generated passages about
  other trades (logistics, IT, finance...) with salon words mixed in, each
  embedded for real by the bundled model (about 3 minutes here; ``--keep``
  keeps them for the next run); they are COPYed in and the HNSW index is
  built once over all rows. Each timing is a full
  ``search()`` call: query embedding + one SQL query. Questions cycle through
  the shipped set, with a distinct suffix per repetition so no cache helps.
- Recall@5: the shipped paraphrased questions (tests/knowledge/data) against
  the shipped handbook (the target), then again with the filler competing
  (the approximate HNSW search at 100k must still find them).

Uses the worktree's database under a company "bench-rag", deleted at the end
unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicebot.settings")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.db import connection  # noqa: E402

from knowledge.embeddings import get_embedder  # noqa: E402
from knowledge.evaluation import load_questions, recall_at_k  # noqa: E402
from knowledge.ingest import embed_in_batches, ingest  # noqa: E402
from knowledge.models import KnowledgeChunk, KnowledgeDocument  # noqa: E402
from knowledge.sample_docs import pdf_bytes, text_bytes  # noqa: E402
from knowledge.search import search  # noqa: E402
from knowledge.services import upload_document  # noqa: E402
from knowledge.vector_index import create_index_sql, drop_index_sql, ensure_index  # noqa: E402
from voicebot.models import Bot, Company  # noqa: E402

DATA = ROOT / "tests" / "knowledge" / "data"
WORDS = ("appointment stylist colour treatment price client booking salon towel scissors conditioner nail polish "
         "voucher receptionist morning evening weekday discount member product shampoo massage facial brush "
         "cut style wash dry curl straight fringe layer volume shine care skin oil cream mask wax brow lash "
         "team owner training hygiene towel chair mirror music coffee tea water card cash payment refund").split()


# Words of other trades' documents, mixed into the filler with the salon's own.
OFF_TOPIC = ("invoice shipment freight container warehouse pallet customs tariff ledger audit compliance "
             "server network firmware router kernel compiler database backup turbine engine valve pipeline "
             "voltage circuit contract clause liability insurance premium mortgage dividend portfolio "
             "tractor harvest irrigation fertiliser satellite antenna telescope orbit vaccine dosage").split()


def emit(name: str, value, unit: str = "", **extra) -> dict:
    line = {"name": name, "value": value, "unit": unit, **extra}
    print(json.dumps(line), flush=True)
    return line


def sentence(rng: random.Random, words=WORDS) -> str:
    words = rng.choices(words, k=rng.randint(8, 18))
    return " ".join(words).capitalize() + "."


def generated_pages(count: int, seed: int) -> list:
    """Pages of about 330 words: a heading and three paragraphs."""
    rng = random.Random(seed)
    pages = []
    for number in range(count):
        paragraphs = [" ".join(sentence(rng) for _ in range(8)) for _ in range(3)]
        pages.append([("h", f"Chapter {number + 1} {rng.choice(WORDS)}"), *[("p", p) for p in paragraphs]])
    return pages


def ingest_now(company, bot, name: str, data: bytes) -> KnowledgeDocument:
    with mock.patch("knowledge.services.queue_ingestion"):
        result = upload_document(company, name, data, [bot])
    document = ingest(result.document.pk)
    if document.status != "ready":
        raise SystemExit(f"{name}: {document.error}")
    return document


def bench_ingestion(company, bot, pages: int) -> list[dict]:
    # Warm-up at full size: onnxruntime sizes its buffers on the first big batch (about 0.6 s
    # once per process), and PDFium loads on the first PDF.
    ingest_now(company, bot, "warmup.txt", text_bytes(generated_pages(10, seed=1)))
    ingest_now(company, bot, "warmup.pdf", pdf_bytes(generated_pages(2, seed=2)))
    lines = []
    for kind, writer in (("pdf", pdf_bytes), ("txt", text_bytes)):
        runs = []  # three corpora of each kind: the median, as the machine is noisy
        for run in range(3):
            data = writer(generated_pages(pages, seed=100 * run + {"pdf": 11, "txt": 12}[kind]))
            started = time.perf_counter()
            document = ingest_now(company, bot, f"corpus-{run}.{kind}", data)
            runs.append((time.perf_counter() - started, document))
        seconds, document = sorted(runs, key=lambda r: r[0])[1]
        lines.append(emit(f"ingest_{kind}_pages_per_s", round(document.pages / seconds, 2), "pages/s",
                          target=">= 20", pages=document.pages, seconds=round(seconds, 2),
                          runs_pages_per_s=[round(d.pages / s, 2) for s, d in runs]))
        lines.append(emit(f"ingest_{kind}_chunks_per_s", round(document.chunk_count / seconds, 2), "chunks/s",
                          chunks=document.chunk_count,
                          mean_chunk_tokens=round(statistics.mean(
                              document.chunks.values_list("token_count", flat=True)), 1)))
    return lines


def filler_passage(number: int) -> str:
    """A generated passage of another trade's documents, salon words mixed in (distinct per number)."""
    rng = random.Random(number)
    vocabulary = OFF_TOPIC * 3 + WORDS
    return f"Section {number}. " + " ".join(sentence(rng, vocabulary) for _ in range(rng.randint(1, 2)))


def add_filler(company, bot, total: int) -> int:
    """Fill the bot's index up to ``total`` chunks of real embeddings of generated passages."""
    from pgvector.psycopg import register_vector

    have = KnowledgeChunk.objects.filter(document__bots=bot).count()
    missing = total - have
    if missing <= 0:
        return 0
    embedder = get_embedder()
    document = KnowledgeDocument.objects.create(company=company, name="filler", content_hash="filler" * 10,
                                                status="ready", embedding_model=embedder.name)
    document.bots.add(bot)
    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    started = time.perf_counter()
    embed_seconds = 0.0
    # Building the index once over all rows is far faster than growing it row by row.
    with connection.cursor() as cursor:
        cursor.execute(drop_index_sql(embedder.dim))
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY knowledge_knowledgechunk (document_id, position, text, embedding, embedding_model, embedding_dim, "
            "page, section, token_count) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "text", "vector", "varchar", "int2", "int4", "varchar", "int4"])
            for start in range(0, missing, 5000):
                texts = [filler_passage(start + i) for i in range(min(5000, missing - start))]
                embedding_started = time.perf_counter()
                vectors = embed_in_batches(embedder, texts, 128)
                embed_seconds += time.perf_counter() - embedding_started
                for i, text in enumerate(texts):
                    copy.write_row((document.pk, start + i, text, vectors[i], embedder.name, embedder.dim, 1,
                                    "Filler", 20))
    KnowledgeDocument.objects.filter(pk=document.pk).update(chunk_count=missing)
    emit("filler_s", round(time.perf_counter() - started, 2), "s", rows=missing,
         embedding_s=round(embed_seconds, 2))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(create_index_sql(embedder.dim))
    emit("hnsw_build_s", round(time.perf_counter() - started, 2), "s",
         rows=KnowledgeChunk.objects.filter(embedding_dim=embedder.dim).count())
    return missing


def bench_search(bot, questions: list[str], runs: int, prefix: str = "search") -> list[dict]:
    embedder = get_embedder()
    for question in questions[:5]:  # warm caches and the connection
        search(bot, question, top_k=5, threshold=0.0)
    total, embed_only = [], []
    for i in range(runs):
        query = f"{questions[i % len(questions)]} ({i})"
        started = time.perf_counter()
        hits = search(bot, query, top_k=5, threshold=0.0)
        total.append((time.perf_counter() - started) * 1000)
        assert len(hits) == 5
        started = time.perf_counter()
        embedder.embed([query])
        embed_only.append((time.perf_counter() - started) * 1000)

    def p95(values):
        return round(float(np.percentile(values, 95)), 2)

    if prefix != "search":
        return [emit(f"{prefix}_median_ms", round(statistics.median(total), 2), "ms", runs=runs),
                emit(f"{prefix}_p95_ms", p95(total), "ms", runs=runs)]
    return [
        emit("search_median_ms", round(statistics.median(total), 2), "ms", runs=runs),
        emit("search_p95_ms", p95(total), "ms", target="<= 15", runs=runs),
        emit("query_embedding_median_ms", round(statistics.median(embed_only), 2), "ms"),
        emit("query_embedding_p95_ms", p95(embed_only), "ms"),
    ]


def hnsw_vs_exact(bot, questions: list[str], k: int = 5) -> tuple[str, float]:
    """(plan of the indexed query, share of the exact top k that the HNSW search returns)."""
    from django.conf import settings
    from django.db import transaction

    from knowledge.search import EXACT_SQL, SQL, vector_literal

    embedder = get_embedder()
    found = total = 0
    plan = ""
    for question in questions:
        documents = list(KnowledgeDocument.objects.filter(bots=bot).values_list("pk", flat=True))
        params = {"q": vector_literal(embedder.embed([question])[0]), "model": embedder.name,
                  "company": bot.company_id, "documents": documents, "k": k}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL hnsw.ef_search = {settings.KNOWLEDGE_HNSW_EF_SEARCH}; "
                           "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL enable_sort = off")
            if not plan:
                cursor.execute("EXPLAIN " + SQL.format(dim=embedder.dim), params)
                plan = "hnsw" if any("knowledge_chunk_hnsw" in row[0] for row in cursor.fetchall()) else "exact"
            cursor.execute(SQL.format(dim=embedder.dim), params)
            approximate = {row[0] for row in cursor.fetchall()}
        with connection.cursor() as cursor:
            cursor.execute(EXACT_SQL.format(dim=embedder.dim), params)
            exact = {row[0] for row in cursor.fetchall()}
        found += len(approximate & exact)
        total += len(exact)
    return plan, found / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="Keep the bench company for a faster rerun.")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()

    embedder = get_embedder()
    ensure_index(embedder.dim)
    with connection.cursor() as cursor:  # rows of an earlier run's filler must not linger in the index
        cursor.execute("VACUUM ANALYZE knowledge_knowledgechunk")
    company, _ = Company.objects.get_or_create(slug="bench-rag", defaults={"name": "Bench RAG"})
    bot, _ = Bot.objects.get_or_create(slug="bench-rag-bot", defaults={"company": company, "name": "Bench bot"})
    lines = []
    try:
        if not args.skip_ingest:
            KnowledgeDocument.objects.for_company(company).exclude(name="filler").delete()
            lines += bench_ingestion(company, bot, args.pages)
            # Only the handbook stays next to the filler: recall is about finding its sections.
            KnowledgeDocument.objects.for_company(company).exclude(name="filler").delete()
        handbook = KnowledgeDocument.objects.for_company(company).filter(name="salon_handbook.md").first()
        if handbook is None:
            handbook = ingest_now(company, bot, "salon_handbook.md", (DATA / "salon_handbook.md").read_bytes())
        # The target: the shipped questions against the shipped handbook alone (a bot linked to it only).
        reader, _ = Bot.objects.get_or_create(slug="bench-rag-handbook", defaults={"company": company,
                                                                                   "name": "Handbook only"})
        handbook.bots.add(reader)
        questions = load_questions(DATA / "questions.json")
        recall, misses = recall_at_k(reader, questions, k=5)
        lines.append(emit("recall_at_5", round(recall, 3), "", target=">= 0.95", questions=len(questions),
                          chunks=handbook.chunk_count, misses=misses))
        lines.append(emit("recall_at_1", round(recall_at_k(reader, questions, k=1)[0], 3), ""))
        add_filler(company, bot, args.chunks)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE knowledge_knowledgechunk")
        chunks = KnowledgeChunk.objects.filter(document__bots=bot).count()
        lines.append(emit("index_chunks", chunks, "chunks"))
        plan, ann_recall = hnsw_vs_exact(bot, [q["question"] for q in questions])
        lines.append(emit("plan", plan))
        lines.append(emit("hnsw_recall_vs_exact_at_5", round(ann_recall, 3), ""))
        lines += bench_search(bot, [q["question"] for q in questions], args.queries)
        # The usual case: a bot with a few dozen chunks in the same 100k-row table (exact path).
        lines += bench_search(reader, [q["question"] for q in questions], args.queries, prefix="search_small_bot")
        # The same questions with 100k other passages competing through the HNSW index.
        recall, misses = recall_at_k(bot, questions, k=5)
        lines.append(emit("recall_at_5_with_filler", round(recall, 3), "", chunks=chunks, misses=misses))
        # The same with exact search: what the filler itself takes from the handbook (its passages
        # share salon words), as opposed to what the approximate index misses.
        from django.test import override_settings

        with override_settings(KNOWLEDGE_EXACT_SEARCH_MAX=10**9):
            recall, _ = recall_at_k(bot, questions, k=5)
        lines.append(emit("recall_at_5_with_filler_exact", round(recall, 3), "", chunks=chunks))
    finally:
        if not args.keep:
            company.delete()
    print(json.dumps({"summary": {line["name"]: line["value"] for line in lines},
                      "embedding_model": embedder.name, "cpus": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
