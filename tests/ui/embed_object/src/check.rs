use sha2::Digest;

/// Checks a compiled-in model at run time: descriptors against the blob, the blob's digest
/// against the generated constant, alignment, the embedding mode.
pub fn model(
    name: &str,
    m: &npu_runtime::model::Model<'static>,
    sha: [u8; 32],
    embed: &str,
    want_embed: &str,
) {
    m.weights.check().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(<[u8; 32]>::from(sha2::Sha256::digest(m.weights.blob)), sha, "{name}: digest");
    assert_eq!(m.weights.blob.as_ptr() as usize % 64, 0, "{name}: alignment");
    assert_eq!(embed, want_embed);
    assert_eq!(m.config.n_layers, 1);
    assert!(m.weights.tensor("output.weight").is_some(), "tied output synthesized");
}
