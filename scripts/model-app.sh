#!/usr/bin/env bash
# A user's application written from scratch for any GGUF: a new crate in a temporary folder
# that declares the model with #[npu_model] and calls npu_build::compile() from its build.rs,
# exactly as the README tells a user to. It builds in release (the build script packs the
# model), runs greedy generation on a prompt, and prints the prompt ids, the generated ids and
# tokens/s. With --expect the generated ids must equal the given ones (e.g. llama.cpp's greedy
# continuation); with --aarch64 the crate also cross-builds and links for aarch64-linux.
#
#   scripts/model-app.sh MODEL.gguf [--target T] [--quant Q] [--embed auto|bytes|object|file]
#       [--context N] [--tokens N] [--prompt TEXT] [--expect "ID ID ..."] [--aarch64]
#
# Defaults: --target cpu --quant fp16 --embed auto --tokens 8 --prompt "Once upon a time"
# (tokenized as llama.cpp does: BOS if the vocabulary asks for it, special-token text
# parsed); without --context the declaration leaves `context` to the attribute's default.
# Generation stops early at an end-of-generation token. Prints the build's wall time and peak
# RSS (largest process: the build script when it packs).
# Not part of CI (a real model takes minutes to pack and compile). Env: NPU_APP_DIR (default:
# a new folder under /tmp, removed at the end unless KEEP=1), NPU_BUILD_CACHE (default: one
# under $NPU_CACHE, so a second run does not pack again).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
source scripts/env.sh
usage() { sed -n '9,10p' "$0" | sed 's/^# *//' >&2; exit 2; }
[ $# -ge 1 ] || usage
gguf="$(realpath "$1")"; shift
target=cpu quant=fp16 embed=auto context="" tokens=8 prompt="Once upon a time" expect="" aarch64=0
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --quant) quant="$2"; shift 2 ;;
    --embed) embed="$2"; shift 2 ;;
    --context) context="$2"; shift 2 ;;
    --tokens) tokens="$2"; shift 2 ;;
    --prompt) prompt="$2"; shift 2 ;;
    --expect) expect="$2"; shift 2 ;;
    --aarch64) aarch64=1; shift ;;
    *) usage ;;
  esac
done
[ -f "$gguf" ] || { echo "model-app: $gguf: no such file" >&2; exit 2; }
[ -x /usr/bin/time ] || apt-get install -y -q time >/dev/null
app="${NPU_APP_DIR:-$(mktemp -d /tmp/npu-app.XXXXXX)}"
mkdir -p "$app/src"
log() { echo "model-app: $*" >&2; }

cat > "$app/Cargo.toml" <<EOF
[package]
name = "model-app"
version = "0.1.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
npu-runtime = { path = "$repo/npu-runtime", features = ["std"] }
npu-model-macro = { path = "$repo/npu-model-macro" }

[build-dependencies]
npu-build = { path = "$repo/npu-build" }

[profile.release.build-override]
opt-level = 3
EOF
cat > "$app/build.rs" <<'EOF'
fn main() {
    npu_build::compile().unwrap();
}
EOF
# The model's bytes: in the executable (`model()`), or a file beside it mapped at startup.
if [ "$embed" = file ]; then open='*App::load()?'; else open='*App::model()'; fi
cat > "$app/src/main.rs" <<EOF
use npu_model_macro::npu_model;
use npu_runtime::generate::generate_until;
use npu_runtime::model::Session;
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::select;
use npu_runtime::tokenizer::EncodeOptions;
use std::time::Instant;

#[npu_model(
    path = "\${NPU_APP_MODEL_DIR}/$(basename "$gguf")",
    target = "$target",
    quant = "$quant",${context:+
    context = $context,}
    embed = "$embed"
)]
struct App;

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prompt_text = std::env::args().nth(1).unwrap_or_default();
    let max_tokens: usize = std::env::args().nth(2).unwrap_or_default().parse()?;
    let t0 = Instant::now();
    let model = $open;
    let opened = t0.elapsed();
    let tok = model.tokenizer()?;
    let opts = EncodeOptions { add_special: true, parse_special: true };
    let prompt = tok.encode_vec(prompt_text.as_bytes(), opts)?;
    let mut arena = vec![0u8; App::ARENA_BYTES];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = || select::cpu(None, threads);
    let backend = select::select(select::Choice::Cpu, &model.weights, cpu)?.backend;
    let mut session = Session::new(model, backend, &mut arena)?;
    let config = *session.config();
    let mut sampler = Sampler::new(SamplerConfig::GREEDY);
    let mut ids = Vec::new();
    let t1 = Instant::now();
    let is_end = |id: u32| config.is_stop(id) || tok.tables().is_eog(id);
    generate_until(&mut session, &mut sampler, &prompt, max_tokens, is_end, |id| {
        ids.push(id);
        true
    })?;
    let secs = t1.elapsed().as_secs_f64();
    println!("{}", join(&prompt));
    println!("{}", join(&ids));
    eprintln!(
        "model-app: blob {} bytes, opened in {:.3} s; {} tokens in {secs:.2} s ({:.2} tokens/s)",
        App::BLOB_LEN,
        opened.as_secs_f64(),
        ids.len(),
        ids.len() as f64 / secs
    );
    Ok(())
}
EOF

export NPU_APP_MODEL_DIR="$(dirname "$gguf")"
export NPU_BUILD_CACHE="${NPU_BUILD_CACHE:-$NPU_CACHE/app-pack-cache}"
cd "$app"
log "$(basename "$gguf") → $target/$quant, embed $embed: cargo build --release in $app"
/usr/bin/time -f "model-app: x86-64 build: %e s wall, peak RSS %M KiB (largest process)" \
  cargo build --release --quiet
if [ "$embed" = file ]; then
  log "blob file: $(stat -c '%s bytes %n' target/release/*.npublob)"
else
  log "executable: $(stat -c '%s bytes' target/release/model-app)"
fi
out="$(./target/release/model-app "$prompt" "$tokens")"
echo "$out" | sed -n '1s/^/model-app: prompt ids: /p;2s/^/model-app: generated: /p'
status=0
if [ -n "$expect" ]; then
  want="$(echo "$expect" | tr -s ' ,' '  ' | sed 's/^ //' | cut -d' ' -f1-"$tokens")"
  if [ "$(echo "$out" | sed -n 2p)" = "$want" ] && [ -n "$want" ]; then
    log "generated ids equal the expected ones ($(echo "$want" | wc -w) tokens)"
  else
    log "MISMATCH: expected $want"; status=1
  fi
fi

if [ "$aarch64" = 1 ]; then
  npu_aarch64_linux
  T=aarch64-unknown-linux-gnu
  log "aarch64: cargo build --release --target $T (a cache hit: the blob is copied, not packed)"
  /usr/bin/time -f "model-app: aarch64 build: %e s wall" cargo build --release --quiet --target "$T"
  file "target/$T/release/model-app" | sed 's/^/model-app: /'
fi
cd "$repo"
[ "${KEEP:-0}" = 1 ] || rm -rf "$app"
exit "$status"
