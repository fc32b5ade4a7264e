//! Shared helpers for the tokenizer_* tests (`mod tokenizer_common;`).
#![allow(dead_code)]

use npu_runtime::tokenizer::{EncodeOptions, Tokenizer, Utf8Stream};
use std::path::{Path, PathBuf};

/// `$NPU_CACHE`, by default `~/.cache/npu-model` (scripts/fetch-models.sh fills it).
pub fn cache() -> PathBuf {
    match std::env::var_os("NPU_CACHE") {
        Some(p) => PathBuf::from(p),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/npu-model")
        }
    }
}

/// NPU_REQUIRE_MODELS=1: a missing model or text is a failure, not a skip.
pub fn require() -> bool {
    std::env::var("NPU_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

/// True, with a note, when `what` is absent (a failure when NPU_REQUIRE_MODELS=1).
pub fn missing(what: &Path) -> bool {
    if what.exists() {
        return false;
    }
    assert!(!require(), "{} is missing and NPU_REQUIRE_MODELS=1", what.display());
    eprintln!("skipped: {} is missing (run scripts/fetch-models.sh)", what.display());
    true
}

/// The ids of `text`, through the scratch-bounded encoder.
pub fn encode(tok: &Tokenizer<'_>, text: &[u8], opts: EncodeOptions) -> Vec<u32> {
    let mut scratch = vec![0u32; Tokenizer::scratch_words_for(text.len())];
    let mut ids = Vec::new();
    tok.encode_with(text, opts, &mut scratch, &mut |id| {
        ids.push(id);
        Ok(())
    })
    .unwrap();
    ids
}

/// The text of `ids` through `Utf8Stream` (specials not rendered), and whether some piece on
/// its own was not valid UTF-8 (a character split across tokens).
pub fn decode_streaming(tok: &Tokenizer<'_>, ids: &[u32]) -> (String, bool) {
    let mut stream = Utf8Stream::new();
    let mut out = String::new();
    let mut buf = vec![0u8; tok.max_token_len()];
    let mut split_seen = false;
    for &id in ids {
        let n = tok.piece(id, false, false, &mut buf).unwrap();
        split_seen |= std::str::from_utf8(&buf[..n]).is_err();
        stream
            .push::<()>(&buf[..n], &mut |s| {
                out.push_str(s);
                Ok(())
            })
            .unwrap();
    }
    stream
        .finish::<()>(&mut |s| {
            out.push_str(s);
            Ok(())
        })
        .unwrap();
    (out, split_seen)
}
