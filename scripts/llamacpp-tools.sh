#!/usr/bin/env bash
# llama.cpp's own command-line tools (llama-bench, llama-completion, llama-simple,
# llama-perplexity, llama-quantize), built with cmake from the llama.cpp source vendored in
# the PyPI llama-cpp-python sdist that scripts/fetch-models.sh caches — the same version the
# llama venv (scripts/env.sh) builds. Used by scripts/bench.sh for the side-by-side figures:
# a compiled tool is the fair startup comparison (a Python process pays its imports first).
#
#   scripts/llamacpp-tools.sh        # prints the bin directory; builds once (minutes), cached
#
# Built CPU-only, GGML_NATIVE (the default: -march=native, as pip's build of the venv),
# without libcurl. Output: $NPU_CACHE/llamacpp-tools/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
npu_llama_venv
sdist="$NPU_CACHE/sdist/llama_cpp_python-0.3.36.tar.gz"
[ -f "$sdist" ] || scripts/fetch-models.sh all >/dev/null
root="$NPU_CACHE/llamacpp-tools"
bin="$root/bin"
tools=(llama-bench llama-completion llama-simple llama-perplexity llama-quantize)
stamp="$root/.stamp"
want="$(sha256sum "$sdist" | cut -c1-16) ${tools[*]}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "llamacpp-tools: building ${tools[*]} from $sdist (minutes)" >&2
  # cmake from PyPI (the Debian image has none), into the llama venv.
  "$NPU_LLAMA_PYTHON" -m pip install -q --disable-pip-version-check cmake==4.1.2
  cmake_bin="$NPU_LLAMA_VENV/bin/cmake"
  rm -rf "$root"; mkdir -p "$root/src"
  tar xzf "$sdist" -C "$root/src" --strip-components=3 llama_cpp_python-0.3.36/vendor/llama.cpp
  "$cmake_bin" -S "$root/src" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >"$root/cmake.log"
  "$cmake_bin" --build "$root/build" -j "$(nproc)" --target "${tools[@]}" >"$root/build.log"
  mkdir -p "$bin"
  for t in "${tools[@]}"; do cp "$root/build/bin/$t" "$bin/"; done
  rm -rf "$root/build" "$root/src"
  echo "$want" > "$stamp"
fi
echo "$bin"
