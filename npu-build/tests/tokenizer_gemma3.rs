//! Gemma 3's tokenizer (SentencePiece BPE over 262,144 tokens, byte fallback, user-defined
//! whitespace and HTML tokens, control chat markers) against llama.cpp's outputs in
//! `tests/data/tokenize_gemma3.json` (`tests/llamacpp/make_tokenizer_vectors.py` wrote it;
//! `tests/data/README.md` says how):
//! - every text, with and without BOS, with and without specials parsed, gives llama.cpp's ids,
//!   and the ids' pieces (specials rendered) give llama.cpp's bytes;
//! - the whole Moby-Dick text gives llama.cpp's ids (count and SHA-256, per block of 10,000);
//! - every token's piece, with and without specials rendered, is llama.cpp's (SHA-256 of all);
//! - the end-of-generation set is llama.cpp's, for Gemma 3, SmolLM2 and Qwen2.5-Coder.
//!
//! Models and texts that are not in the cache are skipped with a message, unless
//! `NPU_REQUIRE_MODELS=1`.

use npu_build::gguf::Gguf;
use npu_build::tokenizer::OwnedTokenizerTables;
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::OnceLock;
use tokenizer_common::{cache, decode_streaming, encode, missing};

mod tokenizer_common;

const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// llama.cpp's outputs (in the repository).
fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tokenize_gemma3.json");
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
    })
}

fn tables(file: &str) -> Option<OwnedTokenizerTables> {
    let p = cache().join(file);
    if missing(&p) {
        return None;
    }
    Some(OwnedTokenizerTables::from_gguf(&Gguf::open(&p).unwrap()).unwrap())
}

