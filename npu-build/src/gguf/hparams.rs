//! Typed hyperparameters and a tokenizer summary, from the metadata keys llama.cpp writes.
//!
//! Architectures are the rows of the runtime's table ([`ARCHS`]): every supported
//! architecture stores its hyperparameters under `{arch}.` with the same key names, so a new
//! one that follows the llama layout is one more row there, read here unchanged. The keys of
//! the optional features (sliding window, soft caps) are read only for rows that have them,
//! with the row's defaults, as llama.cpp's `load_arch_hparams` does.

use super::error::ErrorKind;
use super::{Error, Gguf};
pub use npu_runtime::model::RopeStyle;
use npu_runtime::model::{swa_pattern, ArchSpec, ARCHS, MAX_LAYERS};

/// Lower-case name of a rope style, as llama.cpp prints it: `"normal"` or `"neox"`.
pub const fn rope_style_name(style: RopeStyle) -> &'static str {
    match style {
        RopeStyle::Normal => "normal",
        RopeStyle::Neox => "neox",
    }
}

/// Hyperparameters of a decoder-only transformer, read and cross-checked.
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    /// `general.architecture`.
    pub architecture: String,
    /// `{arch}.context_length`: trained context, in tokens.
    pub context_length: u32,
    /// `{arch}.embedding_length`: model width d.
    pub embedding_length: u32,
    /// `{arch}.block_count`: transformer blocks.
    pub block_count: u32,
    /// `{arch}.feed_forward_length`: FFN hidden width.
    pub feed_forward_length: u32,
    /// `{arch}.attention.head_count`: query heads.
    pub head_count: u32,
    /// `{arch}.attention.head_count_kv` (default: `head_count`): key/value heads.
    pub head_count_kv: u32,
    /// `{arch}.attention.key_length` if present, else `embedding_length / head_count`.
    pub head_dim: u32,
    /// `{arch}.attention.layer_norm_rms_epsilon`.
    pub rms_norm_eps: f32,
    /// `{arch}.rope.freq_base` (default 10000).
    pub rope_freq_base: f32,
    /// `{arch}.rope.dimension_count` (default: `head_dim`): dimensions rotated per head.
    pub rope_dimension_count: u32,
    /// Rope pairing of this architecture.
    pub rope_style: RopeStyle,
    /// Tokens: length of `tokenizer.ggml.tokens`, else `{arch}.vocab_size`, else the second
    /// dimension of `token_embd.weight`.
    pub vocab_size: u32,
    /// Whether the attention Q/K/V projections have biases (`blk.0.attn_q.bias` exists).
    pub qkv_bias: bool,
    /// Whether the output projection reuses `token_embd.weight` (no `output.weight` tensor).
    pub tied_output: bool,
    /// Whether each block normalizes q and k per head (`attn_{q,k}_norm.weight`).
    pub qk_norm: bool,
    /// Whether each block normalizes the attention and FFN outputs (`post_attention_norm`,
    /// `post_ffw_norm`).
    pub post_norms: bool,
    /// The local layers' window in positions (`{arch}.attention.sliding_window`, else the
    /// architecture's default); 0: every layer attends to the whole context.
    pub sliding_window: u32,
    /// Local layers, bit `l` for block `l`: `{arch}.attention.sliding_window_pattern` (a period,
    /// or one bool per block), else the architecture's period. 0 without a window.
    pub swa_layers: u128,
    /// Rope base of the local layers (`{arch}.rope.freq_base_swa`, else the architecture's
    /// default).
    pub rope_freq_base_swa: f32,
    /// Attention scores are `q·k / √query_scale_dim`.
    pub query_scale_dim: u32,
    /// `{arch}.attn_logit_softcapping` where the architecture has it (0: none).
    pub attn_logit_softcapping: f32,
    /// `{arch}.final_logit_softcapping` where the architecture has it (0: none).
    pub final_logit_softcapping: f32,
}

