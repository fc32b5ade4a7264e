#!/usr/bin/env bash
# scripts/model-app.sh on the synthetic 8B model (scripts/synth-gguf.py, Llama-3-8B shapes,
# written on first use): a user crate declaring it for rk3588 with `embed = "file"` builds for
# x86-64 (its build script packs the model; the blob is written beside the executable), maps
# the blob at startup and generates a few tokens, then cross-builds and links for aarch64-linux
# (the blob is a file there too, so the link does not depend on its size).
#
#   scripts/big-model-app.sh [QUANT] [TOKENS]     # QUANT: int8_hadamard (default) or int4_hadamard
#
# Needs tens of GB of disk (the GGUF, the cache entry and one blob file per target) and
# minutes; not part of CI. Env: NPU_SYNTH_GGUF (default: the seed-1 Q4_0 llama3-8b file),
# NPU_AARCH64=0 to skip the cross build; model-app.sh's NPU_APP_DIR, KEEP, NPU_BUILD_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
npu_venv
quant="${1:-int8_hadamard}"
tokens="${2:-4}"
gguf="${NPU_SYNTH_GGUF:-$NPU_CACHE/synth/llama3-8b-q4_0-s1.gguf}"
[ -f "$gguf" ] || "$NPU_PYTHON" scripts/synth-gguf.py --shape llama3-8b --type q4_0 --seed 1 -o "$gguf"
cross=(--aarch64)
[ "${NPU_AARCH64:-1}" != 0 ] || cross=()
exec scripts/model-app.sh "$gguf" --target rk3588 --quant "$quant" --embed file --context 256 \
  --tokens "$tokens" "${cross[@]}"
