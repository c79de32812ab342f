from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from pipelines import call_store
from pipelines.call_store import CallRecord, TurnRecord
from voicebot.models import Call


def make_record(bot, **overrides) -> CallRecord:
    start = timezone.now() - timedelta(seconds=42)
    values = dict(
        company_id=bot.company_id, bot_id=bot.pk, transport="twilio", external_id="CA123",
        from_number="+12125550199", to_number="+4930123456", started_at=start, ended_at=start + timedelta(seconds=42),
        end_reason="caller_hangup",
        turns=[TurnRecord("bot", "Alpha here.", 0, 900), TurnRecord("caller", "Do you open Saturday?", 2000, 3500),
               TurnRecord("bot", "Yes, from nine.", 4100, 5200, latency_ms=600, interrupted=True)],
        metrics={"v2v_ms": [600]}, collected_fields={"phone": "+12125550199"}, scenario="support",
        recording_wav=b"RIFF0000WAVEfmt fake",
    )
    values.update(overrides)
    return CallRecord(**values)


@pytest.mark.django_db(transaction=True)
def test_one_transaction_stores_call_turns_recording_and_queues_postcall(bot_a, spool_dir, queued):
    call = call_store.save_call_record(make_record(bot_a))
    call.refresh_from_db()
    assert (call.company, call.bot, call.external_id, call.end_reason) == (bot_a.company, bot_a, "CA123", "caller_hangup")
    assert call.duration_sec == pytest.approx(42)
    assert [(t.index, t.role, t.text) for t in call.turns.all()] == [
        (0, "bot", "Alpha here."), (1, "caller", "Do you open Saturday?"), (2, "bot", "Yes, from nine.")]
    assert call.turns.get(index=2).interrupted and call.turns.get(index=2).latency_ms == 600
    assert call.recording.read() == b"RIFF0000WAVEfmt fake"
    assert queued == [("postcall.tasks.process_call", [call.pk])]


@pytest.mark.django_db(transaction=True)
def test_saving_twice_stores_once(bot_a, spool_dir, queued):
    record = make_record(bot_a)
    first = call_store.save_call_record(record)
    second = call_store.save_call_record(record)
    assert first.pk == second.pk
    assert Call.objects.count() == 1 and len(queued) == 1


@pytest.mark.django_db(transaction=True)
def test_database_outage_at_hangup_spools_then_replays(bot_a, spool_dir, queued):
    record = make_record(bot_a, external_id="CA-outage")
    real_host = connection.settings_dict["HOST"]
    connection.close()
    connection.settings_dict["HOST"] = "/nonexistent-socket-dir"
    try:
        assert call_store.save_call_record(record) is None
    finally:
        connection.close()
        connection.settings_dict["HOST"] = real_host
    spooled = list(spool_dir.glob("*.json"))
    assert len(spooled) == 1
    assert Call.objects.count() == 0

    assert call_store.replay_spool() == (1, 0)
    call = Call.objects.get(external_id="CA-outage")
    assert call.turns.count() == 3 and call.recording.read() == record.recording_wav
    assert not list(spool_dir.glob("*.json"))
    assert queued == [("postcall.tasks.process_call", [call.pk])]
    assert call_store.replay_spool() == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_unstorable_spool_file_is_moved_aside_not_lost(bot_a, spool_dir, queued):
    spool_dir.mkdir(parents=True)
    (spool_dir / "twilio-broken.json").write_text("{not json")
    call_store.spool(make_record(bot_a, external_id="CA-good"))
    assert call_store.replay_spool() == (1, 0)
    assert (spool_dir / "twilio-broken.bad").exists()
    assert Call.objects.filter(external_id="CA-good").exists()
