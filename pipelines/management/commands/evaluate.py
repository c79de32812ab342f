"""python manage.py evaluate SUITE.yaml [--bot SLUG] [--voice] [--json] [--only SECTION] [--limit N]

Measures a bot on a suite (see ``pipelines.evaluation.suite``): answer accuracy
(plain, paraphrased, absent), replies with invented facts, bookings completed,
rule cases passed and reply latency. A benchmark, not a test: it exits 0 whatever
the figures; an invalid suite (or a document that cannot be ingested) exits 1
with every problem named by its place, e.g. ``questions[3].facts: expected a list``.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from pipelines.evaluation.report import SECTIONS

NOISY_LOGGERS = ("httpx", "httpx2", "celery.app.trace", "pipelines.dialogue.engine", "knowledge.minilm_onnx",
                 "knowledge.isolated", "faster_whisper")


class Command(BaseCommand):
    help = "Run an evaluation suite (YAML) against a bot by text chat or simulated voice calls; print the figures."

    def add_arguments(self, parser):
        parser.add_argument("suite", help="the suite file (YAML)")
        parser.add_argument("--bot", default="", help="evaluate this existing bot (as it is) instead of the "
                                                      "suite's throwaway bot")
        parser.add_argument("--voice", action="store_true",
                            help="play the cases as simulated calls (Piper speaks the caller, Whisper hears it)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--only", action="append", choices=SECTIONS,
                            help="run only this section (repeatable)")
        parser.add_argument("--limit", type=int, default=None, help="the first N cases of each section")
        parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    def handle(self, *args, suite, bot, voice, json: bool, only, limit, quiet, **options):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from pipelines.config import BotNotFound
        from pipelines.evaluation.business import close_business, llm_endpoint_up, open_business
        from pipelines.evaluation.report import render, run_suite
        from pipelines.evaluation.suite import SuiteError, load_suite
        from voicebot import llm_endpoint

        try:
            loaded = load_suite(suite)
        except SuiteError as exc:
            raise CommandError(_suite_errors(exc)) from None

        def progress(line: str) -> None:
            if not quiet:
                self.stderr.write(line)

        if options.get("verbosity", 1) < 2:  # one progress line per case, not every request's log line
            for name in NOISY_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
            if voice:  # Pipecat logs every frame through loguru
                from loguru import logger

                logger.remove()
                logger.add(sys.stderr, level="WARNING")

        from django.conf import settings

        try:
            with llm_endpoint_up(settings.DATA_DIR / "llm-evaluate.log") as url:
                try:
                    business = open_business(loaded, bot)
                except SuiteError as exc:
                    raise CommandError(_suite_errors(exc)) from None
                except BotNotFound as exc:
                    raise CommandError(f"--bot: {exc}") from None
                runner = None
                try:
                    if voice:
                        from pipelines.evaluation.voice import VoiceRunner

                        runner = VoiceRunner(business.config, url)
                    else:
                        from pipelines.evaluation.text import TextRunner

                        runner = TextRunner(business.config, loaded.today)
                    result = run_suite(loaded, runner, business, only=tuple(only or SECTIONS), limit=limit,
                                       progress=progress)
                    result["llm"] = url
                finally:
                    if runner is not None:
                        runner.close()
                    close_business(business)
        except llm_endpoint.EmbeddedServerError as exc:
            raise CommandError(f"no LLM to evaluate with: {exc}") from None
        if json:
            self.stdout.write(_json(result))
        else:
            self.stdout.write(render(result))


def _suite_errors(exc) -> str:
    lines = exc.errors
    head = f"invalid suite {exc.path}" if exc.path else "invalid suite"
    if len(lines) == 1:
        return f"{head}: {lines[0]}"
    return head + ":\n" + "\n".join(f"  {line}" for line in lines)


def _json(data) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
