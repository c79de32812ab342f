"""Partition a file in a child process that cannot outgrow its memory or its time.

Checks inside a parser cannot stop it once it is stuck in C (lxml building a tree of
a huge XML, PDFium inflating a content stream) or in a long loop, and a Celery time
limit kills the whole worker process (the task is then delivered again, since tasks are
acknowledged late, and the same file kills the next worker). So ingestion runs
``partition.partition`` in a fresh interpreter (``python -m knowledge.isolated``):

* its address space is capped (``RLIMIT_AS``) at what it has after importing the
  partitioners plus ``Limits.max_memory_mb``: an allocation past it fails there, the
  worker never sees the memory;
* the worker kills it (SIGKILL) at the document's deadline, and its CPU time is capped
  too (``RLIMIT_CPU``), so it ends even if the worker dies first;
* it gets the file on stdin and a minimal environment (no database URL or secrets:
  it reads untrusted bytes), and answers with JSON, not pickle, so what comes back is
  data whatever happened inside the parser.

Starting it costs 0.1 s for a PDF and 1.5 s for the formats read with unstructured
(importing it and spaCy); ingestion is a background task, so that is paid for bounds.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from knowledge.filetypes import UnsupportedFile
from knowledge.limits import Deadline, LimitExceeded, Limits, check_zip_content, too_much_memory, too_slow
from knowledge.partition import Block, DocumentUnreadable

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The child's environment: what Python, unstructured and spaCy need to run offline, nothing else.
CHILD_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH", "PYTHONHASHSEED")
CHILD_ENV_PREFIXES = ("UNSTRUCTURED_", "HF_")
# Exit status of a child that ran out of its memory (a MemoryError it caught).
EXIT_OUT_OF_MEMORY = 3
ERRORS = {"unsupported": UnsupportedFile, "unreadable": DocumentUnreadable, "limit": LimitExceeded}


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in CHILD_ENV_KEYS or k.startswith(CHILD_ENV_PREFIXES)}
    env.update(DO_NOT_TRACK="true", HF_HUB_OFFLINE="1", UNSTRUCTURED_DISABLE_NOTICE="1", PYTHONUNBUFFERED="1")
    return env


def partition_isolated(file_type: str, name: str, data: bytes, limits: Limits | None = None,
                       deadline: Deadline | None = None) -> tuple[list[Block], int]:
    """``partition.partition`` of the file, in a child process bounded in memory and time.

    Raises what partition raises (UnsupportedFile, DocumentUnreadable, LimitExceeded), and
    LimitExceeded when the child needs more memory or time than the limits allow.
    """
    limits = limits or Limits.from_settings()
    deadline = deadline or Deadline(limits)
    label = Path(name).name or "The file"
    if file_type == "docx":
        # Unpacked here first, through the bounded reader (memory of one 1 MB chunk): a ZIP
        # bomb fails in a fraction of a second, without starting a reader.
        check_zip_content(label, data, limits, count_paragraphs=True)
    header = json.dumps({"file_type": file_type, "name": name, "limits": limits.as_dict(),
                         "cpu_sec": max(1, int(deadline.remaining()) + 5)}).encode()
    started = time.monotonic()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "knowledge.isolated"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=errors, cwd=PROJECT_ROOT, env=_child_env(), start_new_session=True,
        )
        try:
            output, _ = process.communicate(header + b"\n" + data, timeout=max(deadline.remaining(), 0.01))
        except subprocess.TimeoutExpired:
            peak = peak_rss_mb(process.pid)
            process.kill()
            process.wait()
            logger.warning("partition of %r: killed after %.1f s (limit %s s), reader peak %d MB", name,
                           time.monotonic() - started, limits.timeout_sec, peak)
            raise too_slow(label, limits, "while reading the file") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        errors.seek(0, os.SEEK_END)
        errors.seek(max(errors.tell() - 4000, 0))
        stderr_tail = errors.read().decode("utf-8", "replace").strip()
    code = process.returncode
    if code == EXIT_OUT_OF_MEMORY or code == -signal.SIGABRT:
        # A MemoryError, or a C/C++ allocator that aborts on failure (PDFium does).
        logger.warning("partition of %r ran out of memory (exit %s): %s", name, code, stderr_tail[-500:])
        raise too_much_memory(label, limits)
    if code == -signal.SIGXCPU:  # its CPU time cap, in case the deadline was not enforced
        raise too_slow(label, limits, "while reading the file")
    try:
        result = json.loads(output)
    except ValueError:
        result = None
    if code != 0 or not isinstance(result, dict):
        logger.error("partition of %r crashed (exit %s): %s", name, code, stderr_tail[-2000:])
        how = f"exit status {code}"
        if code < 0:
            how = f"signal {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"signal {-code}"
        raise DocumentUnreadable(f"The file could not be read: the reader stopped unexpectedly ({how}).")
    logger.info("partition of %r: %s in %.1f s, reader peak %d MB", name, result.get("error", "done"),
                time.monotonic() - started, result.get("peak_rss_mb", 0))
    if "error" in result:
        if result["error"] == "unexpected":
            logger.error("partition of %r failed: %s", name, stderr_tail[-2000:])
        raise ERRORS.get(result["error"], DocumentUnreadable)(result["message"])
    blocks = [Block(text, page, bool(heading)) for text, page, heading in result["blocks"]]
    return blocks, int(result["pages"])


# --- the child ---------------------------------------------------------------------------

def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_mb(pid: int | str = "self") -> int:
    """The process's peak resident memory (VmHWM), 0 where /proc has none.

    Not ``getrusage``'s ru_maxrss: Linux carries a process's maximum across exec, so a
    child started from a big worker reports at least the worker's size.
    """
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _preload(file_type: str) -> None:
    """Import what the file type's partitioner needs before the memory cap is set."""
    from knowledge import partition

    if file_type == "pdf":
        partition._pdfium()
        return
    if file_type == "csv":
        return
    partition.offline_nlp()
    module = {"docx": "docx", "html": "html", "md": "md"}.get(file_type, "text")
    __import__(f"unstructured.partition.{module}")


def _child() -> int:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the answer
    header = json.loads(sys.stdin.buffer.readline())
    data = sys.stdin.buffer.read()
    limits = Limits(**header["limits"])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (header["cpu_sec"], header["cpu_sec"] + 1))
    from knowledge.partition import partition

    try:
        _preload(header["file_type"])
        if sys.platform.startswith("linux"):
            cap = _address_space() + limits.max_memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        blocks, pages = partition(header["file_type"], header["name"], data, limits)
        del data
        result = {"blocks": [[b.text, b.page, b.heading] for b in blocks], "pages": pages}
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)
    except LimitExceeded as exc:
        result = {"error": "limit", "message": str(exc)}
    except UnsupportedFile as exc:
        result = {"error": "unsupported", "message": str(exc)}
    except DocumentUnreadable as exc:
        result = {"error": "unreadable", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001  reported to the worker, which fails the document with it
        traceback.print_exc()
        result = {"error": "unexpected", "message": f"Unexpected error while reading the file "
                                                    f"({type(exc).__name__}: {exc})."}
    result["peak_rss_mb"] = peak_rss_mb()
    try:
        json.dump(result, out)
        out.flush()
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
