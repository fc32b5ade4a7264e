//! The model's hyperparameters as data: [`ModelConfig`] and the per-architecture differences
//! ([`ArchSpec`], [`ARCHS`]).
//!
//! Everything here is `Copy` and const-constructible, so a build script can emit
//! `const CONFIG: ModelConfig = ModelConfig { .. };` (and size a static arena with
//! `model::arena_bytes`), and the CLI builds the same values at run time from
//! a GGUF it just packed: one code path for both.

/// How rotary position embedding pairs the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RopeStyle {
    /// Rotate adjacent pairs `(x[2i], x[2i+1])` (ggml "normal"; GGUF llama files have Q/K
    /// rows permuted by the converter so this equals the original model's rotate-half).
    Normal,
    /// Rotate halves `(x[i], x[i + rope_dim/2])` (ggml NEOX: qwen2 and most HF-native files).
    Neox,
}

/// Supported architectures: the value of GGUF `general.architecture`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// `llama` (SmolLM2, Llama 2/3, Mistral-style files).
    Llama,
    /// `qwen2` (Qwen2 / Qwen2.5: q/k/v biases, NEOX rope).
    Qwen2,
}

/// What distinguishes one architecture from another in the forward pass. A new family whose
/// block is "RMSNorm → attention → RMSNorm → SwiGLU" is one more row of [`ARCHS`]; anything
/// structurally different is a new branch in `model::forward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchSpec {
    /// Which one.
    pub arch: Arch,
    /// `general.architecture` string.
    pub name: &'static str,
    /// Rope pairing llama.cpp assigns this architecture.
    pub rope_style: RopeStyle,
    /// Whether Q/K/V projections carry biases (`blk.N.attn_{q,k,v}.bias`).
    pub qkv_bias: bool,
}

/// The architecture table (llama.cpp `llama_model_rope_type` and tensor lists).
pub const ARCHS: &[ArchSpec] = &[
    ArchSpec { arch: Arch::Llama, name: "llama", rope_style: RopeStyle::Normal, qkv_bias: false },
    ArchSpec { arch: Arch::Qwen2, name: "qwen2", rope_style: RopeStyle::Neox, qkv_bias: true },
];

impl Arch {
    /// Looks an architecture up by its GGUF name.
    pub fn from_name(name: &str) -> Option<Arch> {
        ARCHS.iter().find(|s| s.name == name).map(|s| s.arch)
    }
    /// Its row of [`ARCHS`].
    pub const fn spec(self) -> ArchSpec {
        let mut i = 0;
        while i < ARCHS.len() {
            if ARCHS[i].arch as u8 == self as u8 {
                return ARCHS[i];
            }
            i += 1;
        }
        // Unreachable while every variant has a row (checked by a test); a const fn cannot
        // return an error, and this default is the plainest architecture.
        ARCHS[0]
    }
    /// The GGUF name.
    pub const fn name(self) -> &'static str {
        self.spec().name
    }
}

/// Hyperparameters of a decoder-only transformer plus the run-time sizing (context length).
/// Field names follow GGUF's `{arch}.*` keys loosely; shapes in the comments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    /// Architecture family.
    pub arch: Arch,
    /// Transformer blocks (`blk.0` … `blk.{n_layers-1}`).
    pub n_layers: u32,
    /// Residual stream width d (`token_embd.weight` is `[vocab][d]`).
    pub d_model: u32,
    /// Query heads; `attn_q.weight` is `[n_heads·head_dim][d]`.
    pub n_heads: u32,
    /// Key/value heads (GQA: `n_heads` is a multiple); `attn_k/v.weight` `[n_kv_heads·head_dim][d]`.
    pub n_kv_heads: u32,
    /// Dimensions per head.
    pub head_dim: u32,
    /// FFN hidden width; `ffn_gate/up.weight` `[ff][d]`, `ffn_down.weight` `[d][ff]`.
    pub ff: u32,
    /// Vocabulary size; `output.weight` is `[vocab][d]`.
    pub vocab: u32,
    /// Rope frequency base θ (`{arch}.rope.freq_base`).
    pub rope_base: f32,
    /// Dimensions rotated per head (≤ `head_dim`, even); the rest pass through.
    pub rope_dim: u32,
    /// Rope pairing.
    pub rope_style: RopeStyle,
    /// RMSNorm ε.
    pub rms_eps: f32,
    /// Q/K/V projections have biases.
    pub qkv_bias: bool,
    /// The GGUF had no `output.weight` (the packer synthesizes it from `token_embd`; the
    /// runtime always reads `output.weight`). Informational.
    pub tied_output: bool,
    /// Positions the KV cache holds: the session's context length (≤ the trained one).
    pub context_len: u32,
    /// Token that ends generation (`tokenizer.ggml.eos_token_id`).
    pub eos: u32,
    /// A second end-of-generation token (end of turn), if the vocabulary has one.
    pub eot: Option<u32>,
}

