//! Hostile model files built from a byte string: the structure-aware generator behind the
//! `pack_model` / `session` fuzz targets (npu-build/fuzz, which includes this file) and the
//! seeded mutation test in `tests/hostile_models.rs`.
//!
//! [`model_bytes`] reads choices from an [`Unstructured`]; with no bytes left every choice is
//! its first option, and the first options make a valid tiny llama model, so short inputs are
//! valid models and longer ones add hostile edits: shapes off by a little or to zero, missing,
//! extra or renamed tensors, quantized tensors with NaN/inf scales, hyperparameters that
//! disagree with the tensors, and tokenizer metadata with empty, duplicate or non-UTF-8 tokens,
//! merges of unknown tokens and out-of-range special ids. [`exercise`] then drives the whole
//! path — reader, tokenizer tables, config, shape check, packer, session, sampler — and
//! asserts the one invariant that matters: everything either works or returns an error; and
//! a model the packer accepted is accepted by the runtime.
#![allow(dead_code)]

use arbitrary::{Result, Unstructured};
use npu_build::config::model_config;
use npu_build::gguf::{GgmlType, Gguf, GgufWriter};
use npu_build::model::OwnedModel;
use npu_build::pack::{pack, PackOptions};
use npu_build::tokenizer::OwnedTokenizerTables;
use npu_runtime::backend::CpuReference;
use npu_runtime::format::Scheme;
use npu_runtime::model::{arena_bytes, Session};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::target::Target;
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer};

/// Deterministic weights: a small LCG, values in [-0.5, 0.5).
fn weights(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

/// A tensor's bytes in `ty` for `n` values (`n` a multiple of 32 for the block types);
/// `raw` bytes from the input replace the encoding (any scale, NaN and inf included).
fn encode(ty: GgmlType, vals: &[f32], raw: Option<&[u8]>) -> Vec<u8> {
    let mut out: Vec<u8> = match ty {
        GgmlType::F16 => vals.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        GgmlType::Q8_0 => vals
            .chunks(32)
            .flat_map(|b| {
                let mut o = half::f16::from_f32(1.0 / 127.0).to_le_bytes().to_vec();
                o.extend(b.iter().map(|&v| (v * 127.0).round() as i8 as u8));
                o
            })
            .collect(),
        GgmlType::Q4_0 => vals
            .chunks(32)
            .flat_map(|b| {
                let mut o = half::f16::from_f32(1.0 / 16.0).to_le_bytes().to_vec();
                for i in 0..16 {
                    let q = |v: f32| ((v * 16.0).round() as i32 + 8).clamp(0, 15) as u8;
                    o.push(q(b[i]) | (q(b[i + 16]) << 4));
                }
                o
            })
            .collect(),
        _ => vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    if let Some(r) = raw {
        for (o, &b) in out.iter_mut().zip(r) {
            *o = b;
        }
    }
    out
}

/// True with probability `1/n`; false when the input is used up (so that the default of
/// every choice is the valid model).
fn rarely(u: &mut Unstructured<'_>, n: u8) -> Result<bool> {
    Ok(u.int_in_range(1..=n)? == n)
}

/// One tensor of the model under construction.
struct Tensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    raw: Option<Vec<u8>>,
}

/// Sizes of the generated model: small enough that packing and one forward pass take
/// milliseconds.
pub struct Sizes {
    pub d: u64,
    pub heads: u64,
    pub kv: u64,
    pub head_dim: u64,
    pub ff: u64,
    pub blocks: u64,
    pub context: u32,
}

fn hostile_string(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => Vec::new(),
        1 => vec![0xff, 0xfe], // not UTF-8
        2 => "Ġ".repeat(u.int_in_range(1..=40)?).into_bytes(),
        3 => b"<0xZZ>".to_vec(), // a byte token that is no byte
        4 => b"<|im_start|>".to_vec(),
        _ => {
            let n = u.int_in_range(0..=12)?;
            u.bytes(n)?.to_vec()
        }
    })
}