fn gemma3() -> Option<&'static OwnedTokenizerTables> {
    static T: OnceLock<Option<OwnedTokenizerTables>> = OnceLock::new();
    T.get_or_init(|| tables(GEMMA3)).as_ref()
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn le_bytes(ids: &[u32]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

#[test]
fn texts_match_llama_cpp_both_ways_of_bos_and_specials() {
    let Some(tables) = gemma3() else { return };
    let tok = Tokenizer::new(tables.tables()).unwrap();
    let v = vectors();
    assert_eq!(v["n_tokens"].as_u64(), Some(tables.tables().n_tokens() as u64));
    let cases = v["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for c in cases {
        let text = match c.get("text") {
            Some(t) => t.as_str().unwrap().as_bytes().to_vec(),
            None => hex(c["hex"].as_str().unwrap()),
        };
        let wants = c["ids"].as_array().unwrap();
        for (k, want) in wants.iter().enumerate() {
            let opts = EncodeOptions { add_special: k >= 2, parse_special: k % 2 == 1 };
            let got = encode(&tok, &text, opts);
            checked += 1;
            if got != ids_of(want) {
                failures.push(format!(
                    "{:?} {opts:?}\n   want {:?}\n    got {got:?}",
                    String::from_utf8_lossy(&text),
                    ids_of(want)
                ));
            }
        }
        // Pieces of llama.cpp's ids (BOS, specials parsed), specials rendered.
        let mut bytes = Vec::new();
        let mut buf = vec![0u8; tok.max_token_len()];
        for id in ids_of(&wants[3]) {
            let n = tok.piece(id, true, false, &mut buf).unwrap();
            bytes.extend_from_slice(&buf[..n]);
        }
        if bytes != hex(c["pieces"].as_str().unwrap()) {
            failures.push(format!("pieces of {:?}: {:?}", String::from_utf8_lossy(&text), bytes));
        }
    }
    eprintln!("{} of {checked} encodings and {} texts' pieces checked", checked, cases.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(cases.len() >= 40, "the vectors hold {} texts", cases.len());
}

#[test]
fn moby_dick_matches_llama_cpp() {
    let Some(tables) = gemma3() else { return };
    let text_path = cache().join("moby-dick.txt");
    if missing(&text_path) {
        return;
    }
    let text = std::fs::read(&text_path).unwrap();
    let tok = Tokenizer::new(tables.tables()).unwrap();
    let ids = encode(&tok, &text, EncodeOptions { add_special: true, parse_special: false });
    let m = &vectors()["moby"];
    let block = m["block"].as_u64().unwrap() as usize;
    let blocks: Vec<String> = ids.chunks(block).map(|c| sha_hex(&le_bytes(c))).collect();
    let want: Vec<&str> =
        m["blocks"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    let first_diff = blocks.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first differing block of {block} ids: {first_diff:?}");
    assert_eq!(ids.len() as u64, m["n_ids"].as_u64().unwrap());
    assert_eq!(sha_hex(&le_bytes(&ids)), m["sha256"].as_str().unwrap());
    // And back: without BOS, the pieces are the text (SPM with byte fallback loses nothing
    // here, and Gemma adds no space prefix).
    let mut out = Vec::with_capacity(text.len());
    let mut buf = vec![0u8; tok.max_token_len()];
    for &id in &ids[1..] {
        let n = tok.piece(id, false, false, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    assert!(out == text, "Moby-Dick does not round-trip");
}

#[test]
fn every_piece_matches_llama_cpp() {
    let Some(tables) = gemma3() else { return };
    let tok = Tokenizer::new(tables.tables()).unwrap();
    let mut buf = vec![0u8; tok.max_token_len()];
    for (special, key) in [(false, "false"), (true, "true")] {
        let mut h = Sha256::new();
        for id in 0..tables.tables().n_tokens() as u32 {
            let n = tok.piece(id, special, false, &mut buf).unwrap();
            h.update((n as u32).to_le_bytes());
            h.update(&buf[..n]);
        }
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, vectors()["pieces_sha256"][key].as_str().unwrap(), "special={special}");
    }
}

#[test]
fn end_of_generation_sets_match_llama_cpp() {
    let eog = &vectors()["eog"];
    for (name, file) in [
        ("gemma3", GEMMA3),
        ("smollm2", "smollm2-135m-instruct-q4_1.gguf"),
        ("qwen2.5-coder", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
    ] {
        let Some(t) = tables(file) else { continue };
        assert_eq!(t.eog, ids_of(&eog[name]), "{name}");
        let t = t.tables();
        assert!(t.eog.iter().all(|&id| t.is_eog(id)), "{name}");
        assert!(t.eos.is_some_and(|id| t.is_eog(id)), "{name}: EOS ends generation");
    }
}

#[test]
fn gemma3_specials_are_llama_cpps() {
    let Some(t) = gemma3() else { return };
    let t = t.tables();
    assert_eq!((t.bos, t.eos, t.eot, t.eom), (Some(2), Some(1), Some(106), None));
    assert!(t.add_bos && !t.add_eos && !t.add_space_prefix);
    // All 6,414 control and user-defined tokens are cut out of texts (no two share a text).
    assert_eq!(t.specials.len(), 6249 + 165);
}

#[test]
fn streaming_decode_joins_byte_fallback_pieces() {
    let Some(tables) = gemma3() else { return };
    let tok = Tokenizer::new(tables.tables()).unwrap();
    // Characters outside the vocabulary come out as <0xXX> byte tokens, one per UTF-8 byte.
    let text = "a 𝓕𝓪𝓷𝓬𝔂 🦙 text";
    let ids = encode(&tok, text.as_bytes(), EncodeOptions::default());
    let (out, split_seen) = decode_streaming(&tok, &ids);
    assert!(split_seen, "the text should have byte-fallback tokens");
    assert_eq!(out, text);
}

#[test]
fn tables_reach_generated_code_as_bytes() {
    let Some(tables) = gemma3() else { return };
    let src = tables.to_rust_source("GEMMA_TOK");
    // Offsets and lengths only: 262,144 tokens are in the included file, not in the text.
    assert!(src.len() < 4096, "{} bytes of source", src.len());
    let bytes = tables.to_bytes(true);
    assert_eq!(bytes, tables.to_bytes(true), "deterministic");
    eprintln!("Gemma 3 tokenizer file: {} bytes", bytes.len());
}
