# Sourced by the project's scripts: where the cache and the Python oracle venv live, and how to
# make sure the venv exists. Nothing here is committed output; everything lands in $NPU_CACHE.
export NPU_CACHE="${NPU_CACHE:-$HOME/.cache/npu-model}"
export NPU_VENV="${NPU_VENV:-$NPU_CACHE/venv}"
export NPU_PYTHON="$NPU_VENV/bin/python"
# The one cargo target directory of the side workspaces (examples, models-crate, fuzz,
# firmware images, bench): their build scripts' optimized npu-build compiles once for all.
export NPU_SIDE_TARGET_DIR="${NPU_SIDE_TARGET_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/side}"

# Pinned oracle packages: gguf-py from the llama.cpp authors, numpy, pytest.
NPU_PY_PACKAGES=(gguf==0.19.0 numpy==2.4.6 pytest==8.4.2)

npu_venv() {
  local stamp="$NPU_VENV/.npu-packages"
  if [ ! -x "$NPU_PYTHON" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${NPU_PY_PACKAGES[*]}" ]; then
    echo "env: creating Python venv $NPU_VENV (${NPU_PY_PACKAGES[*]})" >&2
    python3 -m venv "$NPU_VENV"
    "$NPU_PYTHON" -m pip install -q --disable-pip-version-check "${NPU_PY_PACKAGES[@]}"
    echo "${NPU_PY_PACKAGES[*]}" > "$stamp"
  fi
}

# llama.cpp, built from source by PyPI llama-cpp-python, as the reference for logits, greedy
# outputs and speed. Built once into its own venv (minutes on 2 cores), then cached.
export NPU_LLAMA_VENV="${NPU_LLAMA_VENV:-$NPU_CACHE/llama-venv}"
export NPU_LLAMA_PYTHON="$NPU_LLAMA_VENV/bin/python"
NPU_LLAMA_PACKAGES=(llama-cpp-python==0.3.36 gguf==0.19.0 numpy==2.4.6)

npu_llama_venv() {
  local stamp="$NPU_LLAMA_VENV/.npu-packages"
  if [ ! -x "$NPU_LLAMA_PYTHON" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${NPU_LLAMA_PACKAGES[*]}" ]; then
    echo "env: building llama.cpp via ${NPU_LLAMA_PACKAGES[0]} into $NPU_LLAMA_VENV (takes minutes)" >&2
    python3 -m venv "$NPU_LLAMA_VENV"
    # The multimodal (llava/mtmd) library is not needed here; skipping it shortens the build.
    CMAKE_ARGS="-DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$NPU_LLAMA_PYTHON" -m pip install -q \
      --disable-pip-version-check --no-binary llama-cpp-python "${NPU_LLAMA_PACKAGES[@]}"
    echo "${NPU_LLAMA_PACKAGES[*]}" > "$stamp"
  fi
}

# Cross builds for aarch64-linux: the rustup target, Debian's cross gcc (the linker) and
# qemu-user (cargo's runner for tests and binaries), installed when missing.
npu_aarch64_linux() {
  local t=aarch64-unknown-linux-gnu sudo=""
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
  fi
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
}