/// The GGUF bytes of a model chosen by `u` (see the module docs).
pub fn model_bytes(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let arch = *u.choose(&["llama", "qwen2", "gpt2", ""]).unwrap_or(&"llama");
    let head_dim = 8 * u.int_in_range(1u64..=2)?;
    let kv = u.int_in_range(1u64..=2)?;
    let heads = kv * u.int_in_range(1u64..=2)?;
    let d = if rarely(u, 8)? { 8 * u.int_in_range(1u64..=8)? } else { heads * head_dim };
    let ff = 32 * u.int_in_range(1u64..=3)?;
    let blocks = u.int_in_range(1u64..=2)?;
    let context = u.int_in_range(16u32..=64)?;

    // Vocabulary: a byte-level BPE one, then hostile edits.
    let mut tokens: Vec<Vec<u8>> =
        ["a", "b", "c", "ab", "bc", "abc", "Ġ", "Ġa", "<|endoftext|>", "<|im_start|>"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
    let mut types: Vec<i32> = vec![1, 1, 1, 1, 1, 1, 1, 1, 3, 3];
    let mut merges: Vec<Vec<u8>> =
        ["a b", "b c", "a bc", "Ġ a"].iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut eos = 8u32;
    let mut bos: Option<u32> = None;
    let mut tok_model: Vec<u8> = b"gpt2".to_vec();
    for _ in 0..u.int_in_range(0u8..=4)? {
        match u.int_in_range(0u8..=8)? {
            0 => {
                tokens.push(hostile_string(u)?);
                types.push(u.int_in_range(-1..=7)?);
            }
            1 => {
                let i = u.choose_index(tokens.len())?;
                let t = tokens[i].clone();
                tokens.push(t); // duplicate
                types.push(1);
            }
            2 => merges.push(hostile_string(u)?),
            3 => merges.push(b"zz qq".to_vec()), // names unknown tokens
            4 => eos = u.arbitrary()?,
            5 => bos = Some(u.arbitrary()?),
            6 => {
                let i = u.choose_index(types.len())?;
                types[i] = u.arbitrary()?;
            }
            7 => types.truncate(u.choose_index(types.len())?),
            _ => tok_model = u.choose(&[&b"llama"[..], b"bert", b"", b"gpt2"])?.to_vec(),
        }
    }
    let vocab = tokens.len() as u64;

    let mut tensors: Vec<Tensor> = Vec::new();
    let mut add = |name: String, dims: Vec<u64>| {
        tensors.push(Tensor { name, dims, ty: GgmlType::F32, raw: None })
    };
    let (q, kvd) = (heads * head_dim, kv * head_dim);
    add("token_embd.weight".into(), vec![d, vocab]);
    for l in 0..blocks {
        let b = |s: &str| format!("blk.{l}.{s}");
        add(b("attn_norm.weight"), vec![d]);
        add(b("attn_q.weight"), vec![d, q]);
        add(b("attn_k.weight"), vec![d, kvd]);
        add(b("attn_v.weight"), vec![d, kvd]);
        if arch == "qwen2" {
            add(b("attn_q.bias"), vec![q]);
            add(b("attn_k.bias"), vec![kvd]);
            add(b("attn_v.bias"), vec![kvd]);
        }
        add(b("attn_output.weight"), vec![q, d]);
        add(b("ffn_norm.weight"), vec![d]);
        add(b("ffn_gate.weight"), vec![d, ff]);
        add(b("ffn_up.weight"), vec![d, ff]);
        add(b("ffn_down.weight"), vec![ff, d]);
    }
    add("output_norm.weight".into(), vec![d]);
    if rarely(u, 3)? {
        add("output.weight".into(), vec![d, vocab]);
    }

    // Tensor edits: types (block types only where rows are whole blocks), shapes, names.
    let mut hp_edits: Vec<(String, u32)> = Vec::new();
    for _ in 0..u.int_in_range(0u8..=4)? {
        let i = u.choose_index(tensors.len())?;
        match u.int_in_range(0u8..=9)? {
            0..=2 => {
                let ty = *u.choose(&[GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0])?;
                if ty == GgmlType::F16 || tensors[i].dims[0].is_multiple_of(32) {
                    tensors[i].ty = ty;
                }
            }
            3 => {
                let n = u.int_in_range(0..=64)?;
                tensors[i].raw = Some(u.bytes(n)?.to_vec());
            }
            4 => {
                let j = u.choose_index(tensors[i].dims.len())?;
                let dims = &mut tensors[i].dims;
                dims[j] = *u.choose(&[0, dims[j] / 2, dims[j] + 1, 1, dims[j] * 2])?;
            }
            5 => {
                tensors.remove(i);
            }
            6 => tensors[i].dims.reverse(),
            7 => {
                let extra = *u.choose(&["rope_freqs.weight", "blk.9.ffn_norm.weight", ""])?;
                tensors.push(Tensor {
                    name: extra.into(),
                    dims: vec![head_dim / 2],
                    ty: GgmlType::F32,
                    raw: None,
                });
            }
            8 => tensors[i].dims.push(1),
            _ => {
                let key = *u.choose(&[
                    "embedding_length",
                    "block_count",
                    "feed_forward_length",
                    "attention.head_count",
                    "attention.head_count_kv",
                    "attention.key_length",
                    "context_length",
                    "rope.dimension_count",
                ])?;
                let v = *u.choose(&[0, 1, 2, 3, 16, 64, u32::MAX, 1 << 20])?;
                hp_edits.push((key.to_owned(), v));
            }
        }
    }

    let mut w = GgufWriter::new();
    w.kv_str("general.architecture", arch);
    let key = |k: &str| format!("{arch}.{k}");
    let mut hp = vec![
        ("context_length".to_owned(), context),
        ("embedding_length".to_owned(), d as u32),
        ("block_count".to_owned(), blocks as u32),
        ("feed_forward_length".to_owned(), ff as u32),
        ("attention.head_count".to_owned(), heads as u32),
        ("attention.head_count_kv".to_owned(), kv as u32),
    ];
    if d != heads * head_dim {
        hp.push(("attention.key_length".to_owned(), head_dim as u32));
    }
    for (k, v) in hp_edits {
        match hp.iter_mut().find(|(hk, _)| *hk == k) {
            Some(e) => e.1 = v,
            None => hp.push((k, v)),
        }
    }
    for (k, v) in &hp {
        w.kv_u32(&key(k), *v);
    }
    let eps = if rarely(u, 16)? { f32::from_bits(u.arbitrary()?) } else { 1e-5 };
    w.kv_f32(&key("attention.layer_norm_rms_epsilon"), eps);
    w.kv_str("tokenizer.ggml.model", &tok_model);
    w.kv_str("tokenizer.ggml.pre", "gpt-2");
    w.kv_strs("tokenizer.ggml.tokens", &tokens);
    w.kv_i32s("tokenizer.ggml.token_type", &types);
    w.kv_strs("tokenizer.ggml.merges", &merges);
    if tok_model == b"llama" {
        let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
        w.kv_f32s("tokenizer.ggml.scores", &scores);
    }
    w.kv_u32("tokenizer.ggml.eos_token_id", eos);
    if let Some(b) = bos {
        w.kv_u32("tokenizer.ggml.bos_token_id", b);
        w.kv_bool("tokenizer.ggml.add_bos_token", true);
    }
    for (i, t) in tensors.iter().enumerate() {
        // Sizes stay small: a shape edit that makes a tensor huge gets no data (the reader
        // refuses it as running past the end of the file).
        let n = t.dims.iter().try_fold(1u64, |a, &x| a.checked_mul(x)).unwrap_or(u64::MAX);
        let n = if n > 1 << 16 { 0 } else { n as usize };
        let data = encode(t.ty, &weights(n, i as u32), t.raw.as_deref());
        w.tensor(&t.name, &t.dims, t.ty, data);
    }
    Ok(w.to_bytes())
}

/// Sampler settings from the input: llama.cpp's defaults, or any bit patterns.
pub fn sampler_config(u: &mut Unstructured<'_>) -> Result<SamplerConfig> {
    if !rarely(u, 2)? {
        return Ok(SamplerConfig::DEFAULT);
    }
    let f = |u: &mut Unstructured<'_>| -> Result<f32> {
        Ok(if rarely(u, 2)? {
            f32::from_bits(u.arbitrary()?)
        } else {
            *u.choose(&[0.0, 1.0, -1.0, 0.5, f32::NAN, f32::INFINITY, -f32::INFINITY, 1e-30])?
        })
    };
    Ok(SamplerConfig {
        temperature: f(u)?,
        top_k: u.arbitrary()?,
        top_p: f(u)?,
        min_p: f(u)?,
        repeat_penalty: f(u)?,
        frequency_penalty: f(u)?,
        presence_penalty: f(u)?,
        penalty_last_n: u.arbitrary()?,
        seed: u.arbitrary()?,
    })
}

