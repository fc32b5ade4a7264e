//! Prints what was compiled in and checks it at run time: every descriptor against the
//! blob, the blob's SHA-256 against the generated constant (so the linked bytes are the
//! packed bytes), and the tokenizer on a short text.
use npu_models_crate::{Qwen25, SmolLm2};

fn check(
    name: &str,
    m: &npu_runtime::model::Model<'static>,
    sha: [u8; 32],
    arena: usize,
    embed: &str,
) -> Result<(), String> {
    m.weights.check().map_err(|e| format!("{name}: {e}"))?;
    let got = npu_runtime_sha256(m.weights.blob);
    if got != sha {
        return Err(format!("{name}: blob digest differs from BLOB_SHA256"));
    }
    if !(m.weights.blob.as_ptr() as usize).is_multiple_of(npu_runtime::format::BLOB_ALIGN as usize)
    {
        return Err(format!(
            "{name}: blob is not {}-byte aligned",
            npu_runtime::format::BLOB_ALIGN
        ));
    }
    println!(
        "{name}: {} layers, d={}, vocab={}, context={}, {} tensors, blob {} bytes ({embed}), arena {arena} bytes, sha256 ok",
        m.config.n_layers,
        m.config.d_model,
        m.config.vocab,
        m.config.context_len,
        m.weights.tensors.len(),
        m.weights.blob.len()
    );
    Ok(())
}

fn npu_runtime_sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

fn main() {
    let r = check(
        "SmolLm2",
        SmolLm2::model(),
        SmolLm2::BLOB_SHA256,
        SmolLm2::ARENA_BYTES,
        SmolLm2::EMBED,
    )
    .and_then(|()| {
        check("Qwen25", Qwen25::model(), Qwen25::BLOB_SHA256, Qwen25::ARENA_BYTES, Qwen25::EMBED)
    });
    if let Err(e) = r {
        eprintln!("{e}");
        std::process::exit(1);
    }
    println!(
        "tokenizers: {} and {} tokens",
        SmolLm2::tokenizer().token_offsets.len() - 1,
        Qwen25::tokenizer().token_offsets.len() - 1
    );
}
