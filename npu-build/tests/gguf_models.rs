//! The GGUF reader on the two real models (SmolLM2-135M-Instruct Q4_1, Qwen2.5-Coder-0.5B
//! Q4_K_M): metadata, hyperparameters, tokenizer, the tensor table and row-chunked
//! dequantization of every tensor.
//!
//! Models live in `$NPU_CACHE` (default `~/.cache/npu-model`; `scripts/fetch-models.sh` fetches
//! them). A missing model skips its test with a note, unless `NPU_REQUIRE_MODELS=1`. Run in
//! release mode: the dequantization walk touches ~730 M values.

use npu_build::gguf::{GgmlType, Gguf, RopeStyle, TensorInfo};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn model(file: &str) -> Option<Gguf<'static>> {
    let cache = std::env::var_os("NPU_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/npu-model")))
        .expect("neither NPU_CACHE nor HOME is set");
    let path = cache.join(file);
    if !path.exists() {
        if std::env::var("NPU_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!(
                "{} is missing and NPU_REQUIRE_MODELS=1 (run scripts/fetch-models.sh)",
                path.display()
            );
        }
        eprintln!("note: skipping, {} is missing (run scripts/fetch-models.sh)", path.display());
        return None;
    }
    Some(Gguf::open(&path).unwrap_or_else(|e| panic!("{e}")))
}

fn counts_by_type(g: &Gguf<'_>) -> BTreeMap<GgmlType, usize> {
    let mut m = BTreeMap::new();
    for t in g.tensors() {
        *m.entry(t.ty()).or_default() += 1;
    }
    m
}

/// Checks shared by both models: tensor ranges, and every tensor dequantized in row chunks,
/// each chunk equal to dequantizing the same bytes directly, F32 tensors bit-equal to their
/// bytes, all values finite.
fn check_tensors(g: &Gguf<'_>) {
    let last = g.tensors().iter().max_by_key(|t| t.file_offset()).unwrap();
    assert!(last.file_offset() + last.n_bytes() <= g.file_len());
    let mut values = 0u64;
    for t in g.tensors() {
        assert_eq!(t.file_offset() % g.alignment(), 0, "{}", t.name());
        assert_eq!(t.file_offset(), g.data_start() + t.offset());
        assert_eq!(g.tensor_data(t).len() as u64, t.n_bytes());
        values += dequantize_in_chunks(g, t);
    }
    let total: u64 = g.tensors().iter().map(TensorInfo::n_elements).sum();
    assert_eq!(values, total);
}

fn dequantize_in_chunks(g: &Gguf<'_>, t: &TensorInfo) -> u64 {
    if !npu_build::dequant::supported(t.ty()) {
        let e = g.dequantize_rows(t, 0, 1, &mut vec![0.0; t.row_len() as usize]).unwrap_err();
        assert!(e.to_string().contains(t.name()));
        eprintln!("note: {} type {} not dequantizable yet", t.name(), t.ty());
        return t.n_elements();
    }
    let rows_per_chunk = (1u64 << 20).div_ceil(t.row_len()).max(1);
    let row_bytes = t.row_bytes() as usize;
    let data = g.tensor_data(t);
    let mut buf = Vec::new();
    let mut direct = Vec::new();
    let mut row = 0;
    while row < t.n_rows() {
        let n = rows_per_chunk.min(t.n_rows() - row);
        buf.resize((n * t.row_len()) as usize, 0.0);
        g.dequantize_rows(t, row, n, &mut buf).unwrap_or_else(|e| panic!("{e}"));
        let src = &data[row as usize * row_bytes..(row + n) as usize * row_bytes];
        direct.resize(buf.len(), 0.0);
        npu_build::dequant::dequantize(t.ty(), src, &mut direct).unwrap();
        assert!(
            buf.iter().zip(&direct).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{} rows {row}+{n}",
            t.name()
        );
        assert!(
            buf.iter().all(|v| v.is_finite()),
            "{}: non-finite value in rows {row}+{n}",
            t.name()
        );
        if t.ty() == GgmlType::F32 {
            let raw: Vec<f32> =
                src.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            assert_eq!(raw, buf, "{}", t.name());
        }
        row += n;
    }
    t.n_elements()
}