/// Where [`exercise`] stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// The input ran out before the path was done.
    #[default]
    InputShort,
    /// The reader refused the file.
    ReaderRefused,
    /// The packer refused the model (shape check, tensor data, target limits).
    PackRefused,
    /// Packed, but the tokenizer or the config was refused.
    NoConfig,
    /// Packed and ran in a session.
    Ran,
}

/// Runs `bytes` through the whole path with settings from `u`. Panics only when an
/// invariant breaks (a model the packer accepted is refused by the runtime); every bad input
/// must come back as an error.
pub fn exercise(bytes: &[u8], u: &mut Unstructured<'_>) -> Result<Reached> {
    let Ok(g) = Gguf::from_bytes("fuzz.gguf", bytes) else { return Ok(Reached::ReaderRefused) };
    let _ = g.hparams();
    let tok = OwnedTokenizerTables::from_gguf(&g);
    if let Ok(tok) = &tok {
        let tables = tok.tables();
        if let Ok(t) = Tokenizer::new(tables) {
            let n = u.int_in_range(0..=24)?;
            let text = u.bytes(n)?;
            let opts = EncodeOptions { add_special: u.arbitrary()?, parse_special: u.arbitrary()? };
            if let Ok(ids) = t.encode_vec(text, opts) {
                let mut piece = vec![0u8; t.max_token_len()];
                for id in ids {
                    t.piece(id, true, false, &mut piece).expect("encoded id has no piece");
                }
            }
            let mut piece = vec![0u8; t.max_token_len()];
            let _ = t.piece(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?, &mut piece);
        }
    }
    let target = Target::by_name(u.choose(&["cpu", "rk3588", "rk3566"])?).unwrap();
    let scheme = *u.choose(&[Scheme::Int8, Scheme::Fp16, Scheme::Int4Hadamard, Scheme::Int4])?;
    let packed = match pack(&g, &PackOptions { target, scheme, threads: 1 }) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return Ok(Reached::PackRefused);
        }
    };
    let Ok(tok) = tok else { return Ok(Reached::NoConfig) };
    let ctx = g.hparams().map(|h| h.context_length.min(32)).unwrap_or(16);
    let Ok(config) = model_config(&g, &tok, Some(ctx)) else { return Ok(Reached::NoConfig) };
    let owned = OwnedModel::new(config, packed, tok);
    let view = owned.view();
    let mut arena = vec![0u8; arena_bytes(&config, config.context_len)];
    let mut s = Session::new(view.model(), CpuReference, &mut arena)
        .unwrap_or_else(|e| panic!("the packer accepted a model the runtime refuses: {e}"));
    drive(&mut s, u)?;
    Ok(Reached::Ran)
}

