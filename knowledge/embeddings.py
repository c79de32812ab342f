"""Text -> unit vectors, by the bundled ONNX MiniLM or by Ollama.

One embedder per process (``get_embedder()``), loaded on first use and
shared: the call runner embeds a caller's question on the hot path, so no
call may pay a model load. ``name`` and ``dim`` are stored with every chunk;
``window`` (word pieces the model reads) sizes the chunks.
"""

from __future__ import annotations

import os
import threading
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

# Word pieces a BERT-style model adds around every input: [CLS] and [SEP].
SPECIAL_TOKENS = 2
# Up to this much text (a question, or the sentences of a few passages ranked during a
# call) runs on the one-thread session: the call runner then never loads the second,
# spinning session that ingestion batches use beside the live calls' models.
SMALL_JOB_CHARS = 6000


class EmbeddingError(RuntimeError):
    """The embedding backend failed; the message says which and why."""


@lru_cache(maxsize=1)
def wordpiece_tokenizer():
    """all-MiniLM-L6-v2's tokenizer (from the bundled zip), without padding or truncation."""
    from tokenizers import Tokenizer

    from voicebot.local_models import embedding_zip

    with zipfile.ZipFile(embedding_zip()) as archive:
        name = next(n for n in archive.namelist() if n.endswith("tokenizer.json"))
        tokenizer = Tokenizer.from_str(archive.read(name).decode())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class OnnxMiniLM:
    """all-MiniLM-L6-v2 on onnxruntime (fused int8 graph): mean pooling, L2-normalised. No PyTorch."""

    window = 256
    dim = 384

    def __init__(self, model_name: str = "all-minilm-l6-v2"):
        from knowledge.minilm_onnx import cached_build
        from voicebot.local_models import embedding_zip

        self.name = model_name
        self.onnx_path = str(cached_build(embedding_zip(), Path(settings.DATA_DIR) / "models"))
        self.tokenizer = wordpiece_tokenizer().__class__.from_str(wordpiece_tokenizer().to_str())
        self.tokenizer.enable_truncation(self.window)
        # A caller's question runs alone on one thread: on a busy machine that beats
        # two threads waiting for each other. Ingestion batches use every core.
        self.query_session = self._session(threads=1)
        self._batch_session = None
        self._lock = threading.Lock()

    def _session(self, threads: int, spin: bool = False):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        return ort.InferenceSession(self.onnx_path, options, providers=["CPUExecutionProvider"])

    @property
    def batch_session(self):
        if self._batch_session is None:
            threads = int(os.environ.get("VOICEBOT_EMBED_THREADS", "0")) or min(4, os.cpu_count() or 1)
            self._batch_session = self._session(threads, spin=True)
        return self._batch_session

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), length), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if sum(len(t) for t in texts) <= SMALL_JOB_CHARS:
            hidden = self.query_session.run(None, feeds)[0]  # sessions are thread-safe to run
        else:
            with self._lock:  # one batch at a time: each uses every core
                hidden = self.batch_session.run(None, feeds)[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        vectors = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


class OllamaEmbedder:
    """Ollama's OpenAI-compatible ``/v1/embeddings`` (also served by llama.cpp)."""

    def __init__(self, model_name: str, base_url: str, window: int):
        import httpx

        self.name = f"ollama:{model_name}"
        self.model = model_name
        self.window = window
        self.url = base_url.rstrip("/") + "/embeddings"
        self.client = httpx.Client(timeout=60)
        self.dim = len(self.embed(["dimension probe"])[0])

    def embed(self, texts: list[str]) -> np.ndarray:
        import httpx

        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        try:
            response = self.client.post(self.url, json={"model": self.model, "input": texts})
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise EmbeddingError(f"Ollama embeddings at {self.url} (model {self.model!r}) failed: {exc}") from exc
        vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


_embedder = None
_embedder_lock = threading.Lock()


def get_embedder():
    """The process's embedder for the configured backend, created on first use."""
    global _embedder
    if _embedder is None:
        with _embedder_lock:
            if _embedder is None:
                _embedder = build_embedder()
    return _embedder


def build_embedder(backend: str | None = None):
    backend = backend or settings.KNOWLEDGE_EMBEDDING_BACKEND
    if backend == "onnx":
        return OnnxMiniLM(settings.EMBEDDING_MODEL)
    if backend == "ollama":
        url = os.environ.get("VOICEBOT_OLLAMA_EMBED_URL") or settings.OLLAMA_BASE_URL
        return OllamaEmbedder(settings.KNOWLEDGE_OLLAMA_MODEL, url, settings.KNOWLEDGE_OLLAMA_WINDOW)
    raise EmbeddingError(f"Unknown KNOWLEDGE_EMBEDDING_BACKEND {backend!r}: use 'onnx' or 'ollama'.")


def reset_embedder() -> None:
    """Forget the process's embedder (after a settings change, in tests and kb_reembed)."""
    global _embedder
    with _embedder_lock:
        _embedder = None


def chunk_budget(embedder) -> tuple[int, int]:
    """(chunk size, overlap) in word pieces: what the model reads, unless settings ask for less."""
    room = embedder.window - SPECIAL_TOKENS
    size = min(settings.KNOWLEDGE_CHUNK_TOKENS or room, room)
    overlap = settings.KNOWLEDGE_CHUNK_OVERLAP or size // 10
    return size, min(overlap, size // 2)
