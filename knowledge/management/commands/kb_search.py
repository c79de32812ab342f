"""Ask a bot's knowledge base a question."""

import json

from django.core.management.base import BaseCommand

from knowledge.management.commands._bot import bot_by_slug
from knowledge.search import search


class Command(BaseCommand):
    help = "Search a bot's knowledge: the best passages with score, document, page and section."

    def add_arguments(self, parser):
        parser.add_argument("--bot", required=True, help="The bot's slug.")
        parser.add_argument("--top-k", type=int, default=5)
        parser.add_argument("--threshold", type=float, default=0.0, help="Minimum cosine similarity (0-1).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print a JSON list.")
        parser.add_argument("question")

    def handle(self, *args, bot, top_k, threshold, as_json: bool, question, **options):
        passages = search(bot_by_slug(bot), question, top_k=top_k, threshold=threshold)
        rows = [{"text": p.text, "score": p.score, "document": p.document, "page": p.page, "section": p.section}
                for p in passages]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        for row in rows:
            where = f"{row['document']} p.{row['page']}" + (f" / {row['section']}" if row["section"] else "")
            self.stdout.write(f"{row['score']:.3f}  {where}\n    {row['text'][:300]}")
