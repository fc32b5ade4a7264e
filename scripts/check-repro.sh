#!/usr/bin/env bash
# Reproducibility of #[npu_model] builds: builds tests/models-crate from clean twice, in two
# different directories with two different target directories, and compares everything
# npu-build wrote into OUT_DIR/npu-model (generated Rust, blobs, static libraries, reports)
# byte for byte. Also runs the built binary, which checks every linked blob against its
# generated SHA-256.
#
#   scripts/check-repro.sh            # needs the models: scripts/fetch-models.sh
#
# NPU_REPRO_DIR (default: a fresh mktemp dir) holds both copies; removed on success.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
repo="$PWD"
for m in smollm2-135m-instruct-q4_1.gguf qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; do
  [ -f "$NPU_CACHE/$m" ] || { echo "check-repro: $NPU_CACHE/$m missing (run scripts/fetch-models.sh)" >&2; exit 1; }
done
work="${NPU_REPRO_DIR:-$(mktemp -d /tmp/npu-repro.XXXXXX)}"
unset NPU_BUILD_CACHE NPU_BUILD_VERBOSE

build_copy() { # $1 = directory to build in; the crate's path dependencies point at this repo
  local dir="$1"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$repo/tests/models-crate/." "$dir/"
  rm -rf "$dir/target" "$dir/Cargo.lock"
  cp "$repo/Cargo.lock" "$dir/Cargo.lock"
  sed -i "s#\.\./\.\./#$repo/#g" "$dir/Cargo.toml"
  local start=$SECONDS
  # Different thread counts too: the packed bytes must not depend on them.
  (cd "$dir" && NPU_BUILD_THREADS="$2" CARGO_TARGET_DIR="$dir/target" cargo build --release --quiet)
  echo "check-repro: built $dir in $((SECONDS - start)) s (NPU_BUILD_THREADS=$2)"
  (cd "$dir" && "$dir/target/release/npu-models-crate")
}

build_copy "$work/a/models-crate" 2
build_copy "$work/b/elsewhere/models-crate" 1

out_of() { ls -d "$1"/target/release/build/npu-models-crate-*/out/npu-model | head -n 1; }
A="$(out_of "$work/a/models-crate")"
B="$(out_of "$work/b/elsewhere/models-crate")"
# The cache directory's names include a digest of the build-script executable (which may
# embed its own path); everything read from it is compared through the files below.
files_a="$(cd "$A" && find . -path ./cache -prune -o -type f -print | sort)"
files_b="$(cd "$B" && find . -path ./cache -prune -o -type f -print | sort)"
if [ "$files_a" != "$files_b" ]; then
  echo "check-repro: FAIL: different file lists"; diff <(echo "$files_a") <(echo "$files_b"); exit 1
fi
fail=0
for f in $files_a; do
  if cmp -s "$A/$f" "$B/$f"; then
    printf 'check-repro: same  %12d bytes  %s\n' "$(stat -c %s "$A/$f")" "$f"
  else
    echo "check-repro: DIFFERENT $f"; fail=1
  fi
done
if grep -rl -e "$work" -e "$HOME" "$A" --include='*.rs' >/dev/null 2>&1; then
  echo "check-repro: FAIL: an absolute path leaked into generated code"; fail=1
fi
[ "$fail" = 0 ] || exit 1
rm -rf "$work"
echo "check-repro: OK ($(echo "$files_a" | wc -l) files byte-identical across two clean builds in different directories)"
