"""The business an evaluation runs against: a throwaway company and bot, or an existing bot.

A throwaway company (slug ``eval-<hex>``) gets the suite's bot and its documents,
uploaded through the knowledge service (``knowledge.services.upload_document``) and
ingested by the Celery task run here, in this process (no worker needed); it is
deleted with everything in it (bot, documents, chunks, stored files) when the
evaluation ends. An existing bot (``--bot SLUG``, or ``bot: SLUG`` in the suite)
is used as it is and nothing is written: its own documents answer, and the
suite's documents and the bot's chunks are the sources a reply may use.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config import BotConfig
from pipelines.frozen import thaw
from pipelines.evaluation.suite import Suite, SuiteError

logger = logging.getLogger(__name__)


@dataclass
class Business:
    config: BotConfig
    sources: list[str]  # documents' text and the bot's configuration texts
    documents: list[dict] = field(default_factory=list)  # {file, status, chunks, error}
    throwaway_company_id: int | None = None
    ingest_secs: float = 0.0


@contextlib.contextmanager
def tasks_run_here():
    """Celery tasks queued meanwhile (the ingestion) run in this process, at once."""
    from voicebot.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def config_texts(config: BotConfig) -> list[str]:
    """What the bot's configuration lets it say: names, greeting, prompt, fallback, scenario prompts."""
    from pipelines.dialogue.normalize import hint_for

    texts = [config.company_name, config.name, config.greeting, config.system_prompt, config.fallback_phrase,
             config.transfer_number]
    for scenario in config.scenarios or ():
        for item in scenario.get("collect_fields") or ():
            # The hint the engine says for this field (its own default when the field names none).
            texts += [item.get("prompt") or "", item.get("hint") or "", hint_for(thaw(item))]
            for choice in item.get("choices") or item.get("options") or ():
                if hasattr(choice, "get"):
                    texts += [str(choice.get("value") or ""), *[str(a) for a in choice.get("also") or ()]]
                else:
                    texts.append(str(choice))
    return [t for t in texts if t]



def chunk_texts(bot_id: int) -> list[str]:
    from knowledge.models import KnowledgeChunk

    return list(KnowledgeChunk.objects.filter(document__bots=bot_id, document__status="ready")
                .order_by("document_id", "position").values_list("text", flat=True))


def document_text(path: Path) -> str:
    """A suite document's text as the knowledge app reads it (for an existing bot's sources)."""
    from knowledge.filetypes import detect
    from knowledge.partition import partition

    data = path.read_bytes()
    blocks, _pages = partition(detect(path.name, data), path.name, data)
    return "\n".join(b.text for b in blocks)


def open_business(suite: Suite, bot_slug: str = "") -> Business:
    """The bot to evaluate, ready to answer. Call ``close_business`` when done."""
    slug = bot_slug or suite.bot_slug
    if slug:
        return _existing(suite, slug)
    return _throwaway(suite)


def _existing(suite: Suite, slug: str) -> Business:
    config = BotConfig.for_slug(slug)  # BotNotFound names the slug
    sources = [document_text(p) for p in suite.documents] + chunk_texts(config.bot_id) + config_texts(config)
    return Business(config=config, sources=sources)


def _throwaway(suite: Suite) -> Business:
    import time

    from knowledge.models import KnowledgeDocument
    from knowledge.services import upload_document
    from voicebot.models import Bot, Company

    tag = uuid.uuid4().hex[:10]
    company = Company.objects.create(slug=f"eval-{tag}", default_language="en", **suite.company)
    try:
        fields = {"name": "Evaluation bot", **suite.bot_fields()}
        fields.setdefault("use_knowledge", bool(suite.documents))
        bot = Bot.objects.create(company=company, slug=f"eval-{tag}", **fields)
        started = time.monotonic()
        documents = []
        errors = []
        with tasks_run_here():
            for i, path in enumerate(suite.documents):
                result = upload_document(company, path.name, path.read_bytes(), [bot])
                document = (KnowledgeDocument.objects.get(pk=result.document.pk)
                            if result.document is not None else None)
                line = {"file": str(path.name), "outcome": result.outcome,
                        "status": document.status if document else "rejected",
                        "chunks": document.chunk_count if document else 0,
                        "error": (document.error if document else result.message) or None}
                documents.append(line)
                if line["status"] != KnowledgeDocument.Status.READY and result.outcome != "duplicate":
                    errors.append(f"documents[{i}]: {path.name} was not ingested ({line['status']}): "
                                  f"{line['error'] or result.message}")
        if errors:
            raise SuiteError(errors, suite.path)
        config = BotConfig.from_bot(Bot.objects.select_related("company").prefetch_related("tools").get(pk=bot.pk))
        return Business(config=config, sources=chunk_texts(bot.pk) + config_texts(config), documents=documents,
                        throwaway_company_id=company.pk, ingest_secs=round(time.monotonic() - started, 2))
    except BaseException:
        company.delete()
        raise


def close_business(business: Business) -> None:
    """Delete the throwaway company with its bot, documents, chunks and files (an existing bot: nothing)."""
    if business.throwaway_company_id is None:
        return
    from voicebot.models import Company

    Company.objects.filter(pk=business.throwaway_company_id).delete()


# --- the LLM -------------------------------------------------------------------------

@contextlib.contextmanager
def llm_endpoint_up(log_path: Path | None = None):
    """The /v1 endpoint calls use (VOICEBOT_LLM_BASE_URL, Ollama, or the bundled server if one is
    running); otherwise the bundled llama.cpp server is started for the evaluation and stopped after."""
    import httpx

    from voicebot import llm_endpoint

    url = llm_endpoint.base_url()
    try:
        answering = httpx.get(url + "/models", timeout=1).status_code == 200
    except httpx.HTTPError:
        answering = False
    if answering:
        yield url
        return
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "w")) if log_path else None
        yield stack.enter_context(llm_endpoint.embedded_server_pinned(log=log))
