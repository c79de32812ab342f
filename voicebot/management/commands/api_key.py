"""``manage.py api_key``: issue an API key and print it (shown once; only its hash is stored).

    manage.py api_key --agency --name automation     # for every company (agency automation)
    manage.py api_key --company elegant-beauty --read-only --name dashboards
"""

from django.core.management.base import BaseCommand, CommandError

from voicebot.models import ApiKey, Company


class Command(BaseCommand):
    help = "Issue an API key (for one company, or --agency for every company) and print it."

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--company", help="The company's slug: the key acts for it only.")
        scope.add_argument("--agency", action="store_true", help="An agency key: every company, and creating them.")
        parser.add_argument("--name", default="cli", help="What the key is for (shown in admin).")
        parser.add_argument("--read-only", action="store_true", help="The key may read, never change anything.")

    def handle(self, *args, company=None, agency=False, name="cli", read_only=False, **options):
        owner = None
        if not agency:
            owner = Company.objects.filter(slug=company).first()
            if owner is None:
                known = ", ".join(Company.objects.values_list("slug", flat=True)[:20]) or "none yet"
                raise CommandError(f"No company with slug {company!r} (companies: {known}).")
        access = ApiKey.Access.READ if read_only else ApiKey.Access.READ_WRITE
        _, raw = ApiKey.issue(owner, name, access=access)
        self.stdout.write(raw)
