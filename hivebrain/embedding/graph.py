"""The all-MiniLM-L6-v2 network as an ONNX graph, built from its safetensors with `onnx.helper`.

No torch and no model hub: the graph is standard opset-17 ops (exact erf GELU), with masked mean
pooling and L2 normalisation inside, so its one output `embedding` [batch, 384] is ready to store.
It is then quantized to dynamic int8, per channel (cosine >= 0.99 against the fp32 model).

The build is deterministic and takes a few seconds, but peaks at about 0.6 GB, so `local.py` runs
it once, in a child process: `python -m hivebrain.embedding.graph WEIGHTS OUT`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HIDDEN, HEADS, LAYERS, EPS = 384, 12, 6, 1e-12
HEAD_DIM = HIDDEN // HEADS
OPSET = 17
BUILDER = "hivebrain-minilm-1"

Array = npt.NDArray[Any]


class _Graph:
    """Collects nodes and initializers; every node has one output, named like the node."""

    def __init__(self, weights: dict[str, Array]) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        suffix = "embeddings.word_embeddings.weight"
        key = next(k for k in weights if k.endswith(suffix))
        self._prefix = key[: -len(suffix)]  # "", "bert." or "model." depending on the exporter
        self._weights = weights
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def weight(self, name: str) -> Array:
        return self._weights[self._prefix + name].astype(np.float32)

    def const(self, name: str, value: Any) -> str:
        self.inits.append(self._numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        self.nodes.append(self._helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, name: str, out: str) -> str:
        """torch's Linear: x @ W.T + b."""
        w = self.const(out + ".W", np.ascontiguousarray(self.weight(name + ".weight").T))
        b = self.const(out + ".b", self.weight(name + ".bias"))
        return self.node("Add", [self.node("MatMul", [x, w], out + ".mm"), b], out)

    def layernorm(self, x: str, name: str, out: str) -> str:
        gamma = self.const(out + ".g", self.weight(name + ".weight"))
        beta = self.const(out + ".beta", self.weight(name + ".bias"))
        return self.node("LayerNormalization", [x, gamma, beta], out, axis=-1, epsilon=EPS)


def _embeddings(g: _Graph) -> str:
    # Single sentences only: token_type_ids are all 0, so type row 0 is folded in as a bias.
    word = g.node("Gather", [g.const("word_emb", g.weight("embeddings.word_embeddings.weight")),
                             "input_ids"], "we")  # fmt: skip
    shape = g.node("Shape", ["input_ids"], "ids_shape")
    seqlen = g.node("Gather", [shape, g.const("one_idx", np.array(1, np.int64))], "seqlen")
    zero, one = g.const("zero_i", np.array(0, np.int64)), g.const("one_i", np.array(1, np.int64))
    positions = g.node("Range", [zero, seqlen, one], "pos_ids")
    pos_table = g.const("pos_emb", g.weight("embeddings.position_embeddings.weight"))
    pos = g.node("Gather", [pos_table, positions], "pe")
    type0 = g.const("type0", g.weight("embeddings.token_type_embeddings.weight")[0])
    x = g.node("Add", [g.node("Add", [word, pos], "wp"), type0], "emb")
    return g.layernorm(x, "embeddings.LayerNorm", "emb_ln")