#[test]
fn smollm2_135m_q4_1() {
    let Some(g) = model("smollm2-135m-instruct-q4_1.gguf") else { return };
    assert_eq!((g.version(), g.alignment(), g.file_len()), (3, 32, 98_362_432));
    assert_eq!(g.architecture().unwrap(), "llama");
    let h = g.hparams().unwrap();
    assert_eq!(h.block_count, 30);
    assert_eq!(h.embedding_length, 576);
    assert_eq!(h.feed_forward_length, 1536);
    assert_eq!((h.head_count, h.head_count_kv, h.head_dim), (9, 3, 64));
    assert_eq!(h.rope_freq_base, 1e5);
    assert_eq!(h.rms_norm_eps, 1e-5);
    assert_eq!(h.rope_dimension_count, 64);
    assert_eq!(h.rope_style, RopeStyle::Normal);
    assert_eq!(h.vocab_size, 49152);
    assert!(h.tied_output && !h.qkv_bias);

    let tok = g.tokenizer().unwrap();
    assert_eq!((tok.model, tok.pre), (Some("gpt2"), Some("smollm")));
    assert_eq!((tok.n_tokens, tok.n_merges), (Some(49152), Some(48900)));
    assert_eq!((tok.bos_id, tok.eos_id, tok.add_bos), (Some(1), Some(2), Some(false)));
    assert!(tok.has_chat_template);
    // The whole vocabulary, never truncated.
    let tokens = g.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens[..3], ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]);
    assert_eq!(tokens[49150..], ["ĠMama", "ectable"]);
    let merges = g.get_str_array("tokenizer.ggml.merges").unwrap().unwrap();
    assert_eq!((merges[0], merges[48899]), ("Ġ t", "ect able"));

    assert_eq!(g.tensors().len(), 272);
    let by = counts_by_type(&g);
    assert_eq!(
        by,
        BTreeMap::from([(GgmlType::Q4_1, 210), (GgmlType::Q8_0, 1), (GgmlType::F32, 61)])
    );
    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!((embd.ty(), embd.dims()), (GgmlType::Q8_0, &[576u64, 49152][..]));
    assert!(g.tensor("output.weight").is_none());
    let last = g.tensors().last().unwrap();
    assert_eq!(last.name(), "output_norm.weight");
    assert_eq!(last.file_offset() + last.n_bytes(), g.file_len());
    check_tensors(&g);
}

#[test]
fn qwen25_coder_05b_q4_k_m() {
    let Some(g) = model("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf") else { return };
    assert_eq!((g.version(), g.alignment(), g.file_len()), (3, 32, 491_400_064));
    assert_eq!(g.architecture().unwrap(), "qwen2");
    let h = g.hparams().unwrap();
    assert_eq!(h.block_count, 24);
    assert_eq!(h.embedding_length, 896);
    assert_eq!(h.feed_forward_length, 4864);
    assert_eq!((h.head_count, h.head_count_kv, h.head_dim), (14, 2, 64));
    assert_eq!(h.rope_freq_base, 1e6);
    assert_eq!(h.rms_norm_eps, 1e-6);
    assert_eq!(h.rope_style, RopeStyle::Neox);
    assert_eq!(h.vocab_size, 151936);
    assert!(!h.tied_output && h.qkv_bias);

    let tok = g.tokenizer().unwrap();
    assert_eq!((tok.model, tok.pre), (Some("gpt2"), Some("qwen2")));
    assert_eq!((tok.n_tokens, tok.eos_id), (Some(151936), Some(151645)));
    assert!(tok.has_chat_template);
    let tokens = g.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(tokens.len(), 151936);
    assert_eq!(tokens[..3], ["!", "\"", "#"]);
    assert_eq!(tokens[151935], "[PAD151935]");
    // Random access into a string array walks to the element.
    let arr = g.get_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(arr.get(151934).and_then(|v| v.as_str()), Some("[PAD151934]"));

    assert_eq!(g.tensors().len(), 291);
    let by = counts_by_type(&g);
    assert_eq!(
        by,
        BTreeMap::from([
            (GgmlType::F32, 121),
            (GgmlType::Q5_0, 133),
            (GgmlType::Q8_0, 13),
            (GgmlType::Q4_K, 12),
            (GgmlType::Q6_K, 12),
        ])
    );
    assert_eq!(g.tensor("token_embd.weight").unwrap().ty(), GgmlType::Q5_0);
    assert_eq!(g.tensor("blk.0.attn_q.bias").unwrap().dims(), [896]);
    assert_eq!(g.tensor("output.weight").unwrap().dims(), [896, 151936]);
    let last = g.tensors().iter().max_by_key(|t| t.file_offset()).unwrap();
    assert_eq!(last.file_offset() + last.n_bytes(), g.file_len());
    check_tensors(&g);
}
