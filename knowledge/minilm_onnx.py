"""all-MiniLM-L6-v2 as a fused, int8 onnxruntime graph, built once from the bundled weights.

Why not a ready-made ONNX export: PyTorch's export spells attention out as
two dozen small ops (reshape, transpose, mask add, softmax, a NaN guard), and
on a 2-core CPU those, not the matrix products, took most of the time. This
module writes the same BERT encoder with onnxruntime's fused contrib ops
(``EmbedLayerNormalization``, ``Attention``, ``SkipLayerNormalization``,
``BiasGelu``) straight from the sentence-transformers ``model.safetensors``,
then quantizes its weights to int8 per output channel (activations are
quantized on the fly, so the AVX512-VNNI / AVX2 integer kernels run).

Measured on the 2-core dev VM, 16 sequences of 256 word pieces: about 3.5x the
word pieces per second of the int8-weight PyTorch export, and a one-line query
in under 2 ms instead of 6; the vectors keep a cosine of >= 0.99 to the
float32 model's. Inputs: ``input_ids`` and ``attention_mask`` (int64, padded
on the right); output: ``last_hidden_state``.

The result is cached under ``DATA_DIR/models`` by the hash of the source zip,
so each install builds it once (a few seconds); the write is atomic, so
processes starting together (runner, worker) do not read half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Bump when the graph below changes, so cached builds are redone.
GRAPH_VERSION = 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_safetensors(raw: bytes) -> dict[str, np.ndarray]:
    """float32 tensors of a .safetensors file (its format: 8-byte header size, JSON header, data)."""
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    data = memoryview(raw)[8 + size :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=np.float32).reshape(info["shape"])
    return tensors


def bert_graph(weights: dict[str, np.ndarray], config: dict):
    """A float32 ONNX model of the BERT encoder with onnxruntime's fused ops."""
    from onnx import TensorProto, helper, numpy_helper

    initializers, nodes = [], []

    def const(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        domain = "" if op in ("MatMul", "Cast") else "com.microsoft"
        nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))
        return output

    heads, eps = config["num_attention_heads"], config["layer_norm_eps"]
    w = weights
    node("Cast", ["input_ids"], "ids32", to=TensorProto.INT32)
    node("Cast", ["attention_mask"], "mask32", to=TensorProto.INT32)
    # Every input is segment 0, so its embedding is folded into the positions'.
    positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        ["ids32", "", const("word_embeddings", w["embeddings.word_embeddings.weight"]),
         const("position_embeddings", positions), "",
         const("embeddings_ln_gamma", w["embeddings.LayerNorm.weight"]),
         const("embeddings_ln_beta", w["embeddings.LayerNorm.bias"]), "mask32"],
        ["hidden_0", "mask_index"], domain="com.microsoft", epsilon=eps))

    hidden = "hidden_0"
    layers = config["num_hidden_layers"]
    for i in range(layers):
        p = f"encoder.layer.{i}."
        qkv = np.concatenate([w[f"{p}attention.self.{k}.weight"].T for k in ("query", "key", "value")], axis=1)
        qkv_bias = np.concatenate([w[f"{p}attention.self.{k}.bias"] for k in ("query", "key", "value")])
        attended = node("Attention", [hidden, const(f"l{i}.qkv", qkv), const(f"l{i}.qkv_bias", qkv_bias),
                                      "mask_index"], f"l{i}.attended", num_heads=heads)
        projected = node("MatMul", [attended, const(f"l{i}.attn_out", w[f"{p}attention.output.dense.weight"].T)],
                         f"l{i}.projected")
        mid = node("SkipLayerNormalization",
                   [projected, hidden, const(f"l{i}.ln1_gamma", w[f"{p}attention.output.LayerNorm.weight"]),
                    const(f"l{i}.ln1_beta", w[f"{p}attention.output.LayerNorm.bias"]),
                    const(f"l{i}.attn_out_bias", w[f"{p}attention.output.dense.bias"])], f"l{i}.mid", epsilon=eps)
        up = node("MatMul", [mid, const(f"l{i}.ffn_in", w[f"{p}intermediate.dense.weight"].T)], f"l{i}.up")
        act = node("BiasGelu", [up, const(f"l{i}.ffn_in_bias", w[f"{p}intermediate.dense.bias"])], f"l{i}.act")
        down = node("MatMul", [act, const(f"l{i}.ffn_out", w[f"{p}output.dense.weight"].T)], f"l{i}.down")
        out = "last_hidden_state" if i == layers - 1 else f"l{i}.out"
        hidden = node("SkipLayerNormalization",
                      [down, mid, const(f"l{i}.ln2_gamma", w[f"{p}output.LayerNorm.weight"]),
                       const(f"l{i}.ln2_beta", w[f"{p}output.LayerNorm.bias"]),
                       const(f"l{i}.ffn_out_bias", w[f"{p}output.dense.bias"])], out, epsilon=eps)

    graph = helper.make_graph(
        nodes, "sentence_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       ["batch", "sequence", config["hidden_size"]])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9  # what onnxruntime 1.2x/1.3x reads
    return model


def build(model_zip: Path, out: Path) -> Path:
    """Write the int8 graph of the sentence-transformers model in ``model_zip`` to ``out``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    started = time.monotonic()
    with zipfile.ZipFile(model_zip) as archive:
        names = archive.namelist()
        if "model.safetensors" not in names or "config.json" not in names:
            raise ValueError(f"{model_zip}: no model.safetensors and config.json at its top level")
        weights = _read_safetensors(archive.read("model.safetensors"))
        config = json.loads(archive.read("config.json"))
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    if config.get("model_type") != "bert":
        raise ValueError(f"{model_zip}: expected a BERT sentence encoder, config says {config.get('model_type')!r}")

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        onnx.save(bert_graph(weights, config), fp32)
        int8 = Path(scratch) / "int8.onnx"
        logging.disable(logging.WARNING)  # the quantizer logs every tensor on the root logger
        try:
            quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Attention"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            logging.disable(logging.NOTSET)
        os.replace(int8, out)
    logger.info("built %s from %s in %.1f s", out, model_zip, time.monotonic() - started)
    return out


def cached_build(model_zip: Path, cache_dir: Path) -> Path:
    """The int8 graph for ``model_zip``, built on first use and kept in ``cache_dir``."""
    out = Path(cache_dir) / f"minilm-{_sha256(model_zip)[:16]}-g{GRAPH_VERSION}.int8.onnx"
    return out if out.exists() else build(model_zip, out)
