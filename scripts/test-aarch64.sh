#!/usr/bin/env bash
# The fast CPU backend's aarch64 (NEON) kernels, bit-exact against the reference executor, run
# under qemu-user: the RK3588's CPU is an A76/A55, and x86 CI would otherwise never execute
# them; and the RKNPU backend against the stand-in librknnrt. Installs what it needs: the Rust
# target (rustup), a cross linker and qemu-user (apt).
#
#   scripts/test-aarch64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
npu_aarch64_linux
T=aarch64-unknown-linux-gnu
cargo test --release --target "$T" -p npu-runtime --lib
cargo test --release --target "$T" -p npu-build --test cpu_fast
# The RKNPU backend against the stand-in librknnrt.so, both cross-built (the test loads the
# aarch64 cdylib next to it with dlopen, as on a board): bit-exact matmuls, the tiny model's
# greedy tokens for all five schemes equal to the CPU's, all 3 cores used.
cargo test --release --target "$T" -p rknpu-sim --test backend
# An application with embed = "file" cross-builds, links, and under qemu maps its blob file
# from beside the executable and generates the same tokens as the embedded model.
NPU_UI_TARGET="$T" NPU_UI_CASE=embed_file cargo test --release -p npu-model-macro --test ui
# The no_std runtime for bare-metal aarch64 (firmware) compiles with its kernels.
rustup target list --installed | grep -qx aarch64-unknown-none || rustup target add aarch64-unknown-none
cargo build --release --target aarch64-unknown-none -p npu-runtime