/// Feeds a session arbitrary ids, rewinds and samples.
pub fn drive<B: npu_runtime::backend::Backend>(
    s: &mut Session<'_, '_, B>,
    u: &mut Unstructured<'_>,
) -> Result<()> {
    let vocab = s.config().vocab;
    let mut sampler = Sampler::new(sampler_config(u)?);
    for _ in 0..u.int_in_range(1u8..=6)? {
        match u.int_in_range(0u8..=5)? {
            0 | 1 => {
                let n = u.int_in_range(0..=12)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    // Mostly in range, sometimes anything.
                    let id: u32 = u.arbitrary()?;
                    ids.push(if u.ratio(7u8, 8)? { id % vocab.max(1) } else { id });
                }
                if let Ok(l) = s.prefill(&ids) {
                    assert_eq!(l.len(), vocab as usize);
                }
            }
            2 => {
                let _ = s.step(u.arbitrary()?);
            }
            3 => {
                let want = u.int_in_range(0..=40)?;
                assert!(s.truncate(want) <= want);
            }
            4 => {
                if let Ok(t) = s.sample(&mut sampler) {
                    assert!(t < vocab, "sampled {t} outside the vocabulary {vocab}");
                }
            }
            _ => {
                let n = u.int_in_range(1..=8)?;
                let ids: Vec<u32> = (0..n).map(|i| i as u32 % vocab.max(1)).collect();
                let _ = s.eval_all(&ids, |_, l| assert_eq!(l.len(), vocab as usize));
            }
        }
    }
    Ok(())
}
