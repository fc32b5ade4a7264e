//! The special-token splitter against a direct model of llama.cpp's `tokenizer_st_partition`
//! (a list of fragments; for each special in rank order, split every text fragment at each
//! occurrence), on random texts over a small alphabet and a vocabulary whose specials overlap
//! and nest (user-defined and control, with and without Phi-3's whitespace stripping). No model
//! files needed.

use npu_build::rng::SeededRng;
use npu_build::tokenizer::{OwnedTokenizerTables, TokenizerSource};
use npu_runtime::tokenizer::{attr, EncodeOptions, Tokenizer, TokenizerError};

/// (text, token type): 3 control, 4 user-defined.
const SPECIALS: &[(&str, i32)] = &[
    ("<a>", 4),
    ("<a", 4),
    ("a>", 3),
    ("\n", 4),
    ("\n\n", 4),
    ("\n\n\n", 3),
    ("  ", 4),
    ("   ", 4),
    ("<ab>", 3),
    ("b<a", 4),
    ("<a><a>", 3),
    ("ab", 4),
    ("x", 3),
    ("ba", 4),
];
const ALPHABET: &[u8] = b"ab<>\n x";

fn vocab(model_name: Option<&str>) -> OwnedTokenizerTables {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    for t in ["▁", "a", "b", "<", ">", "▁a", "▁b", "aa", "bb", "<b", "b>", "▁▁"] {
        tokens.push(t.into());
        types.push(1);
    }
    for &(t, ty) in SPECIALS {
        tokens.push(t.into());
        types.push(ty);
    }
    let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
    let src = TokenizerSource {
        model: "llama".into(),
        tokens,
        token_types: types,
        scores,
        add_space_prefix: Some(false),
        model_name: model_name.map(String::from),
        ..TokenizerSource::default()
    };
    OwnedTokenizerTables::build(&src).unwrap()
}

enum Frag {
    Text(Vec<u8>),
    Special(u32),
}

/// llama.cpp's procedure, as a list of fragments.
fn reference(tok: &Tokenizer<'_>, text: &[u8], parse_special: bool) -> Vec<Frag> {
    let t = tok.tables();
    let mut order: Vec<u32> = t.specials.to_vec();
    order.sort_by_key(|&id| (std::cmp::Reverse(t.token(id).unwrap().len()), id));
    let is_space = |b: u8| b" \t\n\x0b\x0c\r".contains(&b);
    let mut frags = vec![Frag::Text(text.to_vec())];
    for id in order {
        let a = t.token_attrs[id as usize];
        if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let pat = t.token(id).unwrap();
        let mut out = Vec::new();
        for f in frags {
            let Frag::Text(s) = f else {
                out.push(f);
                continue;
            };
            let mut start = 0;
            while let Some(k) = s[start..].windows(pat.len()).position(|w| w == pat) {
                let m = start + k;
                let mut left_end = m;
                if a & attr::LSTRIP != 0 {
                    while left_end > start && is_space(s[left_end - 1]) {
                        left_end -= 1;
                    }
                }
                if left_end > start {
                    out.push(Frag::Text(s[start..left_end].to_vec()));
                }
                out.push(Frag::Special(id));
                start = m + pat.len();
                if a & attr::RSTRIP != 0 {
                    while start < s.len() && is_space(s[start]) {
                        start += 1;
                    }
                }
            }
            if start < s.len() {
                out.push(Frag::Text(s[start..].to_vec()));
            }
        }
        frags = out;
    }
    frags
}

fn encode(tok: &Tokenizer<'_>, text: &[u8], opts: EncodeOptions) -> Vec<u32> {
    tok.encode_vec(text, opts).unwrap()
}

#[test]
fn splitting_matches_llama_cpps_procedure() {
    let mut rng = SeededRng::new(7);
    let mut checked = 0;
    for name in [None, Some("Phi-3-mini")] {
        let tables = vocab(name);
        let tok = Tokenizer::new(tables.tables()).unwrap();
        if name.is_some() {
            assert!(tables.token_attrs.iter().any(|&a| a & attr::RSTRIP != 0));
        }
        for _ in 0..3000 {
            let len = (rng.next_u64() % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(rng.next_u64() % ALPHABET.len() as u64) as usize])
                .collect();
            for parse_special in [false, true] {
                let opts = EncodeOptions { add_special: false, parse_special };
                let mut want = Vec::new();
                for f in reference(&tok, &text, parse_special) {
                    match f {
                        // A final fragment holds no active special: encoding it alone is
                        // encoding its text.
                        Frag::Text(s) => want.extend(encode(&tok, &s, opts)),
                        Frag::Special(id) => want.push(id),
                    }
                }
                let got = encode(&tok, &text, opts);
                assert_eq!(
                    got,
                    want,
                    "{:?} parse_special={parse_special}",
                    String::from_utf8_lossy(&text)
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 12_000);
}

#[test]
fn nesting_deeper_than_any_fixed_limit_works_and_scratch_bounds_it() {
    // Specials "\n" × 1..=100, each run length once: the splitter nests one level per length.
    let mut tokens: Vec<String> = vec!["<unk>".into(), "a".into()];
    let mut types = vec![2, 1];
    for k in 1..=100 {
        tokens.push("\n".repeat(k));
        types.push(4);
    }
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let src = TokenizerSource {
        model: "llama".into(),
        scores: vec![0.0; tokens.len()],
        tokens,
        token_types: types,
        add_space_prefix: Some(false),
        ..TokenizerSource::default()
    };
    let tables = OwnedTokenizerTables::build(&src).unwrap();
    let tok = Tokenizer::new(tables.tables()).unwrap();
    let mut text = Vec::new();
    for k in (1..=100).rev() {
        text.extend(std::iter::repeat_n(b'\n', k));
        text.push(b'a');
    }
    let ids = encode(&tok, &text, EncodeOptions::default());
    let want: Vec<u32> = (1..=100u32).rev().flat_map(|k| [k + 1, 1]).collect();
    assert_eq!(ids, want);
    // Too little scratch for the frames is an error, not a wrong answer.
    let mut scratch = vec![0u32; 16];
    let mut out = vec![0u32; 400];
    let e = tok.encode(&text, EncodeOptions::default(), &mut scratch, &mut out).unwrap_err();
    assert!(matches!(e, TokenizerError::ScratchTooSmall { .. }), "{e:?}");
}
