#!/usr/bin/env bash
# The style and lint gates of every workspace in the repository: the main one and the crates
# that are their own workspaces (examples/, bench/, tests/models-crate/, the firmware images,
# npu-build/fuzz/).
#
#   scripts/lint.sh fmt            # cargo fmt --check everywhere (seconds)
#   scripts/lint.sh modules        # no module cycles in npu-runtime, npu-build, rknpu-sim (module-graph.py)
#   scripts/lint.sh clippy-main    # clippy -D warnings, main workspace, all targets
#   scripts/lint.sh clippy-side    # clippy -D warnings in examples, models-crate, firmware, fuzz
#   scripts/lint.sh clippy-bench   # clippy -D warnings in bench/ (its models: tiny stand-ins)
#   scripts/lint.sh all            # everything above
#
# Clippy builds what it checks: in the side workspaces that includes their build scripts,
# which pack the declared models. NPU_BUILD_CACHE (default: one folder under the main target
# directory) lets them share packed models, and NPU_SIDE_TARGET_DIR (scripts/env.sh; default
# target/side) is their one cargo target directory (the examples and firmware tests build
# there too).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
repo="$PWD"
export NPU_BUILD_CACHE="${NPU_BUILD_CACHE:-$repo/target/lint-pack-cache}"

# Workspaces with their own Cargo.lock / [workspace], formatted and linted on their own.
side=(examples tests/models-crate npu-build/fuzz)
firmware=(firmware-examples/aarch64-virt firmware-examples/cortex-m)

fmt() {
  local w
  # `--all` also covers each workspace's path dependencies (firmware-examples/fw-common).
  for w in . "${side[@]}" bench "${firmware[@]}"; do
    (cd "$w" && cargo fmt --all --check) || { echo "lint: $w is not formatted (cargo fmt --all)" >&2; return 1; }
  done
}

modules() {
  local out
  out="$(python3 scripts/module-graph.py npu-runtime/src npu-build/src rknpu-sim/src)" && return 0
  echo "$out" >&2; echo "lint: a module cycle (scripts/module-graph.py)" >&2; return 1
}

clippy_main() { cargo clippy --workspace --all-targets --quiet -- -D warnings; }

clippy_side() {
  local w t
  export CARGO_TARGET_DIR="$NPU_SIDE_TARGET_DIR"
  for w in "${side[@]}"; do
    (cd "$w" && cargo clippy --all-targets --quiet -- -D warnings)
  done
  # Bare-metal images: their own target (from .cargo/config.toml); no test harness there.
  for t in aarch64-unknown-none thumbv7em-none-eabihf; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  done
  for w in "${firmware[@]}"; do
    (cd "$w" && cargo clippy --quiet -- -D warnings)
  done
}

# bench/ declares twenty variants of the two real models (F16 copies that scripts/bench.sh
# makes with llama.cpp's tools). Its code is the same whatever model a declaration names, so
# the lint packs a stand-in under both file names: the repo's tiny llama with its context
# raised to the declarations' 1024 (scripts/gguf-set.py). Packing twenty tiny models takes
# seconds; the real ones take tens of minutes. Its own pack cache, and the side workspaces'
# target directory rather than bench/target, so the stand-ins never meet scripts/bench.sh's
# real build.
clippy_bench() {
  local models="$repo/target/lint-bench/models" m
  mkdir -p "$models"
  npu_venv
  for m in smollm2-135m-instruct-f16 qwen2.5-coder-0.5b-instruct-f16; do
    "$NPU_PYTHON" scripts/gguf-set.py models/tiny/moby-tiny.gguf "$models/$m.gguf" '{arch}.context_length=1024'
  done
  (cd bench && NPU_CACHE="$models" NPU_BUILD_CACHE="$repo/target/lint-bench/pack-cache" \
    CARGO_TARGET_DIR="$NPU_SIDE_TARGET_DIR" cargo clippy --all-targets --quiet -- -D warnings)
}

case "${1:-all}" in
  fmt) fmt ;;
  modules) modules ;;
  clippy-main) clippy_main ;;
  clippy-side) clippy_side ;;
  clippy-bench) clippy_bench ;;
  all) fmt; modules; clippy_main; clippy_side; clippy_bench ;;
  *) echo "usage: scripts/lint.sh [fmt|modules|clippy-main|clippy-side|clippy-bench|all]" >&2; exit 2 ;;
esac
