//! Tokenizer tables from hostile vocabularies (empty, duplicate and non-UTF-8 tokens, merges
//! naming unknown tokens, arbitrary token types and special ids, thousands of tokens) — first
//! as GGUF metadata through the reader, then as a source built directly — and the runtime
//! tokenizer on arbitrary bytes: errors, never panics; every id it emits has a piece.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use npu_build::gguf::{Gguf, GgufWriter};
use npu_build::tokenizer::{OwnedTokenizerTables, TokenizerSource};
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer};

fn run(tables: &OwnedTokenizerTables, text: &[u8], u: &mut Unstructured<'_>) {
    let Ok(t) = Tokenizer::new(tables.tables()) else { return };
    let mut piece = vec![0u8; t.max_token_len()];
    for (add_special, parse_special) in [(false, false), (true, true)] {
        if let Ok(ids) = t.encode_vec(text, EncodeOptions { add_special, parse_special }) {
            for id in ids {
                t.piece(id, true, false, &mut piece).expect("an encoded id has no piece");
            }
        }
    }
    for _ in 0..4 {
        let Ok(id) = u.arbitrary::<u32>() else { break };
        let _ =
            t.piece(id % (t.tables().n_tokens() as u32 + 2), id & 1 == 0, id & 2 == 0, &mut piece);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    // Mostly small vocabularies (fast executions), now and then thousands of tokens.
    let big = u.int_in_range(0u8..=15).unwrap_or(0) == 15;
    let Ok(n_tok) = u.int_in_range(0usize..=if big { 3000 } else { 96 }) else { return };
    let model = u.choose(&["gpt2", "llama", "bert", ""]).copied().unwrap_or("gpt2");
    let pre = u
        .choose(&["gpt-2", "smollm", "qwen2", "llama3", "default", "??"])
        .copied()
        .unwrap_or("gpt-2");
    let mut tokens: Vec<Vec<u8>> = Vec::new();
    for i in 0..n_tok {
        let t = match u.int_in_range(0u8..=7).unwrap_or(0) {
            0 => format!("t{i}").into_bytes(),
            1 => Vec::new(),
            2 => tokens.last().cloned().unwrap_or_default(),
            3 => format!("<0x{:02X}>", i % 256).into_bytes(),
            4 => "Ġ".repeat(1 + i % 5).into_bytes(),
            5 => b"<|im_end|>".to_vec(),
            _ => {
                let n = u.int_in_range(0..=6).unwrap_or(0);
                u.bytes(n).unwrap_or_default().to_vec()
            }
        };
        tokens.push(t);
    }
    let types: Vec<i32> = (0..u.int_in_range(0..=n_tok + 1).unwrap_or(0))
        .map(|_| u.int_in_range(-2..=8).unwrap_or(1))
        .collect();
    let mut merges: Vec<Vec<u8>> = Vec::new();
    for _ in 0..u.int_in_range(0usize..=64).unwrap_or(0) {
        let a = u.choose_index(tokens.len().max(1)).unwrap_or(0);
        let b = u.choose_index(tokens.len().max(1)).unwrap_or(0);
        let m = match u.int_in_range(0u8..=3).unwrap_or(0) {
            0 => {
                let (x, y) = (
                    tokens.get(a).cloned().unwrap_or_default(),
                    tokens.get(b).cloned().unwrap_or_default(),
                );
                [x, b" ".to_vec(), y].concat()
            }
            1 => b"unknown tokens".to_vec(),
            2 => b"nospace".to_vec(),
            _ => {
                let n = u.int_in_range(0..=8).unwrap_or(0);
                u.bytes(n).unwrap_or_default().to_vec()
            }
        };
        merges.push(m);
    }
    let scores: Vec<f32> = (0..u.int_in_range(0..=n_tok).unwrap_or(0))
        .map(|_| f32::from_bits(u.arbitrary().unwrap_or(0)))
        .collect();
    let ids: Vec<Option<u32>> = (0..4)
        .map(|_| {
            if u.arbitrary().unwrap_or(false) {
                Some(u.arbitrary::<u32>().unwrap_or(0) % (n_tok as u32 + 3))
            } else {
                None
            }
        })
        .collect();
    let flags: [bool; 3] = u.arbitrary().unwrap_or_default();
    let text = u.take_rest();

    // Through GGUF metadata.
    let mut w = GgufWriter::new();
    w.kv_str("tokenizer.ggml.model", model).kv_str("tokenizer.ggml.pre", pre);
    w.kv_strs("tokenizer.ggml.tokens", &tokens).kv_i32s("tokenizer.ggml.token_type", &types);
    w.kv_strs("tokenizer.ggml.merges", &merges).kv_f32s("tokenizer.ggml.scores", &scores);
    for (key, id) in ["bos", "eos", "eot", "padding"].iter().zip(&ids) {
        if let Some(id) = id {
            w.kv_u32(&format!("tokenizer.ggml.{key}_token_id"), *id);
        }
    }
    w.kv_bool("tokenizer.ggml.add_bos_token", flags[0]);
    w.kv_bool("tokenizer.ggml.add_eos_token", flags[1]);
    w.kv_bool("tokenizer.ggml.add_space_prefix", flags[2]);
    let bytes = w.to_bytes();
    let mut rest = Unstructured::new(text);
    if let Ok(g) = Gguf::from_bytes("tok.gguf", &bytes) {
        if let Ok(t) = OwnedTokenizerTables::from_gguf(&g) {
            run(&t, text, &mut rest);
            let _ = t.to_rust_source("T");
        }
    }

    // Directly (strings only: the reader refuses non-UTF-8, a source built in code may not).
    let src = TokenizerSource {
        model: model.into(),
        pre: Some(pre.into()),
        tokens: tokens.iter().map(|t| String::from_utf8_lossy(t).into_owned()).collect(),
        token_types: types,
        merges: merges.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect(),
        scores,
        bos: ids[0],
        eos: ids[1],
        eot: ids[2],
        eom: None,
        pad: ids[3],
        fim: [None; 6],
        add_bos: Some(flags[0]),
        add_eos: Some(flags[1]),
        add_space_prefix: Some(flags[2]),
        model_name: None,
    };
    if let Ok(t) = OwnedTokenizerTables::build(&src) {
        run(&t, text, &mut Unstructured::new(text));
    }
});