impl ModelConfig {
    /// A config for architecture `arch` with its [`ArchSpec`] defaults for rope style and
    /// biases; the rest from the arguments (`rope_dim = head_dim`, no EOT).
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        arch: Arch,
        n_layers: u32,
        d_model: u32,
        n_heads: u32,
        n_kv_heads: u32,
        head_dim: u32,
        ff: u32,
        vocab: u32,
        rope_base: f32,
        rms_eps: f32,
        tied_output: bool,
        context_len: u32,
        eos: u32,
    ) -> ModelConfig {
        let s = arch.spec();
        ModelConfig {
            arch,
            n_layers,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            ff,
            vocab,
            rope_base,
            rope_dim: head_dim,
            rope_style: s.rope_style,
            rms_eps,
            qkv_bias: s.qkv_bias,
            tied_output,
            context_len,
            eos,
            eot: None,
        }
    }

    /// Query width `n_heads · head_dim`.
    pub const fn q_dim(&self) -> usize {
        self.n_heads as usize * self.head_dim as usize
    }
    /// Key/value width `n_kv_heads · head_dim`.
    pub const fn kv_dim(&self) -> usize {
        self.n_kv_heads as usize * self.head_dim as usize
    }
    /// Query heads per key/value head (GQA group; 1 for a config `check` would refuse).
    pub const fn gqa_group(&self) -> usize {
        if self.n_kv_heads == 0 {
            1
        } else {
            max(self.n_heads as usize / self.n_kv_heads as usize, 1)
        }
    }
    /// Whether `id` ends generation.
    pub const fn is_stop(&self, id: u32) -> bool {
        id == self.eos
            || match self.eot {
                Some(e) => e == id,
                None => false,
            }
    }
    /// Checks the numbers against each other (nonzero sizes, GQA divisibility, even rope
    /// width within the head, limits of this runtime). `None` when fine, else why not.
    pub const fn invalid(&self) -> Option<&'static str> {
        if self.n_layers == 0 || self.d_model == 0 || self.n_heads == 0 || self.n_kv_heads == 0 {
            return Some("zero-sized model dimension");
        }
        if self.head_dim == 0 || self.ff == 0 || self.vocab == 0 || self.context_len == 0 {
            return Some("zero-sized model dimension");
        }
        if self.n_layers as usize > MAX_LAYERS {
            return Some("more layers than model::MAX_LAYERS");
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Some("n_heads is not a multiple of n_kv_heads");
        }
        if !self.rope_dim.is_multiple_of(2) || self.rope_dim > self.head_dim {
            return Some("rope_dim must be even and at most head_dim");
        }
        if self.rms_eps.is_nan()
            || self.rms_eps <= 0.0
            || self.rope_base.is_nan()
            || self.rope_base <= 0.0
        {
            return Some("rms_eps and rope_base must be positive");
        }
        if self.eos >= self.vocab {
            return Some("eos id outside the vocabulary");
        }
        if self.context_len > (1 << 24) {
            // positions are turned into f32 angles; past 2^24 they are no longer exact.
            return Some("context_len above 2^24");
        }
        None
    }
}

/// `max` for const contexts.
pub(super) const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Most transformer blocks a session resolves (its per-layer tensor index table is a fixed
/// array, so sessions need no allocator).
pub const MAX_LAYERS: usize = 128;

pub use crate::backend::MAX_BATCH;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arch_has_a_row() {
        for a in [Arch::Llama, Arch::Qwen2] {
            assert_eq!(a.spec().arch, a);
            assert_eq!(Arch::from_name(a.name()), Some(a));
        }
        assert_eq!(Arch::from_name("gpt2"), None);
    }
}
