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


# --- odd input never loses a call ---------------------------------------------------

SIP_CALLER = "sip:+14155550123@customer.sip.twilio.com:5060"  # 45 characters


@pytest.mark.django_db(transaction=True)
def test_long_sip_address_and_long_call_id_are_stored_and_read_back_intact(bot_a, spool_dir, queued):
    call_id = "call-" + "0123456789abcdef" * 12 + "x" * 3  # 200 characters
    assert (len(SIP_CALLER), len(call_id)) == (45, 200)
    record = make_record(bot_a, transport="sip", external_id=call_id, from_number=SIP_CALLER,
                         to_number="sip:desk@pbx.example.com;transport=tls")
    assert call_store.save_call_record(record) is not None
    call = Call.objects.get(transport="sip")
    assert (call.external_id, call.from_number, call.to_number) == (call_id, SIP_CALLER, record.to_number)
    assert not spool_dir.exists() or not list(spool_dir.iterdir())
    # ... and through the spool as well.
    loaded = call_store.load_spooled(call_store.spool(record))
    assert (loaded.external_id, loaded.from_number, loaded.to_number) == (call_id, SIP_CALLER, record.to_number)


def unwritable_media(settings, tmp_path):
    (tmp_path / "a-file").write_text("")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"  # mkdir fails: NotADirectoryError


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", ["value too long (DataError)", "recording cannot be written", "non-JSON metric"])
def test_any_storing_failure_spools_the_record_and_logs_why(bot_a, spool_dir, queued, case, caplog, settings,
                                                            tmp_path):
    overrides, reason = {}, ""
    if case.startswith("value too long"):
        overrides, reason = {"end_reason": "x" * 40}, "DataError"  # Call.end_reason is varchar(32)
    elif case.startswith("recording"):
        unwritable_media(settings, tmp_path)
        reason = "NotADirectoryError"
    else:
        overrides, reason = {"metrics": {"v2v_ms": [600], "odd": {1, 2}}}, "TypeError"  # a set: not JSON
    record = make_record(bot_a, external_id="CA-odd", **overrides)
    caplog.set_level("ERROR", logger="pipelines.call_store")

    assert call_store.save_call_record(record) is None
    assert Call.objects.count() == 0 and queued == []
    [path] = spool_dir.glob("*.json")
    loaded = call_store.load_spooled(path)
    assert (loaded.external_id, loaded.end_reason, loaded.recording_wav) == ("CA-odd", record.end_reason,
                                                                             record.recording_wav)
    assert [t.text for t in loaded.turns] == [t.text for t in record.turns]
    assert any(reason in r.getMessage() and path.name in r.getMessage() for r in caplog.records), caplog.text

    if case.startswith("recording"):
        settings.MEDIA_ROOT = tmp_path / "media"  # the disk is back
    stored, remaining = call_store.replay_spool()
    if case.startswith("value too long"):  # can never be stored: kept aside, logged
        assert (stored, remaining) == (0, 0) and path.with_suffix(".bad").exists()
        assert "cannot be stored; moved aside" in caplog.text
    else:  # stored on replay (the odd metric was spooled as JSON it can hold)
        assert (stored, remaining) == (1, 0)
        call = Call.objects.get(external_id="CA-odd")
        assert call.turns.count() == 3 and call.recording.read() == record.recording_wav
        assert queued == [("postcall.tasks.process_call", [call.pk])]


@pytest.mark.django_db(transaction=True)
def test_the_same_call_stored_concurrently_is_the_idempotent_duplicate_not_a_failure(bot_a, spool_dir, queued,
                                                                                     monkeypatch):
    first = call_store.save_call_record(make_record(bot_a, external_id="CA-race"))
    real_filter = Call.objects.filter
    looks = []

    def racing_filter(*args, **kwargs):  # the first look misses the row another thread just wrote
        looks.append(kwargs)
        return Call.objects.none() if len(looks) == 1 else real_filter(*args, **kwargs)

    monkeypatch.setattr(Call.objects, "filter", racing_filter)
    second = call_store.save_call_record(make_record(bot_a, external_id="CA-race"))
    assert len(looks) == 2 and second.pk == first.pk
    assert Call.objects.count() == 1 and len(queued) == 1
    assert not list(spool_dir.glob("*.json"))


# --- the spool: names, modes, atomic writes ------------------------------------------

HOSTILE_IDS = ["../../../../tmp/escaped", "a/b/../../c", "/", "CA\x00nul", "A" * 500, "é☎/\\:*?\"<>|\n"]


@pytest.mark.parametrize("external_id", HOSTILE_IDS, ids=["dotdot", "slashes", "bare-slash", "nul", "500-chars",
                                                          "odd-chars"])
def test_any_call_id_spools_inside_the_folder_and_reads_back(db, bot_a, spool_dir, tmp_path, external_id):
    record = make_record(bot_a, external_id=external_id)
    path = call_store.spool(record)
    assert path.parent == spool_dir and path.resolve().parent == spool_dir.resolve()
    assert len(path.name) < 200 and path.suffix == ".json"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [path.name]  # nothing written elsewhere
    assert call_store.load_spooled(path).external_id == external_id
    assert call_store.spool(record) == path  # the same call, the same file: spooling twice keeps one
    assert len(list(spool_dir.iterdir())) == 1
    other = call_store.spool(make_record(bot_a, external_id=external_id + "2"))
    assert other != path and len(list(spool_dir.iterdir())) == 2


