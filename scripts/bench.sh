#!/usr/bin/env bash
# npu-model and llama.cpp side by side on this machine, one command: decode and prefill
# tokens/s at 1 and 2 threads, the memory-bandwidth ceiling, startup (exec → first token) and
# peak RSS, and (with --eval-chunks N) perplexity / KL / top-1 against each runtime's own
# unquantized path. Prints Markdown tables; writes bench/results/<UTC date>.json (+ .md).
#
#   scripts/bench.sh                       # the README's Performance section
#   scripts/bench.sh --models smollm2 --targets cpu --reps 1     # a quicker subset
#   scripts/bench.sh --eval-chunks 4       # also the quality tables
#   scripts/bench.sh --models gemma3 --eval-only --eval-chunks 20   # Gemma 3 270M quality only
#
# Flags go to bench/driver.py (--models, --targets, --threads, --pp, --tg, --reps,
# --startup-reps, --eval-chunks). It builds, once each and cached: the llama venv and llama.cpp's
# tools from the sdist (scripts/llamacpp-tools.sh), the F16 copies of the models, the llama.cpp
# quantized files (its llama-quantize, in $NPU_CACHE), and bench/ in release mode (packing 20
# model variants: tens of minutes the first time). Not part of CI: too slow for it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -x /usr/bin/time ] || apt-get install -y -q time >/dev/null   # peak RSS of each startup run
npu_venv
npu_llama_venv
scripts/fetch-models.sh all gemma3 >/dev/null
for m in smollm2-135m-instruct-q4_1 qwen2.5-coder-0.5b-instruct-q4_k_m gemma-3-270m-q4_k_m; do
  f16="$NPU_CACHE/${m%-q4_*}-f16.gguf"
  [ -f "$f16" ] || "$NPU_PYTHON" tests/llamacpp/make_f16.py "$NPU_CACHE/$m.gguf" "$f16"
done
llama_bin="$(scripts/llamacpp-tools.sh)"
cargo build --release --quiet -p npu-cli --bin npu
npu="$(cargo metadata --format-version 1 --no-deps | "$NPU_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/npu"
(cd bench && cargo build --release --quiet)
bench_bin="$(cd bench && cargo metadata --format-version 1 --no-deps | "$NPU_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d-%H%M).json"
"$NPU_LLAMA_PYTHON" bench/driver.py --bench-bin "$bench_bin" --llama-bin "$llama_bin" --npu "$npu" \
  --cache "$NPU_CACHE" --out "$out" "$@" | tee "${out%.json}.md"
echo "bench: wrote $out and ${out%.json}.md" >&2
