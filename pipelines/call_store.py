"""Storing a finished call: one transaction at hang-up, or a spool file if the DB is away.

During a call nothing touches the database; the recorder builds a
``CallRecord`` in memory. At hang-up ``save_call_record`` writes the Call, its
turns and the recording in one transaction and queues post-call processing on
commit. If the database cannot be reached the record is spooled to disk
(JSON + WAV) and ``replay_spool`` stores it later, so no call is lost. Saving
is idempotent per (transport, external_id), so a replay never duplicates.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError, InterfaceError, OperationalError, transaction

from voicebot.celery import app as celery_app
from voicebot.models import Call, CallTurn

logger = logging.getLogger(__name__)

POSTCALL_TASK = "postcall.tasks.process_call"


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

    def __post_init__(self):
        if not self.external_id:
            # Our own id, so that a spooled record replays idempotently too.
            self.external_id = f"vb-{uuid.uuid4().hex}"


def save_call_record(record: CallRecord, *, spool_on_failure: bool = True) -> Call | None:
    """Store the call (idempotent); spool it instead when the database is unreachable."""
    try:
        return _save(record)
    except (OperationalError, InterfaceError) as exc:
        if not spool_on_failure:
            raise
        path = spool(record)
        logger.error("database unavailable at hang-up (%s); call spooled to %s", exc, path)
        return None


def _save(record: CallRecord) -> Call:
    with transaction.atomic():
        existing = Call.objects.filter(transport=record.transport, external_id=record.external_id).first()
        if existing is not None:
            return existing
        call = Call.objects.create(
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
        )
        CallTurn.objects.bulk_create(
            CallTurn(call=call, index=i, **asdict(turn)) for i, turn in enumerate(record.turns)
        )
        if record.recording_wav:
            call.recording.save(f"call-{call.pk}.wav", ContentFile(record.recording_wav), save=True)
        call_id = call.pk
        transaction.on_commit(lambda: queue_postcall(call_id))
    return call


def queue_postcall(call_id: int) -> None:
    """Queue post-call processing by task name (pipelines does not import postcall)."""
    try:
        celery_app.send_task(POSTCALL_TASK, args=[call_id])
    except Exception:  # the broker being down must not lose the stored call
        logger.exception("could not queue %s for call %s", POSTCALL_TASK, call_id)


# --- spool -----------------------------------------------------------------------

def spool_dir() -> Path:
    return Path(settings.SPOOL_DIR)


def spool(record: CallRecord) -> Path:
    """Write the record atomically as JSON (recording base64-encoded) to the spool folder."""
    folder = spool_dir()
    folder.mkdir(parents=True, exist_ok=True)
    data = asdict(record)
    data["started_at"] = record.started_at.isoformat()
    data["ended_at"] = record.ended_at.isoformat()
    wav = data.pop("recording_wav")
    data["recording_wav_b64"] = base64.b64encode(wav).decode() if wav else None
    path = folder / f"{record.transport}-{record.external_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
    return path


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
