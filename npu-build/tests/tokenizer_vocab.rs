//! Tokenizer conformance against llama.cpp's own test vectors and reference outputs.
//!
//! - `ggml-vocab-*.gguf` with `.inp`/`.out` from the `llama-cpp-python==0.3.36` sdist
//!   (`scripts/fetch-models.sh vocab` puts them in `$NPU_CACHE/vocab/`): every case of every
//!   vocabulary whose tokenizer this crate supports must give exactly the expected ids
//!   (tokenized as llama.cpp's test-tokenizer-0 does: no BOS/EOS, specials not parsed).
//! - SmolLM2's tokenizer on the whole Moby-Dick text gives llama.cpp's 312,006 ids.
//! - The reference prompts give llama.cpp's prompt ids (the chat one with specials parsed).
//!   llama.cpp's outputs are in `tests/data/` (its README says how each was made).
//! - Decoding the ids gives the text back.
//!
//! Models and texts that are not in the cache are skipped with a message, unless
//! `NPU_REQUIRE_MODELS=1`.

use npu_build::gguf::Gguf;
use npu_build::tokenizer::{OwnedTokenizerTables, TokenizerBuildError};
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer, TokenizerError};
use std::io::Read;
use std::path::{Path, PathBuf};
use tokenizer_common::{cache, decode_streaming, encode, missing, require};

mod tokenizer_common;

/// llama.cpp's reference outputs, in the repository (`tests/data/README.md` says how each file
/// was made).
fn reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

