#!/usr/bin/env bash
# Whole-model packing time and peak memory per model and scheme, via `npu pack` under
# /usr/bin/time -v. Prints a markdown table and each run's summary line.
#
#   scripts/bench-pack.sh [target] [threads]     (defaults: rk3588, all cores)
#
# Models come from $NPU_CACHE (scripts/fetch-models.sh). Output goes to a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
TARGET="${1:-rk3588}"
THREADS="${2:-$(nproc)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p npu-cli
NPU="$CARGO_TARGET_DIR/release/npu"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

echo "| model | scheme | wall s | peak RSS MiB | blob MiB |"
echo "|---|---|---|---|---|"
SUMMARIES=()
for model in smollm2-135m-instruct-q4_1.gguf qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; do
  path="$NPU_CACHE/$model"
  [ -f "$path" ] || { echo "missing $path (run scripts/fetch-models.sh)" >&2; exit 1; }
  for scheme in fp16 int8 int8_hadamard int4 int4_hadamard; do
    dir="$OUT/${model%.gguf}-$scheme"
    /usr/bin/time -v "$NPU" pack "$path" --target "$TARGET" --quant "$scheme" --threads "$THREADS" -o "$dir" \
      >"$OUT/stdout" 2>"$OUT/time"
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT/time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$OUT/time")
    blob=$(stat -c %s "$dir/model.blob" | awk '{printf "%.1f", $1/1048576}')
    echo "| ${model%.gguf} | $scheme | $wall | $rss | $blob |"
    SUMMARIES+=("${model%.gguf}: $(cat "$OUT/stdout")")
    rm -rf "$dir"
  done
done
echo
printf '%s\n' "${SUMMARIES[@]}"
