"""Storing a finished call: one transaction at hang-up, or a spool file if storing fails.

During a call nothing touches the database; the recorder builds a
``CallRecord`` in memory. At hang-up ``save_call_record`` writes the Call, its
turns and the recording in one transaction and queues post-call processing on
commit. If storing fails for any reason (the database is away, a value it
refuses, a recording file that cannot be written) the record is spooled to
disk (one 0600 JSON file, recording inside, in a 0700 folder; the file name is
derived from a hash, never from the call id itself) and ``replay_spool`` stores
it later, so no call is lost. Saving is idempotent per (transport,
external_id), so a replay never duplicates.

Storing never holds a line: queuing post-call work fails fast when the broker
is away (no retries, short connect timeout, no result subscription); the call
stays stored without an outcome and the stalled-call sweeper
(``postcall.tasks.requeue_stalled``, Celery beat) queues it later.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction

from voicebot.celery import app as celery_app
from voicebot.models import Call, CallTurn

logger = logging.getLogger(__name__)

POSTCALL_TASK = "postcall.tasks.process_call"
# Queuing post-call work at hang-up: one connection attempt, each socket step this long at
# most (a Redis that is away, or hung, must not hold the store thread; the sweeper queues
# the call later).
BROKER_TIMEOUT_SEC = 0.5
FAST_FAIL_TRANSPORT = {"max_retries": 0, "socket_connect_timeout": BROKER_TIMEOUT_SEC,
                       "socket_timeout": BROKER_TIMEOUT_SEC}


@dataclass
class TurnRecord:
    role: str  # "caller" or "bot"
    text: str
    start_ms: int | None = None
    end_ms: int | None = None
    latency_ms: int | None = None
    interrupted: bool = False


@dataclass
class CallRecord:
    company_id: int
    bot_id: int | None
    transport: str
    started_at: datetime
    ended_at: datetime
    end_reason: str
    external_id: str = ""
    direction: str = Call.Direction.INBOUND
    from_number: str = ""
    to_number: str = ""
    status: str = Call.Status.COMPLETED
    turns: list[TurnRecord] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    collected_fields: dict = field(default_factory=dict)
    scenario: str = ""
    recording_wav: bytes | None = None
    call_id: int | None = None  # an outbound call's row (queued when it was placed), filled at hang-up
    variables: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.external_id:
            # Our own id, so that a spooled record replays idempotently too.
            self.external_id = f"vb-{uuid.uuid4().hex}"


def save_call_record(record: CallRecord, *, spool_on_failure: bool = True) -> Call | None:
    """Store the call (idempotent); spool it instead when storing fails, whatever the reason."""
    try:
        return _save(record)
    except Exception as exc:  # any failure: the call goes to the spool, never lost
        if not spool_on_failure:
            raise
        try:
            path = spool(record)
        except Exception:
            logger.critical("call %s could neither be stored (%s: %s) nor spooled", _label(record),
                            type(exc).__name__, exc, exc_info=True)
            raise
        if isinstance(exc, (OperationalError, InterfaceError)):
            logger.error("database unavailable at hang-up (%s); call %s spooled to %s", exc, _label(record), path)
        else:
            logger.error("call %s could not be stored (%s: %s); spooled to %s", _label(record),
                         type(exc).__name__, exc, path, exc_info=exc)
        return None


def _label(record: CallRecord) -> str:
    """The call, for a log line: escaped (repr) and short, whatever the provider sent."""
    return f"{str(record.transport)[:16]!r}/{str(record.external_id)[:64]!r}"


def _save(record: CallRecord) -> Call:
    try:
        return _save_once(record)
    except IntegrityError:
        # The same call stored at the same moment by someone else (a replay racing the
        # hang-up): the unique (transport, external_id) constraint makes that a no-op.
        existing = Call.objects.filter(transport=record.transport, external_id=record.external_id).first()
        if existing is None:
            raise
        return existing


def _save_once(record: CallRecord) -> Call:
    with transaction.atomic():
        if record.call_id is not None:
            placed = Call.objects.select_for_update().filter(pk=record.call_id).first()
            if placed is not None and placed.end_reason:
                return placed  # stored already (a replay), or it never connected
        else:
            placed = None
            existing = Call.objects.filter(transport=record.transport, external_id=record.external_id).first()
            if existing is not None:
                return existing
        values = dict(
            company_id=record.company_id,
            bot_id=record.bot_id,
            external_id=record.external_id,
            transport=record.transport,
            direction=record.direction,
            from_number=record.from_number,
            to_number=record.to_number,
            status=record.status,
            started_at=record.started_at,
            ended_at=record.ended_at,
            end_reason=record.end_reason,
            metrics=record.metrics,
            collected_fields=record.collected_fields,
            scenario=record.scenario,
            variables=record.variables,
        )
        if placed is None:
            call = Call.objects.create(**values)
        else:  # the outbound call placed earlier: its numbers, start and variables stay as placed
            for name in ("company_id", "bot_id", "direction", "from_number", "to_number", "started_at", "variables"):
                values.pop(name)
            values["external_id"] = placed.external_id or record.external_id
            values["metrics"] = {**placed.metrics, **record.metrics,
                                 "notes": [*placed.metrics.get("notes", []), *record.metrics.get("notes", [])]}
            for name, value in values.items():
                setattr(placed, name, value)
            placed.save()
            call = placed
        CallTurn.objects.bulk_create(
            CallTurn(call=call, index=i, **asdict(turn)) for i, turn in enumerate(record.turns)
        )
        if record.recording_wav:
            call.recording.save(f"call-{call.pk}.wav", ContentFile(record.recording_wav), save=True)
        call_id = call.pk
        transaction.on_commit(lambda: queue_postcall(call_id), robust=True)
    return call


def queue_postcall(call_id: int) -> bool:
    """Queue post-call processing by task name (pipelines does not import postcall).

    Fails fast when the broker is away: one connection attempt with a short timeout, no
    publish retries, and no result-backend subscription (nobody waits for this result;
    celery's Redis result consumer alone would retry for ~20 s). A call not queued here
    is stored without an outcome, and the stalled-call sweeper queues it later.
    """
    try:
        with celery_app.connection_for_write(connect_timeout=BROKER_TIMEOUT_SEC,
                                             transport_options=FAST_FAIL_TRANSPORT) as connection:
            celery_app.send_task(POSTCALL_TASK, args=[call_id], connection=connection, retry=False,
                                 ignore_result=True)
        return True
    except Exception as exc:  # noqa: BLE001 - the broker being down must not lose the stored call
        logger.error("could not queue %s for call %s (%s: %s); the stalled-call sweeper will queue it",
                     POSTCALL_TASK, call_id, type(exc).__name__, exc)
        return False


# --- spool -----------------------------------------------------------------------

def spool_dir() -> Path:
    return Path(settings.SPOOL_DIR)


def spool_path(transport: str, external_id: str) -> Path:
    """The record's file: a readable prefix (safe characters only) + a hash of the key.

    Any call id (``/``, ``..``, NUL, 500 characters, non-ASCII) gives a short name inside
    the spool folder; the same call always gives the same name, so spooling twice keeps one file.
    """
    key = json.dumps([str(transport), str(external_id)])  # ensure_ascii: any string encodes
    digest = hashlib.sha256(key.encode()).hexdigest()
    prefix = "-".join(_safe(part, n) for part, n in ((transport, 16), (external_id, 40)))
    return spool_dir() / f"{prefix}-{digest}.json"


def _safe(value, limit: int) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", str(value))[:limit] or "_"


class _SpoolEncoder(DjangoJSONEncoder):
    """Whatever the record holds is written: odd values become numbers or text, never an error."""

    def default(self, o):
        if callable(getattr(o, "item", None)):  # numpy scalars
            with contextlib.suppress(Exception):
                return o.item()
        if isinstance(o, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(o)).decode()
        if isinstance(o, (set, frozenset)):
            return list(o)
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _record_data(record: CallRecord) -> dict:
    # Shallow, field by field (dataclasses.asdict deep-copies, which odd values can make fail).
    data = {f.name: getattr(record, f.name) for f in fields(record)}
    data["turns"] = [
        {f.name: getattr(t, f.name) for f in fields(TurnRecord)} if isinstance(t, TurnRecord) else t
        for t in record.turns or []
    ]
    data["started_at"] = _iso(record.started_at)
    data["ended_at"] = _iso(record.ended_at)
    wav = data.pop("recording_wav")
    data["recording_wav_b64"] = base64.b64encode(bytes(wav)).decode() if wav else None
    return data


def _ensure_spool_dir() -> Path:
    folder = spool_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o777 != 0o700:  # made before, or under a wide umask: narrow it
        try:
            os.chmod(folder, 0o700)
        except OSError as exc:  # not ours to change: the files themselves are still 0600
            logger.warning("spool folder %s is not 0700 and cannot be made so (%s)", folder, exc)
    return folder


def spool(record: CallRecord) -> Path:
    """Write the record atomically as one JSON file, 0600 from the start, in the 0700 spool folder."""
    folder = _ensure_spool_dir()
    payload = json.dumps(_record_data(record), cls=_SpoolEncoder).encode()
    path = spool_path(record.transport, record.external_id)
    tmp = folder / f".{path.stem}.{uuid.uuid4().hex}.tmp"  # never matches *.json
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return path


def _fsync_dir(folder: Path) -> None:
    """The rename itself survives a power cut (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_spooled(path: Path) -> CallRecord:
    data = json.loads(path.read_text())
    wav = data.pop("recording_wav_b64")
    data["turns"] = [TurnRecord(**t) for t in data["turns"]]
    data["started_at"] = datetime.fromisoformat(data["started_at"])
    data["ended_at"] = datetime.fromisoformat(data["ended_at"])
    return CallRecord(**data, recording_wav=base64.b64decode(wav) if wav else None)


def replay_spool() -> tuple[int, int]:
    """Store every spooled call; return (stored, still spooled). Safe to run any time."""
    stored = 0
    pending = sorted(spool_dir().glob("*.json")) if spool_dir().exists() else []
    for path in pending:
        try:
            _save(load_spooled(path))
        except (OperationalError, InterfaceError):
            logger.warning("database still unavailable; %d call(s) stay spooled", len(pending) - stored)
            break
        except (DatabaseError, ValueError, TypeError, KeyError):
            logger.exception("spooled call %s cannot be stored; moved aside", path.name)
            path.rename(path.with_suffix(".bad"))
            continue
        path.unlink()
        stored += 1
    remaining = len(list(spool_dir().glob("*.json"))) if spool_dir().exists() else 0
    return stored, remaining