def _layer(g: _Graph, i: int, x: str, bias: str) -> str:
    p = f"encoder.layer.{i}."
    split = g.const(f"l{i}.split", np.array([0, 0, HEADS, HEAD_DIM], np.int64))
    merge = g.const(f"l{i}.merge", np.array([0, 0, HIDDEN], np.int64))
    heads = {}
    for n in ("query", "key", "value"):
        y = g.linear(x, p + f"attention.self.{n}", f"l{i}.{n}")
        y = g.node("Reshape", [y, split], f"l{i}.{n}.r")
        perm = [0, 2, 3, 1] if n == "key" else [0, 2, 1, 3]  # key pre-transposed for q @ k^T
        heads[n] = g.node("Transpose", [y], f"l{i}.{n}.t", perm=perm)
    scale = g.const(f"l{i}.scale", np.array(1.0 / np.sqrt(HEAD_DIM), np.float32))
    s = g.node("MatMul", [heads["query"], heads["key"]], f"l{i}.qk")
    s = g.node("Add", [g.node("Mul", [s, scale], f"l{i}.qks"), bias], f"l{i}.qkb")
    s = g.node("Softmax", [s], f"l{i}.prob", axis=-1)
    ctx = g.node("MatMul", [s, heads["value"]], f"l{i}.ctx")
    ctx = g.node("Transpose", [ctx], f"l{i}.ctx.t", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, merge], f"l{i}.ctx.r")
    a = g.linear(ctx, p + "attention.output.dense", f"l{i}.ao")
    x = g.layernorm(g.node("Add", [x, a], f"l{i}.res1"), p + "attention.output.LayerNorm",
                    f"l{i}.ln1")  # fmt: skip
    f = g.linear(x, p + "intermediate.dense", f"l{i}.ff1")
    # exact GELU, 0.5 * f * (1 + erf(f / sqrt(2))), a pattern onnxruntime fuses into Gelu
    sqrt2 = g.const(f"l{i}.sqrt2", np.array(np.sqrt(2.0), np.float32))
    erf = g.node("Erf", [g.node("Div", [f, sqrt2], f"l{i}.gd")], f"l{i}.erf")
    one = g.const(f"l{i}.one", np.array(1.0, np.float32))
    half = g.const(f"l{i}.half", np.array(0.5, np.float32))
    f = g.node("Mul", [f, g.node("Add", [erf, one], f"l{i}.ge")], f"l{i}.gm")
    f = g.node("Mul", [f, half], f"l{i}.gelu")
    f = g.linear(f, p + "output.dense", f"l{i}.ff2")
    return g.layernorm(g.node("Add", [x, f], f"l{i}.res2"), p + "output.LayerNorm", f"l{i}.ln2")


def build_graph(weights_path: Path) -> Any:
    """The fp32 `onnx.ModelProto` of the MiniLM-L6 sentence embedder in `weights_path`."""
    import onnx
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    g = _Graph(load_file(str(weights_path)))
    x = _embeddings(g)
    maskf = g.node("Cast", ["attention_mask"], "maskf", to=TensorProto.FLOAT)
    # additive attention bias [B, 1, 1, L]: 0 for tokens, -1e4 for padding
    inv = g.node("Sub", [g.const("onef", np.array(1.0, np.float32)), maskf], "inv_mask")
    mbias = g.node("Mul", [inv, g.const("neg", np.array(-1e4, np.float32))], "mbias")
    bias = g.node("Unsqueeze", [mbias, g.const("ax12", np.array([1, 2], np.int64))], "attn_bias")
    for i in range(LAYERS):
        x = _layer(g, i, x, bias)

    # masked mean pooling, then L2 normalisation
    mask3 = g.node("Unsqueeze", [maskf, g.const("axm1", np.array([-1], np.int64))], "mask3")
    ax1 = g.const("ax1", np.array([1], np.int64))
    masked = g.node("Mul", [x, mask3], "masked")
    summed = g.node("ReduceSum", [masked, ax1], "summed", keepdims=0)
    count = g.node("ReduceSum", [mask3, ax1], "count", keepdims=0)
    count = g.node("Max", [count, g.const("tiny", np.array(1e-9, np.float32))], "count_c")
    mean = g.node("Div", [summed, count], "mean")
    norm = g.node("ReduceL2", [mean], "l2", axes=[-1], keepdims=1)
    norm = g.node("Max", [norm, g.const("tiny2", np.array(1e-12, np.float32))], "l2c")
    g.node("Div", [mean, norm], "embedding")

    graph = helper.make_graph(
        g.nodes,
        "minilm_l6_mean_pool",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        g.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=BUILDER
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_int8(weights_path: Path, out: Path) -> None:
    """Build the graph, quantize it to dynamic int8 per channel, and write it to `out` atomically
    (a reader never sees a half-written file)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out.parent) as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(build_graph(weights_path), str(fp32))
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(int8, out)


if __name__ == "__main__":
    build_int8(Path(sys.argv[1]), Path(sys.argv[2]))
