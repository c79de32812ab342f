"""Build, e-mail and send (report.ready) a company's report now."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from postcall.models import Period
from postcall.reports import send_report
from voicebot.models import Company


class Command(BaseCommand):
    help = "Send a company's daily or weekly call report now (by default, of the last complete period)."

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True, help="The company's slug.")
        parser.add_argument("--period", required=True, choices=Period.values)
        parser.add_argument("--date", help="A day (YYYY-MM-DD, company time) inside the period to report on.")

    def handle(self, *args, company, period, date=None, **options):
        found = Company.objects.filter(slug=company).first()
        if found is None:
            known = ", ".join(Company.objects.values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"No company with slug '{company}' (known: {known}).")
        day = None
        if date:
            try:
                day = _parse_day(date)
            except ValueError:
                raise CommandError(f"--date: '{date}' is not a date in the form YYYY-MM-DD.") from None
        report = send_report(found, period, day)
        local = report.period_start.astimezone(found.tz)
        sent = f"e-mailed to {', '.join(report.emailed_to)}" if report.emailed_at else "not e-mailed (no recipients)"
        self.stdout.write(f"Report {report.pk}: {found.slug}, {period} from {local:%Y-%m-%d %H:%M %Z}: "
                          f"{report.data['calls']} calls, {report.data['answered']} answered; {sent}.")


def _parse_day(text: str) -> date:
    return date.fromisoformat(text)
