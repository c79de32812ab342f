"""The quality benchmark: the demo salon's evaluation suite, text and voice; prints JSON, keeps the results.

    .venv/bin/python bench/evaluate.py [--voice] [--only questions|bookings|rules] [--limit N] [--suite FILE]

Text mode runs every case through the text chat (seconds); voice mode plays each caller
turn spoken by Piper through the live pipeline (Whisper, the brain, the fact check, Piper),
about a minute a booking. The figures are written to bench/results-eval-{text,voice}.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicebot.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "eval" / "salon" / "suite.yaml"))
    parser.add_argument("--voice", action="store_true")
    parser.add_argument("--limit", type=int, help="the first N cases of each section")
    parser.add_argument("--only", choices=["questions", "bookings", "rules"])
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    options = ["--json", "--quiet"] + (["--voice"] if args.voice else []) + (
        ["--limit", str(args.limit)] if args.limit else []) + (["--only", args.only] if args.only else [])
    out = io.StringIO()
    call_command("evaluate", args.suite, *options, stdout=out)
    report = json.loads(out.getvalue())
    summary = {"mode": report["mode"], "suite": report["suite"], "figures": report["figures"],
               "wall_s": report["wall_s"]}
    (ROOT / "bench" / f"results-eval-{report['mode']}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
