//! The repo's default model, `models/tiny/moby-tiny.gguf` (trained by `models/tiny/train.py`):
//!
//! - the committed file is the one its `.sha256` names;
//! - it fits a microcontroller's budget: int8 blob ≤ 2 MB (cpu and rk3588 packing) and the
//!   runtime arena for 256 positions (f16 KV cache included) ≤ 448 KiB, leaving 64 KiB of a
//!   512 KiB RAM for stack and the rest of the firmware;
//! - our tokenizer, built from the GGUF alone, gives the trainer's HF `tokenizers` ids for the
//!   whole held-out tail of Moby-Dick (`models/tiny/heldout.ids.txt.gz`), and decodes back.
//!
//! Agreement of its logits with llama.cpp is in `tests/llamacpp/test_tiny.py`.

use npu_build::config::model_config;
use npu_build::gguf::Gguf;
use npu_build::pack::{pack, PackOptions};
use npu_build::tokenizer::OwnedTokenizerTables;
use npu_runtime::format::Scheme;
use npu_runtime::model::arena_bytes;
use npu_runtime::target::Target;
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The context the firmware example runs the model with (its trained context).
const CTX: u32 = 256;
const BLOB_BUDGET: usize = 2_000_000;
const ARENA_BUDGET: usize = 512 * 1024 - 64 * 1024;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny")
}

fn gguf_path() -> PathBuf {
    dir().join("moby-tiny.gguf")
}

fn cache() -> PathBuf {
    match std::env::var_os("NPU_CACHE") {
        Some(p) => PathBuf::from(p),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/npu-model")
        }
    }
}

/// The integer after `"key":` in the trainer's metrics JSON (flat keys, written by train.py).
fn json_u64(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("train-metrics.json lacks {key}"));
    let rest = json[at + key.len() + 3..].trim_start();
    rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())].parse().unwrap()
}

fn json_str<'a>(json: &'a str, key: &str) -> &'a str {
    let at = json
        .find(&format!("\"{key}\": \""))
        .unwrap_or_else(|| panic!("train-metrics.json lacks {key}"));
    let rest = &json[at + key.len() + 5..];
    &rest[..rest.find('"').unwrap()]
}

#[test]
fn committed_gguf_matches_its_sha256() {
    let want = std::fs::read_to_string(dir().join("moby-tiny.gguf.sha256")).unwrap();
    let want = want.split_whitespace().next().unwrap();
    assert_eq!(hex(&Sha256::digest(std::fs::read(gguf_path()).unwrap())), want);
    let metrics = std::fs::read_to_string(dir().join("train-metrics.json")).unwrap();
    assert_eq!(json_str(&metrics, "sha256"), want, "train-metrics.json describes another file");
}

#[test]
fn fits_the_mcu_budget() {
    let g = Gguf::open(gguf_path()).unwrap();
    let tok = OwnedTokenizerTables::from_gguf(&g).unwrap();
    let config = model_config(&g, &tok, Some(CTX)).unwrap();
    let arena = arena_bytes(&config, CTX);
    eprintln!("moby-tiny: arena for {CTX} positions {arena} B");
    assert!(arena <= ARENA_BUDGET, "arena {arena} B > {ARENA_BUDGET} B");
    for target in ["cpu", "rk3588"] {
        let target = Target::by_name(target).unwrap();
        for scheme in Scheme::ALL {
            let Ok(p) = pack(&g, &PackOptions { target, scheme, threads: 2 }) else {
                continue; // the target lacks this pipeline
            };
            eprintln!("moby-tiny: {} {} blob {} B", target.name, scheme.name(), p.blob.len());
            if matches!(scheme, Scheme::Int8 | Scheme::Int8Hadamard) {
                assert!(
                    p.blob.len() <= BLOB_BUDGET,
                    "{} {}: {} B",
                    target.name,
                    scheme.name(),
                    p.blob.len()
                );
            }
        }
    }
}

#[test]
fn heldout_tokenization_matches_the_trainer() {
    let text_path = cache().join("moby-dick.txt");
    if !text_path.exists() {
        let require = std::env::var("NPU_REQUIRE_MODELS").is_ok_and(|v| v == "1");
        assert!(!require, "{} is missing and NPU_REQUIRE_MODELS=1", text_path.display());
        eprintln!("skipped: {} is missing (scripts/fetch-models.sh moby)", text_path.display());
        return;
    }
    let metrics = std::fs::read_to_string(dir().join("train-metrics.json")).unwrap();
    let raw = std::fs::read(&text_path).unwrap();
    assert_eq!(
        hex(&Sha256::digest(&raw)),
        json_str(&metrics, "text_sha256"),
        "not the text the model was trained on"
    );
    let text = std::str::from_utf8(&raw).unwrap();
    // The trainer splits by Python string index, i.e. by Unicode scalar value.
    let cut = json_u64(&metrics, "heldout_char_start") as usize;
    let start = text.char_indices().nth(cut).unwrap().0;
    let held = &raw[start..];

    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(dir().join("heldout.ids.txt.gz"))
        .output()
        .expect("gzip");
    assert!(out.status.success());
    let want: Vec<u32> =
        String::from_utf8(out.stdout).unwrap().split(',').map(|s| s.parse().unwrap()).collect();
    assert_eq!(want.len() as u64, json_u64(&metrics, "heldout_tokens"));

    let tables = OwnedTokenizerTables::from_gguf(&Gguf::open(gguf_path()).unwrap()).unwrap();
    let tok = Tokenizer::new(tables.tables()).unwrap();
    let mut scratch = vec![0u32; Tokenizer::scratch_words_for(held.len())];
    let mut got = Vec::new();
    tok.encode_with(
        held,
        EncodeOptions { add_special: false, parse_special: false },
        &mut scratch,
        &mut |id| {
            got.push(id);
            Ok(())
        },
    )
    .unwrap();
    let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first difference at id {first_diff:?}");
    assert_eq!(got.len(), want.len());

    let mut back = Vec::new();
    let mut buf = vec![0u8; tok.max_token_len() + 1];
    for &id in &got {
        let n = tok.piece(id, true, false, &mut buf).unwrap();
        back.extend_from_slice(&buf[..n]);
    }
    assert!(back == held, "held-out text does not round-trip");
}
