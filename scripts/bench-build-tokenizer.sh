#!/usr/bin/env bash
# Build time and peak memory of a model's tokenizer tables alone in a user's crate, for
# vocabularies whose architecture the packer may not run yet: a crate whose build script
# builds the tables from the GGUF (npu_build::tokenizer) and writes them as generated code
# does (the byte file plus the Rust source borrowing it), and whose lib.rs includes them.
# "build script" reruns it (touch the GGUF: read the GGUF, build the tables, write them, then
# rustc); "rustc" recompiles the crate only (touch lib.rs). Peak memory is the largest single
# process, from /usr/bin/time.
#
#   scripts/bench-build-tokenizer.sh      # needs the models: scripts/fetch-models.sh
#   NPU_BENCH_MODELS="gemma-3-270m-q4_k_m.gguf" scripts/bench-build-tokenizer.sh
#
# NPU_BENCH_DIR (default: a fresh mktemp dir) holds the crates; removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
repo="$PWD"
work="${NPU_BENCH_DIR:-$(mktemp -d /tmp/npu-bench-tok.XXXXXX)}"
export CARGO_TARGET_DIR="$work/target"
read -r -a models <<<"${NPU_BENCH_MODELS:-smollm2-135m-instruct-q4_1.gguf qwen2.5-coder-0.5b-instruct-q4_k_m.gguf gemma-3-270m-q4_k_m.gguf}"
mkdir -p "$work/models"
for f in "${models[@]}"; do
  [ -f "$NPU_CACHE/$f" ] || { echo "bench-build-tokenizer: $NPU_CACHE/$f missing (run scripts/fetch-models.sh)" >&2; exit 1; }
  cp "$NPU_CACHE/$f" "$work/models/$f"
done

make_crate() { # name, gguf path
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
[build-dependencies]
npu-build = { path = "$repo/npu-build" }
[profile.release]
debug = 0
[profile.release.build-override]
opt-level = 3
TOML
  cp "$repo/Cargo.lock" "$dir/Cargo.lock"
  cat >"$dir/build.rs" <<RS
use npu_build::gguf::Gguf;
use npu_build::tokenizer::{store_source, OwnedTokenizerTables};
fn main() {
    let path = "$2";
    println!("cargo:rerun-if-changed={path}");
    let t = OwnedTokenizerTables::from_gguf(&Gguf::open(path).unwrap()).unwrap();
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let le = std::env::var("CARGO_CFG_TARGET_ENDIAN").unwrap() == "little";
    std::fs::write(out.join("tok.bin"), t.to_bytes(le)).unwrap();
    let src = format!("{}{}", t.to_rust_source("TOK"), store_source("TOK", "tok.bin"));
    std::fs::write(out.join("tok.rs"), src).unwrap();
}
RS
  cat >"$dir/src/lib.rs" <<'RS'
include!(concat!(env!("OUT_DIR"), "/tok.rs"));
/// The tables, so that rustc evaluates and keeps them.
pub fn tables() -> &'static npu_runtime::tokenizer::TokenizerTables<'static> {
    &TOK
}
RS
}

timed_build() { # dir, log → prints "seconds peak_MiB"
  (cd "$1" && /usr/bin/time -f '%e %M' -o "$2.time" cargo build --release >"$2" 2>&1) || { cat "$2" >&2; exit 1; }
  awk '{printf "%.1f %.0f\n", $1, $2 / 1024}' "$2.time"
}

rows=()
for f in "${models[@]}"; do
  name="tok_$(echo "${f%.gguf}" | tr -c 'a-zA-Z0-9\n' _)"
  make_crate "$name" "$work/models/$f"
  echo "bench-build-tokenizer: $f (first build, dependencies included)" >&2
  timed_build "$work/$name" "$work/$name.first.log" >/dev/null
  bytes=$(stat -c %s "$(find "$work/target/release/build" -path "*$name*" -name tok.bin | head -1)")
  touch "$work/models/$f"
  read -r script_s script_m < <(timed_build "$work/$name" "$work/$name.script.log")
  touch "$work/$name/src/lib.rs"
  read -r rustc_s rustc_m < <(timed_build "$work/$name" "$work/$name.rustc.log")
  rows+=("| $f | $bytes | $script_s s | $script_m MiB | $rustc_s s | $rustc_m MiB |")
done
echo
echo "| model | tables file (bytes) | build script + rustc | peak RSS | rustc only | peak RSS |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "(machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg))"
[ -n "${NPU_BENCH_KEEP:-}" ] || rm -rf "$work"