/// A summary of the `tokenizer.ggml.*` metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizerSummary<'a> {
    /// `tokenizer.ggml.model` (`"gpt2"` for byte-level BPE, `"llama"` for SentencePiece...).
    pub model: Option<&'a str>,
    /// `tokenizer.ggml.pre`: the pre-tokenizer (`"smollm"`, `"qwen2"`...).
    pub pre: Option<&'a str>,
    /// Length of `tokenizer.ggml.tokens`.
    pub n_tokens: Option<u64>,
    /// Length of `tokenizer.ggml.merges`.
    pub n_merges: Option<u64>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// Whether `tokenizer.chat_template` is present.
    pub has_chat_template: bool,
}

impl Gguf<'_> {
    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str, Error> {
        self.get_str("general.architecture")?.ok_or_else(|| {
            self.err(ErrorKind::MissingKey { key: "general.architecture".to_owned() })
        })
    }

    /// The typed hyperparameters, for an architecture in the runtime's [`ARCHS`].
    pub fn hparams(&self) -> Result<HParams, Error> {
        let arch = self.architecture()?;
        let spec = ARCHS.iter().find(|s| s.name == arch).ok_or_else(|| {
            self.err(ErrorKind::UnsupportedArchitecture {
                arch: arch.to_owned(),
                supported: ARCHS.iter().map(|s| s.name).collect(),
            })
        })?;
        let key = |k: &str| format!("{arch}.{k}");
        let required_u32 = |k: &str| -> Result<u32, Error> {
            let k = key(k);
            let v = self
                .get_u32(&k)?
                .ok_or_else(|| self.err(ErrorKind::MissingKey { key: k.clone() }))?;
            if v == 0 {
                return Err(self.bad(&k, "must be nonzero".to_owned()));
            }
            Ok(v)
        };

        let context_length = required_u32("context_length")?;
        let embedding_length = required_u32("embedding_length")?;
        let block_count = required_u32("block_count")?;
        let feed_forward_length = required_u32("feed_forward_length")?;
        let head_count = required_u32("attention.head_count")?;
        let head_count_kv = match self.get_u32(&key("attention.head_count_kv"))? {
            Some(0) => {
                return Err(self.bad(&key("attention.head_count_kv"), "must be nonzero".to_owned()))
            }
            Some(n) => n,
            None => head_count,
        };
        if !head_count.is_multiple_of(head_count_kv) {
            return Err(self.bad(
                &key("attention.head_count_kv"),
                format!(
                    "head_count {head_count} is not a multiple of head_count_kv {head_count_kv}"
                ),
            ));
        }
        let head_dim = match self.get_u32(&key("attention.key_length"))? {
            Some(0) => return Err(self.bad(&key("attention.key_length"), "must be nonzero".to_owned())),
            Some(n) => n,
            None if !embedding_length.is_multiple_of(head_count) => {
                return Err(self.bad(
                    &key("attention.head_count"),
                    format!("embedding_length {embedding_length} is not a multiple of head_count {head_count}"),
                ))
            }
            None => embedding_length / head_count,
        };
        let value_key = key("attention.value_length");
        match self.get_u32(&value_key)? {
            Some(v) if v != head_dim => {
                return Err(self.bad(
                    &value_key,
                    format!(
                    "{v} differs from the key head size {head_dim}; npu-runtime needs them equal"
                ),
                ))
            }
            _ => {}
        }
        let eps_key = key("attention.layer_norm_rms_epsilon");
        let rms_norm_eps = self
            .get_f32(&eps_key)?
            .ok_or_else(|| self.err(ErrorKind::MissingKey { key: eps_key.clone() }))?;
        if !(rms_norm_eps.is_finite() && rms_norm_eps > 0.0) {
            return Err(self.bad(&eps_key, format!("{rms_norm_eps} is not a positive number")));
        }
        let (rope_freq_base, rope_dimension_count) = self.rope(arch, head_dim)?;
        let vocab_size = self.vocab_size(arch, embedding_length)?;
        let (sliding_window, swa_layers, rope_freq_base_swa) =
            self.sliding_window(spec, block_count, rope_freq_base)?;
        let softcap = |k: &str, default: Option<f32>| -> Result<f32, Error> {
            let Some(default) = default else { return Ok(0.0) };
            let v = self.get_f32(&key(k))?.unwrap_or(default);
            if !(v.is_finite() && v >= 0.0) {
                return Err(self.bad(&key(k), format!("{v} is not a finite number ≥ 0")));
            }
            Ok(v)
        };
        let attn_logit_softcapping = softcap("attn_logit_softcapping", spec.attn_softcap)?;
        let final_logit_softcapping = softcap("final_logit_softcapping", spec.final_softcap)?;
        // llama.cpp scales Gemma 27B's queries by 1/√(d/heads), the others by 1/√head_dim.
        let query_scale_dim = if spec.wide_query_scale_layers == block_count {
            embedding_length / head_count
        } else {
            head_dim
        };

        Ok(HParams {
            architecture: arch.to_owned(),
            context_length,
            embedding_length,
            block_count,
            feed_forward_length,
            head_count,
            head_count_kv,
            head_dim,
            rms_norm_eps,
            rope_freq_base,
            rope_dimension_count,
            rope_style: spec.rope_style,
            vocab_size,
            qkv_bias: self.tensor("blk.0.attn_q.bias").is_some(),
            tied_output: self.tensor("output.weight").is_none(),
            qk_norm: spec.qk_norm,
            post_norms: spec.post_norms,
            sliding_window,
            swa_layers,
            rope_freq_base_swa,
            query_scale_dim,
            attn_logit_softcapping,
            final_logit_softcapping,
        })
    }

    /// The tokenizer metadata in brief. Absent keys are `None`; present keys of the wrong type
    /// are errors.
    pub fn tokenizer(&self) -> Result<TokenizerSummary<'_>, Error> {
        Ok(TokenizerSummary {
            model: self.get_str("tokenizer.ggml.model")?,
            pre: self.get_str("tokenizer.ggml.pre")?,
            n_tokens: self.get_array("tokenizer.ggml.tokens")?.map(|a| a.len()),
            n_merges: self.get_array("tokenizer.ggml.merges")?.map(|a| a.len()),
            bos_id: self.get_u32("tokenizer.ggml.bos_token_id")?,
            eos_id: self.get_u32("tokenizer.ggml.eos_token_id")?,
            add_bos: self.get_bool("tokenizer.ggml.add_bos_token")?,
            has_chat_template: self.get("tokenizer.chat_template").is_some(),
        })
    }

    /// `{arch}.rope.freq_base` (default 10000) and `{arch}.rope.dimension_count` (default
    /// `head_dim`), checked.
    fn rope(&self, arch: &str, head_dim: u32) -> Result<(f32, u32), Error> {
        let key = |k: &str| format!("{arch}.{k}");
        let rope_freq_base = self.get_f32(&key("rope.freq_base"))?.unwrap_or(10000.0);
        if !(rope_freq_base.is_finite() && rope_freq_base > 0.0) {
            return Err(self.bad(
                &key("rope.freq_base"),
                format!("{rope_freq_base} is not a positive number"),
            ));
        }
        let rope_dimension_count = self.get_u32(&key("rope.dimension_count"))?.unwrap_or(head_dim);
        if rope_dimension_count == 0
            || !rope_dimension_count.is_multiple_of(2)
            || rope_dimension_count > head_dim
        {
            return Err(self.bad(
                &key("rope.dimension_count"),
                format!("{rope_dimension_count} must be even, nonzero and at most the head dimension {head_dim}"),
            ));
        }
        Ok((rope_freq_base, rope_dimension_count))
    }

    /// The sliding window, the local-layer mask and the local rope base, for an architecture
    /// with local layers (llama.cpp: a window from the key or the row's default; the pattern
    /// as one bool per block, else a period from the key or the row's). `(0, 0, global base)`
    /// otherwise.
    fn sliding_window(
        &self,
        spec: &ArchSpec,
        block_count: u32,
        rope_freq_base: f32,
    ) -> Result<(u32, u128, f32), Error> {
        let arch = spec.name;
        let key = |k: &str| format!("{arch}.{k}");
        let Some(sw) = spec.sliding_window else { return Ok((0, 0, rope_freq_base)) };
        let window = self.get_u32(&key("attention.sliding_window"))?.unwrap_or(sw.default_window);
        if window == 0 {
            return Ok((0, 0, rope_freq_base));
        }
        if window > 1 << 24 {
            return Err(self.bad(
                &key("attention.sliding_window"),
                format!("{window} is above 2^24 positions"),
            ));
        }
        if block_count as usize > MAX_LAYERS {
            return Err(self.bad(
                &key("block_count"),
                format!(
                    "{block_count} blocks with local layers; npu-runtime runs at most {MAX_LAYERS}"
                ),
            ));
        }
        let pattern_key = key("attention.sliding_window_pattern");
        let layers = match self.get(&pattern_key) {
            None => swa_pattern(sw.period, block_count),
            Some(v) => match (v.as_u64(), v.as_array()) {
                (Some(p), _) => swa_pattern(u32::try_from(p).unwrap_or(u32::MAX), block_count),
                (None, Some(a)) if a.len() == u64::from(block_count) => {
                    let mut mask = 0u128;
                    for (l, b) in a.iter().enumerate() {
                        match b.as_bool() {
                            Some(true) => mask |= 1 << l,
                            Some(false) => {}
                            None => {
                                return Err(
                                    self.bad(&pattern_key, "not an array of bools".to_owned())
                                )
                            }
                        }
                    }
                    mask
                }
                _ => {
                    return Err(self.bad(
                        &pattern_key,
                        format!("{v:?} is neither a period nor one bool per block ({block_count})"),
                    ))
                }
            },
        };
        let base_key = key("rope.freq_base_swa");
        let base =
            self.get_f32(&base_key)?.unwrap_or(sw.default_local_base.unwrap_or(rope_freq_base));
        if !(base.is_finite() && base > 0.0) {
            return Err(self.bad(&base_key, format!("{base} is not a positive number")));
        }
        Ok((window, layers, base))
    }

    /// Tokens: length of `tokenizer.ggml.tokens`, else `{arch}.vocab_size`, else the second
    /// dimension of `token_embd.weight`; checked against that tensor's shape.
    fn vocab_size(&self, arch: &str, embedding_length: u32) -> Result<u32, Error> {
        let key = |k: &str| format!("{arch}.{k}");
        let embd = self.tensor("token_embd.weight");
        let vocab_size = match self.get_array("tokenizer.ggml.tokens")? {
            Some(a) => u32::try_from(a.len()).ok(),
            None => match self.get_u32(&key("vocab_size"))? {
                Some(n) => Some(n),
                None => embd.and_then(|t| t.dims().get(1)).and_then(|&n| u32::try_from(n).ok()),
            },
        };
        let vocab_size = match vocab_size {
            Some(n) if n > 0 => n,
            _ => {
                return Err(self.bad(
                    "tokenizer.ggml.tokens",
                    "vocabulary size unknown or zero (no tokens array, vocab_size or token_embd.weight)".to_owned(),
                ))
            }
        };
        // llama.cpp rejects a token embedding of any other shape; catching it here names the
        // cause instead of failing later in the packer.
        if let Some(t) = embd {
            if t.dims() != [u64::from(embedding_length), u64::from(vocab_size)] {
                return Err(self.bad(
                    "token_embd.weight",
                    format!(
                        "tensor shape {:?} does not match [embedding_length {embedding_length}, vocab {vocab_size}]",
                        t.dims()
                    ),
                ));
            }
        }
        Ok(vocab_size)
    }

    fn bad(&self, key: &str, detail: String) -> Error {
        self.err(ErrorKind::BadValue { key: key.to_owned(), detail })
    }
}
