#!/usr/bin/env bash
# The fast CPU backend's aarch64 (NEON) kernels, bit-exact against the reference executor, run
# under qemu-user: the RK3588's CPU is an A76/A55, and x86 CI would otherwise never execute
# them; and the RKNPU backend against the stand-in librknnrt. Installs what it needs: the Rust
# target (rustup), a cross linker and qemu-user (apt).
#
#   scripts/test-aarch64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
T=aarch64-unknown-linux-gnu
rustup target list --installed | grep -qx "$T" || rustup target add "$T"
if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
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
