"""Migration 0003: a campaign's days + single window and one retry rule become weekly hours and per-outcome retries."""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = [("campaigns", "0002_dial_tick")], [("campaigns", "0003_hours_retries_breaker")]


@pytest.mark.django_db(transaction=True)
def test_old_hours_and_retries_are_carried_over(bot_a):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("campaigns", "Campaign")
    try:
        old.objects.create(company_id=bot_a.company_id, bot_id=bot_a.pk, name="Old", call_days=[0, 2, 5],
                           window_start=datetime.time(9, 30), window_end=datetime.time(17, 0), max_attempts=4,
                           retry_delay_minutes=45, retry_on=["busy", "voicemail", "rejected"])
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
    from campaigns.models import Campaign

    campaign = Campaign.objects.get(name="Old")
    window = [["09:30", "17:00"]]
    assert campaign.calling_hours == {"mon": window, "wed": window, "sat": window}
    assert [campaign.retry_rule(status) for status in ("busy", "no-answer", "voicemail", "failed", "rejected")] == [
        (3, 45), (0, 45), (3, 45), (0, 45), (0, 0)]
