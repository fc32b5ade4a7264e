#!/usr/bin/env bash
# Build time and peak memory of #[npu_model] crates: SmolLM2 (rk3588/int8) and Qwen2.5-0.5B
# (cpu/int4), each embedded as "bytes" (include_bytes!) and as "object" (linked archive),
# cold (fresh OUT_DIR: hash + pack + codegen + rustc + link) and after `touch model.gguf`
# (build script reruns, hashes, hits the cache; rustc recompiles the crate). Peak memory is
# the largest single process (rustc or the build script), from /usr/bin/time.
#
#   scripts/bench-build.sh            # needs the models: scripts/fetch-models.sh
#   NPU_BENCH_MODELS=qwen2.5-0.5b NPU_BENCH_EMBEDS=bytes scripts/bench-build.sh   # one row
#
# Dependencies are compiled once by a warm-up crate first, so each row measures only the
# model crate. NPU_BENCH_DIR (default: a fresh mktemp dir) holds the crates; removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
repo="$PWD"
work="${NPU_BENCH_DIR:-$(mktemp -d /tmp/npu-bench.XXXXXX)}"
export CARGO_TARGET_DIR="$work/target"
unset NPU_BUILD_CACHE
export NPU_BUILD_VERBOSE=1
all_models=("smollm2:smollm2-135m-instruct-q4_1.gguf:rk3588:int8" "qwen2.5-0.5b:qwen2.5-coder-0.5b-instruct-q4_k_m.gguf:cpu:int4")
# NPU_BENCH_MODELS / NPU_BENCH_EMBEDS: space-separated labels / embed modes to run (default all).
models=()
for m in "${all_models[@]}"; do
  case " ${NPU_BENCH_MODELS:-${all_models[*]%%:*}} " in *" ${m%%:*} "*) models+=("$m") ;; esac
done
read -r -a embeds <<<"${NPU_BENCH_EMBEDS:-bytes object}"
for e in "${embeds[@]}"; do
  case "$e" in bytes | object) ;; *) echo "bench-build: NPU_BENCH_EMBEDS: \`$e\` is not bytes or object" >&2; exit 2 ;; esac
done
if [ "${#models[@]}" -eq 0 ]; then
  echo "bench-build: NPU_BENCH_MODELS=\"${NPU_BENCH_MODELS:-}\" names none of: ${all_models[*]%%:*}" >&2
  exit 2
fi
# Copies of the models, so `touch` does not disturb anyone else's build of the originals.
mkdir -p "$work/models"
for m in "${models[@]}"; do
  IFS=: read -r _ file _ _ <<<"$m"
  [ -f "$NPU_CACHE/$file" ] || { echo "bench-build: $NPU_CACHE/$file missing (run scripts/fetch-models.sh)" >&2; exit 1; }
  cp "$NPU_CACHE/$file" "$work/models/$file"
done

make_crate() { # name, lib.rs body
  local dir="$work/$1"
  mkdir -p "$dir/src"
  cat >"$dir/Cargo.toml" <<TOML
[package]
name = "$1"
version = "0.1.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
npu-runtime = { path = "$repo/npu-runtime" }
npu-model-macro = { path = "$repo/npu-model-macro" }
[build-dependencies]
npu-build = { path = "$repo/npu-build" }
[profile.release]
debug = 0
[profile.release.build-override]
opt-level = 3
TOML
  cp "$repo/Cargo.lock" "$dir/Cargo.lock"
  printf 'fn main() {\n    npu_build::compile().unwrap();\n}\n' >"$dir/build.rs"
  printf '%s\n' "$2" >"$dir/src/lib.rs"
}

timed_build() { # dir, log → prints "seconds peak_MiB"
  (cd "$1" && /usr/bin/time -f '%e %M' -o "$2.time" cargo build --release >"$2" 2>&1) || { cat "$2" >&2; exit 1; }
  awk '{printf "%.1f %.0f\n", $1, $2 / 1024}' "$2.time"
}

echo "bench-build: warming up dependencies in $work" >&2
make_crate bench_warm "//! no models"
timed_build "$work/bench_warm" "$work/warm.log" >/dev/null

rows=()
for m in "${models[@]}"; do
  IFS=: read -r label file target quant <<<"$m"
  for embed in "${embeds[@]}"; do
    name="bench_${label//[.-]/_}_$embed"
    make_crate "$name" "use npu_model_macro::npu_model;
#[npu_model(path = \"$work/models/$file\", target = \"$target\", quant = \"$quant\", embed = \"$embed\")]
pub struct M;"
    echo "bench-build: $label $embed cold" >&2
    read -r cold_s cold_m < <(timed_build "$work/$name" "$work/$name.cold.log")
    blob=$(grep -o 'embedded [0-9]* bytes' "$work/$name.cold.log" | awk '{print $2}')
    pack=$(grep -o 'packed in [0-9.]* s' "$work/$name.cold.log" | awk '{print $3}')
    touch "$work/models/$file"
    echo "bench-build: $label $embed after touch" >&2
    read -r touch_s touch_m < <(timed_build "$work/$name" "$work/$name.touch.log")
    hit=$(grep -c 'cache hit' "$work/$name.touch.log" || true)
    hash=$(grep -o 'in [0-9.]* s; cache hit' "$work/$name.touch.log" | awk '{print $2}')
    rows+=("| $label ($target/$quant) | $embed | $((blob / 1048576)) MiB | $cold_s s | $cold_m MiB | ${pack:-?} s | $touch_s s | $touch_m MiB | $([ "$hit" -ge 1 ] && echo "hit, hash ${hash} s" || echo MISS) |")
  done
done
echo
echo "| model | embed | blob | cold build | cold peak RSS | of which packing | after touch | touch peak RSS | cache |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "(machine: $(nproc) cores; dependencies prebuilt; peak RSS = largest single process)"
[ -n "${NPU_BENCH_KEEP:-}" ] || rm -rf "$work"
