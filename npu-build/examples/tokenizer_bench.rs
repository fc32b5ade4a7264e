//! Tokenizer throughput on Moby-Dick: prints tokens/s for encoding and decoding. Run with
//! `cargo run --release -p npu-build --example tokenizer_bench [MODEL.gguf]`, a file name in
//! `$NPU_CACHE` (default SmolLM2's; files from `scripts/fetch-models.sh smollm2 gemma3 moby`).

use npu_build::gguf::Gguf;
use npu_build::tokenizer::OwnedTokenizerTables;
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer, Utf8Stream};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = std::env::var_os("NPU_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/npu-model")
    });
    let model = std::env::args().nth(1).unwrap_or("smollm2-135m-instruct-q4_1.gguf".into());
    let tables = OwnedTokenizerTables::from_gguf(&Gguf::open(cache.join(&model))?)?;
    let text = std::fs::read(cache.join("moby-dick.txt"))?;
    let tok = Tokenizer::new(tables.tables())?;
    // Working memory for the longest word (BPE) or line (Gemma's SPM: newlines are tokens
    // of their own, so every line is a fragment).
    let mut scratch = vec![0u32; Tokenizer::scratch_words_for(4096)];
    let mut ids = vec![0u32; text.len() + 2];
    let runs = 5;
    let mut n = 0;
    let t0 = Instant::now();
    for _ in 0..runs {
        n = tok.encode(&text, EncodeOptions::default(), &mut scratch, &mut ids)?;
    }
    let enc = t0.elapsed().as_secs_f64() / runs as f64;
    let mut piece = vec![0u8; tok.max_token_len()];
    let mut bytes = 0usize;
    let t1 = Instant::now();
    for _ in 0..runs {
        let mut stream = Utf8Stream::new();
        bytes = 0;
        for &id in &ids[..n] {
            let k = tok.piece(id, false, false, &mut piece)?;
            stream
                .push::<()>(&piece[..k], &mut |s| {
                    bytes += s.len();
                    Ok(())
                })
                .ok();
        }
    }
    let dec = t1.elapsed().as_secs_f64() / runs as f64;
    println!("Moby-Dick: {} bytes -> {n} tokens ({model})", text.len());
    println!(
        "encode: {:.0} tokens/s ({:.1} MB/s), {:.1} ms",
        n as f64 / enc,
        text.len() as f64 / enc / 1e6,
        enc * 1e3
    );
    println!("decode: {:.0} tokens/s ({bytes} bytes of text), {:.1} ms", n as f64 / dec, dec * 1e3);
    Ok(())
}
