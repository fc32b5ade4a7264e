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
    /// `gemma2` (Gemma 2: GeGLU, post-norms, scaled embeddings, local layers every other
    /// block, soft-capped attention and output logits).
    Gemma2,
    /// `gemma3` (Gemma 3 text: Gemma 2's block plus per-head Q/K RMSNorm, five local layers
    /// of six with their own rope base).
    Gemma3,
}

/// The FFN's gate activation: `down((act(gate(x)) ⊙ up(x))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `x / (1 + e^(−x))` (SwiGLU).
    Silu,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (GeGLU, the tanh approximation).
    GeluTanh,
}

/// Which layers attend through a sliding window, and the defaults llama.cpp uses when the
/// file leaves a key out. Layer `l` is local iff `l % period < period − 1` (`period` 0: every
/// layer), unless `{arch}.attention.sliding_window_pattern` says otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlidingWindow {
    /// Pattern period when the file has no `sliding_window_pattern`.
    pub period: u32,
    /// Window when the file has no `{arch}.attention.sliding_window` (0: no window then).
    pub default_window: u32,
    /// Rope base of local layers when the file has no `{arch}.rope.freq_base_swa`
    /// (`None`: the global base).
    pub default_local_base: Option<f32>,
}

/// What distinguishes one architecture from another in the forward pass. A new family whose
/// block is a combination of these switches is one more row of [`ARCHS`]; anything
/// structurally different is a new branch in `model::forward`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchSpec {
    /// Which one.
    pub arch: Arch,
    /// `general.architecture` string.
    pub name: &'static str,
    /// Rope pairing llama.cpp assigns this architecture.
    pub rope_style: RopeStyle,
    /// Whether Q/K/V projections carry biases (`blk.N.attn_{q,k,v}.bias`).
    pub qkv_bias: bool,
    /// Per-head RMSNorm of q and k before rope (`blk.N.attn_{q,k}_norm.weight`, `[head_dim]`).
    pub qk_norm: bool,
    /// RMSNorm of the attention and FFN outputs before each residual add
    /// (`blk.N.post_attention_norm.weight`, `blk.N.post_ffw_norm.weight`, `[d]`).
    pub post_norms: bool,
    /// Token embeddings are multiplied by `√d_model` (in f32, as ggml does).
    pub embed_scale: bool,
    /// FFN gate activation.
    pub act: Activation,
    /// Local (sliding-window) layers, when the architecture has them.
    pub sliding_window: Option<SlidingWindow>,
    /// Attention logits soft cap when the file has no `{arch}.attn_logit_softcapping`
    /// (`None`: the architecture has none and the key is not read).
    pub attn_softcap: Option<f32>,
    /// Output logits soft cap when the file has no `{arch}.final_logit_softcapping` (0: none;
    /// `None`: the architecture has none and the key is not read).
    pub final_softcap: Option<f32>,
    /// Block count of the variant whose queries are scaled by `1/√(d_model/n_heads)` instead
    /// of `1/√head_dim` (llama.cpp decides Gemma 27B this way; 0: none).
    pub wide_query_scale_layers: u32,
}

/// The plain llama row, for the table's other rows to start from.
const LLAMA: ArchSpec = ArchSpec {
    arch: Arch::Llama,
    name: "llama",
    rope_style: RopeStyle::Normal,
    qkv_bias: false,
    qk_norm: false,
    post_norms: false,
    embed_scale: false,
    act: Activation::Silu,
    sliding_window: None,
    attn_softcap: None,
    final_softcap: None,
    wide_query_scale_layers: 0,
};