def test_spool_files_are_0600_in_a_0700_folder_from_the_start(db, bot_a, spool_dir, monkeypatch):
    import os
    import stat

    spool_dir.mkdir(mode=0o755)  # a folder left wide open before
    os.chmod(spool_dir, 0o755)
    chmods, at_replace = [], []
    real_chmod, real_replace = os.chmod, os.replace

    def chmod(path, mode, *args, **kwargs):
        chmods.append(str(path))
        return real_chmod(path, mode, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):  # the temp file, complete, just before it becomes the spool file
        at_replace.append((stat.S_IMODE(os.stat(src).st_mode), os.path.getsize(src)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", chmod)
    monkeypatch.setattr(os, "replace", replace)
    old_umask = os.umask(0)  # a umask would hide a file created wide open; none here
    try:
        path = call_store.spool(make_record(bot_a))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(spool_dir).st_mode) == 0o700
    assert at_replace == [(0o600, path.stat().st_size)]
    assert all(os.path.isdir(p) for p in chmods), chmods  # never a file chmod-ed after writing
    assert [p.name for p in spool_dir.iterdir()] == [path.name]  # no temp file left


# --- storing never holds a line ------------------------------------------------------

@pytest.fixture
def broker_away(monkeypatch):
    """Point the Celery broker somewhere dead: a closed port, or a socket that never answers."""
    import socket
    import threading

    servers = []

    def away(kind: str) -> str:
        if kind == "closed port":
            url = "redis://127.0.0.1:1/0"
        else:  # accepts the connection, never says a word (a hung Redis)
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(8)
            servers.append((server, []))
            threading.Thread(target=lambda: servers[-1][1].append(server.accept()), daemon=True).start()
            url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
        # Celery reads these before its config. Redis is broker and result store both (settings),
        # so both are away; a thread of its own makes a fresh result backend, as in the runner.
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        monkeypatch.setenv("CELERY_RESULT_BACKEND", url)
        monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
        return url

    yield away
    for server, accepted in servers:
        for conn, _ in accepted:
            conn.close()
        server.close()


def store_in_a_thread(record, limit: float = 10.0):
    """Store as the runner does, on a DB thread of its own; a hang fails the test, not holds it."""
    import threading
    import time

    result = {}

    def work():
        try:
            result["call"] = call_store.save_call_record(record)
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - start
    assert not thread.is_alive(), f"storing still holds the line after {limit:.0f} s"
    return result["call"], elapsed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["closed port", "hung"])
def test_storing_with_the_broker_away_returns_fast_stores_the_call_and_logs(bot_a, spool_dir, broker_away, kind,
                                                                            caplog):
    broker_away(kind)
    caplog.set_level("ERROR", logger="pipelines.call_store")
    call, elapsed = store_in_a_thread(make_record(bot_a, external_id=f"CA-no-broker-{kind}"))
    assert elapsed < 1.0, f"storing held the line for {elapsed:.1f} s"
    assert Call.objects.filter(pk=call.pk).exists() and call.turns.count() == 3
    assert not spool_dir.exists() or not list(spool_dir.glob("*.json"))
    assert f"could not queue postcall.tasks.process_call for call {call.pk}" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_call_stored_while_the_broker_was_away_is_requeued_by_the_sweeper(bot_a, spool_dir, broker_away,
                                                                            monkeypatch):
    from postcall import tasks
    from postcall.models import CallOutcome

    broker_away("closed port")
    ended = timezone.now() - timedelta(minutes=10)
    record = make_record(bot_a, external_id="CA-swept", started_at=ended - timedelta(seconds=42), ended_at=ended)
    call, _ = store_in_a_thread(record)
    assert call is not None and not CallOutcome.objects.filter(call=call).exists()
    monkeypatch.delenv("CELERY_BROKER_URL")  # Redis is back
    monkeypatch.delenv("CELERY_RESULT_BACKEND")
    requeued = []
    monkeypatch.setattr(tasks.process_call, "delay", lambda pk, *a, **k: requeued.append(pk))
    assert tasks.requeue_stalled() == {"deliveries": 0, "calls": 1}  # with its beat defaults
    assert requeued == [call.pk]


@pytest.mark.django_db(transaction=True)
def test_post_call_work_is_queued_on_the_real_broker(bot_a, spool_dir):
    """The fast-failing send still puts the task on the default queue (no result subscription)."""
    import base64
    import json
    import uuid

    import redis

    url = call_store.celery_app.conf.broker_write_url
    if not url.startswith("redis://"):
        pytest.skip("a Redis broker")
    queue = f"test-store-{uuid.uuid4().hex[:8]}"
    conf = call_store.celery_app.conf
    previous_queue, conf.task_default_queue = conf.task_default_queue, queue
    client = redis.Redis.from_url(url)
    try:
        call = call_store.save_call_record(make_record(bot_a, external_id="CA-queued"))
        raw = client.lpop(queue)
        assert raw is not None and client.llen(queue) == 0
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert (message["headers"]["task"], args) == ("postcall.tasks.process_call", [call.pk])
        assert message["headers"]["ignore_result"] is True
    finally:
        conf.task_default_queue = previous_queue
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()
