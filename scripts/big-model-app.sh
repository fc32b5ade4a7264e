#!/usr/bin/env bash
# An application that declares the synthetic 8B model (scripts/synth-gguf.py, Llama-3-8B
# shapes) with `embed = "file"`, written from scratch in a temporary folder as a user would:
# it builds for x86-64 (the blob packed by its build script, written beside the executable),
# maps the blob at startup and generates a few tokens; then it cross-builds and links for
# aarch64-linux (the blob is a file there too, so the link does not depend on its size).
# Prints the build's wall time and peak RSS, the blob's size and the tokens/s of the run.
#
#   scripts/big-model-app.sh [QUANT] [TOKENS]     # QUANT: int8_hadamard (default) or int4_hadamard
#
# Needs tens of GB of disk (the GGUF, the cache entry and one blob file per target) and
# minutes; not part of CI. Env: NPU_SYNTH_GGUF (default: the seed-1 Q4_0 llama3-8b file,
# written on first use), NPU_BIG_APP_DIR (default: a new folder under /tmp; removed at the end
# unless KEEP=1), NPU_AARCH64=0 to skip the cross build.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
source scripts/env.sh
npu_venv
quant="${1:-int8_hadamard}"
tokens="${2:-4}"
gguf="${NPU_SYNTH_GGUF:-$NPU_CACHE/synth/llama3-8b-q4_0-s1.gguf}"
[ -f "$gguf" ] || "$NPU_PYTHON" scripts/synth-gguf.py --shape llama3-8b --type q4_0 --seed 1 -o "$gguf"
[ -x /usr/bin/time ] || apt-get install -y -q time >/dev/null
app="${NPU_BIG_APP_DIR:-$(mktemp -d /tmp/npu-big-app.XXXXXX)}"
mkdir -p "$app/src"
log() { echo "big-model-app: $*" >&2; }

cat > "$app/Cargo.toml" <<EOF
[package]
name = "big-model-app"
version = "0.1.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
npu-runtime = { path = "$repo/npu-runtime", features = ["std"] }
npu-model-macro = { path = "$repo/npu-model-macro" }

[build-dependencies]
npu-build = { path = "$repo/npu-build" }

[profile.release]
debug = 0

[profile.release.build-override]
opt-level = 3
EOF
cat > "$app/build.rs" <<'EOF'
fn main() {
    npu_build::compile().unwrap();
}
EOF
cat > "$app/src/main.rs" <<EOF
use npu_model_macro::npu_model;
use npu_runtime::generate::generate;
use npu_runtime::model::Session;
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::select;
use npu_runtime::tokenizer::EncodeOptions;
use std::time::Instant;

#[npu_model(path = "\${NPU_SYNTH_DIR}/$(basename "$gguf")", target = "rk3588", quant = "$quant", context = 256, embed = "file")]
struct Big;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let model = *Big::load()?;
    let mapped = t0.elapsed();
    let tok = model.tokenizer()?;
    let prompt = tok.encode_vec(b"Once upon a time", EncodeOptions { add_special: true, parse_special: false })?;
    let mut arena = vec![0u8; Big::ARENA_BYTES];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let backend = select::select(select::Choice::Cpu, &model.weights, || select::cpu(None, threads))?.backend;
    let mut session = Session::new(model, backend, &mut arena)?;
    let mut sampler = Sampler::new(SamplerConfig::GREEDY);
    let mut ids = Vec::new();
    let t1 = Instant::now();
    generate(&mut session, &mut sampler, &prompt, $tokens, |id| {
        ids.push(id);
        true
    })?;
    let secs = t1.elapsed().as_secs_f64();
    println!(
        "blob {} bytes in {} IOMMU domain(s), mapped in {:.3} s; prompt {:?}; generated {:?} in {secs:.1} s ({:.2} tokens/s)",
        Big::BLOB_LEN, Big::IOMMU_DOMAINS, mapped.as_secs_f64(), prompt, ids, ids.len() as f64 / secs
    );
    if ids.len() != $tokens {
        return Err(format!("generated {} tokens, wanted $tokens", ids.len()).into());
    }
    Ok(())
}
EOF

export NPU_SYNTH_DIR="$(dirname "$gguf")"
export NPU_BUILD_CACHE="${NPU_BUILD_CACHE:-$NPU_CACHE/big-app-pack-cache}"
cd "$app"
log "x86-64: cargo build --release ($quant; packs $(du -h "$gguf" | cut -f1) GGUF on a cache miss)"
/usr/bin/time -f "big-model-app: x86-64 build: %e s wall, peak RSS %M KiB (largest process)" \
  cargo build --release --quiet
blob="$(ls target/release/*.npublob)"
log "blob file $blob: $(stat -c %s "$blob") bytes"
./target/release/big-model-app

if [ "${NPU_AARCH64:-1}" != 0 ]; then
  T=aarch64-unknown-linux-gnu
  rustup target list --installed | grep -qx "$T" || rustup target add "$T"
  command -v aarch64-linux-gnu-gcc >/dev/null || apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  log "aarch64: cargo build --release --target $T (cache hit: the blob is copied, not packed)"
  /usr/bin/time -f "big-model-app: aarch64 build: %e s wall" cargo build --release --quiet --target "$T"
  file "target/$T/release/big-model-app" | sed 's/^/big-model-app: /'
  ls -l "target/$T/release/"*.npublob | sed 's/^/big-model-app: /'
fi
cd "$repo"
[ "${KEEP:-0}" = 1 ] || rm -rf "$app"