/// Concatenated pieces (specials rendered), as llama.cpp's detokenizer without space cleanup.
fn decode(tok: &Tokenizer<'_>, ids: &[u32], lstrip_first: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; tok.max_token_len() + 1];
    for (i, &id) in ids.iter().enumerate() {
        let n = tok.piece(id, true, lstrip_first && i == 0, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// The test cases of a vocab file, split as llama.cpp's test-tokenizer-0 splits them.
fn read_cases(gguf: &Path) -> Vec<(Vec<u8>, Vec<u32>)> {
    let inp = std::fs::read(format!("{}.inp", gguf.display())).unwrap();
    let out = std::fs::read_to_string(format!("{}.out", gguf.display())).unwrap();
    let sep = b"\n__ggml_vocab_test__\n";
    let mut texts = Vec::new();
    let mut pos = 0;
    while pos < inp.len() {
        match inp[pos..].windows(sep.len()).position(|w| w == sep) {
            Some(k) => {
                texts.push(inp[pos..pos + k].to_vec());
                pos += k + sep.len();
            }
            None => {
                texts.push(inp[pos..].to_vec());
                break;
            }
        }
    }
    let expected: Vec<Vec<u32>> =
        out.lines().map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect()).collect();
    assert_eq!(
        texts.len(),
        expected.len(),
        "{}: .inp and .out disagree on the number of cases",
        gguf.display()
    );
    texts.into_iter().zip(expected).collect()
}

/// Vocabularies whose tokenizer type this crate supports; each must be present when required.
const SUPPORTED: &[&str] = &[
    "gpt-2",
    "llama-bpe",
    "llama-spm",
    "qwen2",
    "qwen35",
    "starcoder",
    "refact",
    "command-r",
    "mpt",
    "falcon",
    "phi-3",
    "deepseek-coder",
];

#[test]
fn vocab_test_vectors() {
    let dir = cache().join("vocab");
    if missing(&dir) {
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .filter(|p| Path::new(&format!("{}.inp", p.display())).exists())
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut passed_files = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("ggml-vocab-")
            .trim_end_matches(".gguf")
            .to_owned();
        let g = Gguf::open(f).unwrap();
        let tables = match OwnedTokenizerTables::from_gguf(&g) {
            Ok(t) => t,
            Err(
                e @ (TokenizerBuildError::UnsupportedModel(_)
                | TokenizerBuildError::UnsupportedPre(_)),
            ) => {
                assert!(!SUPPORTED.contains(&name.as_str()), "{name} should be supported: {e}");
                let model = g.get_str("tokenizer.ggml.model").unwrap().unwrap_or("?");
                let pre = g.get_str("tokenizer.ggml.pre").unwrap().unwrap_or("(none)");
                eprintln!("skipped {name}: model '{model}', pre '{pre}' unsupported");
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let tok = Tokenizer::new(tables.tables()).unwrap();
        let cases = read_cases(f);
        let mut ok = 0;
        for (text, want) in &cases {
            let got = encode(&tok, text, EncodeOptions::default());
            if &got == want {
                ok += 1;
            } else {
                failures.push(format!(
                    "{name}: {:?}\n   want {want:?}\n    got {got:?}",
                    String::from_utf8_lossy(text)
                ));
            }
        }
        eprintln!("{name}: {ok}/{} cases pass", cases.len());
        if ok == cases.len() {
            passed_files.push(name.clone());
        }
    }
    if require() {
        for s in SUPPORTED {
            assert!(
                passed_files.iter().any(|p| p == s) || failures.iter().any(|f| f.starts_with(s)),
                "{s} vocab missing"
            );
        }
    }
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

fn smollm2() -> Option<OwnedTokenizerTables> {
    let p = cache().join("smollm2-135m-instruct-q4_1.gguf");
    if missing(&p) {
        return None;
    }
    Some(OwnedTokenizerTables::from_gguf(&Gguf::open(&p).unwrap()).unwrap())
}

/// Integers of a JSON array (or any text): every run of digits, in order.
fn ints(text: &str) -> Vec<u32> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn moby_dick_matches_llama_cpp() {
    let Some(tables) = smollm2() else { return };
    let text_path = cache().join("moby-dick.txt");
    let ids_path = reference().join("moby-dick.smollm2.ids.txt.gz");
    if missing(&text_path) {
        return;
    }
    let text = std::fs::read(&text_path).unwrap();
    let mut gz = String::new();
    let out = std::process::Command::new("gzip").arg("-dc").arg(&ids_path).output().expect("gzip");
    assert!(out.status.success());
    out.stdout.as_slice().read_to_string(&mut gz).unwrap();
    let want = ints(&gz);
    assert_eq!(want.len(), 312_006);
    let tok = Tokenizer::new(tables.tables()).unwrap();
    let got = encode(&tok, &text, EncodeOptions { add_special: true, parse_special: false });
    let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first difference at id {first_diff:?}");
    assert_eq!(got.len(), want.len());
    // And back: byte-level BPE loses nothing.
    assert!(decode(&tok, &got, false) == text, "Moby-Dick does not round-trip");
}

#[test]
fn reference_prompts_match_llama_cpp() {
    let Some(tables) = smollm2() else { return };
    let tok = Tokenizer::new(tables.tables()).unwrap();
    for (name, parse_special) in [("once", false), ("chat", true)] {
        let prompt = reference().join(format!("prompt_{name}.txt"));
        let text = std::fs::read(&prompt).unwrap();
        // llama-tokenize's output: one "id -> 'piece'" line per token, then the ids as a list.
        let listing =
            std::fs::read_to_string(reference().join(format!("tokenize_{name}.txt"))).unwrap();
        let want = ints(&listing[listing.rfind('[').expect("id list")..]);
        let got = encode(&tok, &text, EncodeOptions { add_special: true, parse_special });
        assert_eq!(got, want, "prompt_{name}");
        for quant in ["q4_1", "F16"] {
            let json =
                std::fs::read_to_string(reference().join(format!("greedy_{name}_{quant}.json")))
                    .unwrap();
            let key = json.find("\"prompt_ids\"").expect("prompt_ids");
            let arr = &json[key..];
            let arr = &arr[arr.find('[').unwrap()..=arr.find(']').unwrap()];
            assert_eq!(got, ints(arr), "greedy_{name}_{quant}.json prompt_ids");
        }
        assert_eq!(decode(&tok, &got, false), text, "prompt_{name} round trip");
    }
}

#[test]
fn bpe_vocabs_round_trip() {
    let dir = cache().join("vocab");
    if missing(&dir) {
        return;
    }
    for name in ["gpt-2", "llama-bpe", "qwen2", "starcoder"] {
        let f = dir.join(format!("ggml-vocab-{name}.gguf"));
        if missing(&f) {
            continue;
        }
        let tables = OwnedTokenizerTables::from_gguf(&Gguf::open(&f).unwrap()).unwrap();
        let tok = Tokenizer::new(tables.tables()).unwrap();
        for (text, _) in read_cases(&f) {
            let ids = encode(&tok, &text, EncodeOptions::default());
            // Valid UTF-8 comes back byte for byte (invalid bytes were U+FFFD before BPE).
            if std::str::from_utf8(&text).is_ok() {
                assert_eq!(
                    decode(&tok, &ids, false),
                    text,
                    "{name}: {:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }
}

#[test]
fn spm_decodes_with_leading_space_removed() {
    let f = cache().join("vocab/ggml-vocab-llama-spm.gguf");
    if missing(&f) {
        return;
    }
    let tables = OwnedTokenizerTables::from_gguf(&Gguf::open(&f).unwrap()).unwrap();
    let tok = Tokenizer::new(tables.tables()).unwrap();
    let text = "Hello world 🦙 ok\n  indented";
    let ids =
        encode(&tok, text.as_bytes(), EncodeOptions { add_special: true, parse_special: false });
    assert_eq!(ids[0], 1, "BOS");
    assert_eq!(decode(&tok, &ids[1..], true), text.as_bytes());
}

#[test]
fn streaming_decoder_never_splits_a_character() {
    let Some(tables) = smollm2() else { return };
    let tok = Tokenizer::new(tables.tables()).unwrap();
    // Byte-level BPE splits these emoji and CJK characters across tokens.
    let text = "🚀 (normal) 😶‍🌫️ 我想在apple工作 ✅";
    let ids = encode(&tok, text.as_bytes(), EncodeOptions::default());
    let (out, split_seen) = decode_streaming(&tok, &ids);
    assert!(split_seen, "the text should have characters split across tokens");
    assert_eq!(out, text);
}

#[test]
fn bounded_memory_errors_instead_of_truncating() {
    let Some(tables) = smollm2() else { return };
    let tok = Tokenizer::new(tables.tables()).unwrap();
    let text = "a".repeat(100);
    // A word of 100 bytes needs scratch for 100 bytes: less is an error, not a wrong answer.
    let mut small = vec![0u32; 10];
    let mut out = [0u32; 200];
    let e =
        tok.encode(text.as_bytes(), EncodeOptions::default(), &mut small, &mut out).unwrap_err();
    assert!(matches!(e, TokenizerError::ScratchTooSmall { .. }), "{e:?}");
    let mut scratch = vec![0u32; Tokenizer::scratch_words_for(text.len())];
    let n = tok.encode(text.as_bytes(), EncodeOptions::default(), &mut scratch, &mut out).unwrap();
    let mut tiny = [0u32; 2];
    let e = tok
        .encode(text.as_bytes(), EncodeOptions::default(), &mut scratch, &mut tiny[..n.min(2) - 1])
        .unwrap_err();
    assert!(matches!(e, TokenizerError::OutputFull { .. }), "{e:?}");
    assert!(matches!(
        tok.piece(u32::MAX, true, false, &mut [0u8; 8]),
        Err(TokenizerError::BadTokenId(_))
    ));
}

#[test]
fn codegen_is_deterministic_and_names_everything() {
    let Some(tables) = smollm2() else { return };
    let again = OwnedTokenizerTables::from_gguf(
        &Gguf::open(cache().join("smollm2-135m-instruct-q4_1.gguf")).unwrap(),
    )
    .unwrap();
    let a = tables.to_rust_source("SMOL_TOK");
    assert_eq!(a, again.to_rust_source("SMOL_TOK"));
    assert_eq!(tables.to_bytes(true), again.to_bytes(true));
    assert!(a.contains("static SMOL_TOK: ::npu_runtime::tokenizer::TokenizerTables<'static>"));
    assert!(a.contains("pre: ::npu_runtime::tokenizer::PreTokenizer::StarCoder"));
    // Offsets and lengths only: the vocabulary itself is in the bytes, not in the text.
    assert!(a.len() < 4096, "{} bytes of source", a.len());
    assert!(a.contains(&format!("const SMOL_TOK_LEN: usize = {};", tables.to_bytes(true).len())));
}