/// The architecture table (llama.cpp `llama_model_rope_type`, tensor lists and
/// `load_arch_hparams` defaults).
pub const ARCHS: &[ArchSpec] = &[
    LLAMA,
    ArchSpec {
        arch: Arch::Qwen2,
        name: "qwen2",
        rope_style: RopeStyle::Neox,
        qkv_bias: true,
        ..LLAMA
    },
    ArchSpec {
        arch: Arch::Gemma2,
        name: "gemma2",
        rope_style: RopeStyle::Neox,
        post_norms: true,
        embed_scale: true,
        act: Activation::GeluTanh,
        sliding_window: Some(SlidingWindow {
            period: 2,
            default_window: 4096,
            default_local_base: None,
        }),
        attn_softcap: Some(50.0),
        final_softcap: Some(30.0),
        wide_query_scale_layers: 46,
        ..LLAMA
    },
    ArchSpec {
        arch: Arch::Gemma3,
        name: "gemma3",
        rope_style: RopeStyle::Neox,
        qk_norm: true,
        post_norms: true,
        embed_scale: true,
        act: Activation::GeluTanh,
        sliding_window: Some(SlidingWindow {
            period: 6,
            default_window: 0,
            default_local_base: Some(10000.0),
        }),
        final_softcap: Some(0.0),
        wide_query_scale_layers: 62,
        ..LLAMA
    },
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
    /// Sliding window of the local layers, in positions: a query at position p attends to the
    /// keys at `p − swa_window < t ≤ p` (llama.cpp's standard SWA mask). 0: no local layers.
    pub swa_window: u32,
    /// Bit `l` set: layer `l` is local (windowed attention, rope base `rope_base_local`, a
    /// ring KV cache of `swa_window + MAX_BATCH − 1` positions). Only with `swa_window > 0`.
    pub swa_layers: u128,
    /// Rope frequency base θ of the local layers.
    pub rope_base_local: f32,
    /// Attention scores are `q·k / √query_scale_dim` (`head_dim` unless the architecture
    /// scales by something else, e.g. Gemma 27B's `d_model / n_heads`).
    pub query_scale_dim: u32,
    /// Attention score soft cap `c`: `s ↦ c·tanh(s/c)` before the softmax (0: none).
    pub attn_softcap: f32,
    /// Output logit soft cap `c`: `z ↦ c·tanh(z/c)` (0: none).
    pub final_softcap: f32,
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
    /// A config for architecture `arch` with its [`ArchSpec`] defaults for rope style, biases,
    /// sliding window and soft caps; the rest from the arguments (`rope_dim = head_dim`, no
    /// EOT).
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
        let (swa_window, swa_layers, rope_base_local) = match s.sliding_window {
            Some(w) => (
                w.default_window,
                if w.default_window > 0 { swa_pattern(w.period, n_layers) } else { 0 },
                match w.default_local_base {
                    Some(b) => b,
                    None => rope_base,
                },
            ),
            None => (0, 0, rope_base),
        };
        let query_scale_dim = if s.wide_query_scale_layers != 0
            && n_layers == s.wide_query_scale_layers
            && n_heads != 0
        {
            d_model / n_heads
        } else {
            head_dim
        };
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
            swa_window,
            swa_layers,
            rope_base_local,
            query_scale_dim,
            attn_softcap: match s.attn_softcap {
                Some(c) => c,
                None => 0.0,
            },
            final_softcap: match s.final_softcap {
                Some(c) => c,
                None => 0.0,
            },
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
    /// Whether layer `l` is local (sliding-window attention).
    pub const fn is_local(&self, l: usize) -> bool {
        self.swa_window > 0 && l < 128 && (self.swa_layers >> l) & 1 == 1
    }
    /// Rope base θ of layer `l`.
    pub const fn rope_base_of(&self, l: usize) -> f32 {
        if self.is_local(l) {
            self.rope_base_local
        } else {
            self.rope_base
        }
    }
    /// Positions layer `l`'s KV cache holds for a context of `context_len`: all of them, or
    /// for a local layer a ring of `swa_window + MAX_BATCH − 1` (the window of the first row
    /// of a chunk plus the chunk's other rows, written before any row attends) when smaller.
    /// Position `p` lives in row `p % cache_rows(l, context_len)`.
    pub const fn cache_rows(&self, l: usize, context_len: u32) -> usize {
        let ctx = context_len as usize;
        if self.is_local(l) {
            let ring = self.swa_window as usize + MAX_BATCH - 1;
            if ring < ctx {
                return ring;
            }
        }
        ctx
    }
    /// Cache positions of the layers before `l` (where layer `l`'s rows start).
    pub const fn cache_offset(&self, l: usize, context_len: u32) -> usize {
        let mut i = 0;
        let mut sum = 0;
        while i < l && i < self.n_layers as usize {
            sum += self.cache_rows(i, context_len);
            i += 1;
        }
        sum
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
        if self.n_layers < 128 && self.swa_layers >> self.n_layers != 0 {
            return Some("swa_layers marks layers past n_layers");
        }
        if self.swa_layers != 0 && self.swa_window == 0 {
            return Some("swa_layers without a sliding window");
        }
        if self.swa_window > (1 << 24) {
            return Some("swa_window above 2^24");
        }
        if self.rope_base_local.is_nan() || self.rope_base_local <= 0.0 || self.query_scale_dim == 0
        {
            return Some("rope_base_local and query_scale_dim must be positive");
        }
        if !self.attn_softcap.is_finite()
            || self.attn_softcap < 0.0
            || !self.final_softcap.is_finite()
            || self.final_softcap < 0.0
        {
            return Some("soft caps must be finite and non-negative");
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

/// The local-layer mask of a period-`period` pattern over `n_layers` blocks: layer `l` is
/// local iff `l % period < period − 1`, every layer for period 0 (llama.cpp
/// `set_swa_pattern`).
pub const fn swa_pattern(period: u32, n_layers: u32) -> u128 {
    let mut mask = 0u128;
    let mut l = 0;
    while l < n_layers && l < 128 {
        if period == 0 || l % period < period - 1 {
            mask |= 1 << l;
        }
        l += 1;
    }
    mask
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

/// Gemma 3 270M's shape at 4096 positions, before its window keys are read (no local
/// layers yet): the fixture of the config and arena tests.
#[cfg(test)]
pub(crate) fn gemma3_270m() -> ModelConfig {
    ModelConfig::new(Arch::Gemma3, 18, 640, 4, 1, 256, 2048, 262144, 1e6, 1e-6, true, 4096, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arch_has_a_row() {
        for a in [Arch::Llama, Arch::Qwen2, Arch::Gemma2, Arch::Gemma3] {
            assert_eq!(a.spec().arch, a);
            assert_eq!(Arch::from_name(a.name()), Some(a));
        }
        assert_eq!(Arch::from_name("gpt2"), None);
    }

    #[test]
    fn gemma3_layers_and_cache_rows() {
        // Gemma 3 270M: 18 blocks, every sixth global (5, 11, 17); window 512 from the file.
        let mut c = gemma3_270m();
        assert_eq!((c.swa_window, c.swa_layers), (0, 0), "no window without the key");
        c.swa_window = 512;
        c.swa_layers = swa_pattern(6, 18);
        assert_eq!((0..18).filter(|&l| c.is_local(l)).count(), 15);
        assert!(!c.is_local(5) && !c.is_local(11) && !c.is_local(17) && c.is_local(0));
        assert_eq!(c.rope_base_of(0), 10000.0);
        assert_eq!(c.rope_base_of(5), 1e6);
        assert_eq!(c.query_scale_dim, 256);
        let ring = 512 + MAX_BATCH - 1;
        assert_eq!(c.cache_rows(0, 4096), ring);
        assert_eq!(c.cache_rows(5, 4096), 4096);
        assert_eq!(c.cache_rows(0, 256), 256, "a ring never exceeds the context");
        assert_eq!(c.cache_offset(6, 4096), 5 * ring + 4096);
        assert_eq!(c.cache_offset(18, 4096), 15 * ring + 3 * 4096);
        assert_eq!(c.invalid(), None);
        c.swa_layers |= 1 << 18;
        assert!(c.invalid().is_some());
    }

    #[test]
    fn gemma2_defaults() {
        let c = ModelConfig::new(
            Arch::Gemma2,
            46,
            4608,
            32,
            16,
            128,
            36864,
            256000,
            1e4,
            1e-6,
            true,
            8192,
            1,
        );
        assert_eq!((c.swa_window, c.swa_layers), (4096, swa_pattern(2, 46)));
        assert!(c.is_local(0) && !c.is_local(1));
        assert_eq!((c.attn_softcap, c.final_softcap), (50.0, 30.0));
        assert_eq!(c.rope_base_local, 1e4);
        assert_eq!(c.query_scale_dim, 4608 / 32, "27B scales by d_model / n_heads");
    }
}
