//! A [`Session`]: one conversation's state (KV cache, position, token history) in a
//! caller-provided arena, over a [`Model`] and a [`Backend`].

use super::config::{ArenaPlan, Model, ModelConfig, MAX_BATCH, MAX_LAYERS};
use super::forward::{self, Bufs};
use super::ModelError;
use crate::backend::Backend;
use crate::error::Error;
use crate::format::{TensorDesc, TensorKind};
use core::fmt::Write as _;

/// Per-block tensors, in the order of a block's computation. `NONE` marks an absent
/// optional tensor (biases of architectures without them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Slot {
    AttnNorm,
    Q,
    K,
    V,
    O,
    FfnNorm,
    Gate,
    Up,
    Down,
    QBias,
    KBias,
    VBias,
}

/// Number of [`Slot`]s.
pub(crate) const N_SLOTS: usize = 12;

/// Index into the descriptor table, or [`NONE`].
pub(crate) type TIdx = u16;
/// An absent tensor.
pub(crate) const NONE: TIdx = u16::MAX;

/// What a slot must be: GGUF suffix, kind, and (K, N) as `[N][K]` rows of K.
fn slot_spec(c: &ModelConfig, s: Slot) -> (&'static str, TensorKind, usize, usize) {
    let (d, q, kv, ff) = (c.d_model as usize, c.q_dim(), c.kv_dim(), c.ff as usize);
    match s {
        Slot::AttnNorm => ("attn_norm.weight", TensorKind::F32, d, 1),
        Slot::Q => ("attn_q.weight", TensorKind::Matmul, d, q),
        Slot::K => ("attn_k.weight", TensorKind::Matmul, d, kv),
        Slot::V => ("attn_v.weight", TensorKind::Matmul, d, kv),
        Slot::O => ("attn_output.weight", TensorKind::Matmul, q, d),
        Slot::FfnNorm => ("ffn_norm.weight", TensorKind::F32, d, 1),
        Slot::Gate => ("ffn_gate.weight", TensorKind::Matmul, d, ff),
        Slot::Up => ("ffn_up.weight", TensorKind::Matmul, d, ff),
        Slot::Down => ("ffn_down.weight", TensorKind::Matmul, ff, d),
        Slot::QBias => ("attn_q.bias", TensorKind::F32, q, 1),
        Slot::KBias => ("attn_k.bias", TensorKind::F32, kv, 1),
        Slot::VBias => ("attn_v.bias", TensorKind::F32, kv, 1),
    }
}

const ALL_SLOTS: [Slot; N_SLOTS] = [
    Slot::AttnNorm,
    Slot::Q,
    Slot::K,
    Slot::V,
    Slot::O,
    Slot::FfnNorm,
    Slot::Gate,
    Slot::Up,
    Slot::Down,
    Slot::QBias,
    Slot::KBias,
    Slot::VBias,
];

/// A tensor name built on the stack (`blk.{i}.{suffix}`), so resolving names needs no
/// allocator; the longest is `blk.127.attn_output.weight` (27 bytes).
type NameBuf = heapless::String<48>;

/// Resolved descriptor indices of the whole model: per block `[slot]`, plus the globals.
pub(crate) struct Resolved {
    /// `[n_layers][N_SLOTS]` indices into the descriptor table.
    pub layers: heapless::Vec<[TIdx; N_SLOTS], MAX_LAYERS>,
    /// `token_embd.weight`.
    pub embd: TIdx,
    /// `output_norm.weight`.
    pub out_norm: TIdx,
    /// `output.weight`.
    pub output: TIdx,
}

fn find(tensors: &[TensorDesc<'_>], name: &str) -> Option<TIdx> {
    let i = tensors.iter().position(|t| t.name == name)?;
    TIdx::try_from(i).ok().filter(|&i| i != NONE)
}

/// Checks kind and logical shape of a resolved tensor and its descriptor against the blob.
fn check_tensor(
    m: &Model<'_>,
    idx: TIdx,
    kind: TensorKind,
    k: usize,
    n: usize,
    layer: Option<u32>,
    name: &'static str,
) -> Result<(), ModelError> {
    let t = m.weights.tensors.get(idx as usize).ok_or(ModelError::MissingTensor { layer, name })?;
    t.check(m.weights.blob.len())?;
    let (tk, tn) = (t.geom.k as usize, t.geom.n as usize);
    // 1-D tensors may come as [k] (n = 1) or, from other packers, as [1][k].
    let shape_ok = match kind {
        TensorKind::F32 => tk * tn == k * n && (tn == 1 || tk == 1),
        _ => tk == k && tn == n,
    };
    if t.kind != kind || !shape_ok {
        return Err(ModelError::Shape { layer, name });
    }
    Ok(())
}

impl Resolved {
    fn new(m: &Model<'_>) -> Result<Resolved, ModelError> {
        let c = &m.config;
        let tensors = m.weights.tensors;
        let global = |name: &'static str, kind, k, n| -> Result<TIdx, ModelError> {
            let i = find(tensors, name).ok_or(ModelError::MissingTensor { layer: None, name })?;
            check_tensor(m, i, kind, k, n, None, name)?;
            Ok(i)
        };
        let (d, vocab) = (c.d_model as usize, c.vocab as usize);
        let embd = global("token_embd.weight", TensorKind::Embedding, d, vocab)?;
        let out_norm = global("output_norm.weight", TensorKind::F32, d, 1)?;
        let output = global("output.weight", TensorKind::Matmul, d, vocab)?;
        let mut layers = heapless::Vec::new();
        for l in 0..c.n_layers {
            let layer = Some(l);
            let mut row = [NONE; N_SLOTS];
            for s in ALL_SLOTS {
                let (suffix, kind, k, n) = slot_spec(c, s);
                let bias = matches!(s, Slot::QBias | Slot::KBias | Slot::VBias);
                if bias && !c.qkv_bias {
                    continue;
                }
                let mut nb = NameBuf::new();
                write!(nb, "blk.{l}.{suffix}")
                    .map_err(|_| ModelError::MissingTensor { layer, name: suffix })?;
                let i = find(tensors, nb.as_str())
                    .ok_or(ModelError::MissingTensor { layer, name: suffix })?;
                check_tensor(m, i, kind, k, n, layer, suffix)?;
                row[s as usize] = i;
            }
            layers
                .push(row)
                .map_err(|_| ModelError::BadConfig("more layers than model::MAX_LAYERS"))?;
        }
        Ok(Resolved { layers, embd, out_norm, output })
    }
}

/// One running context of a model: KV cache, position and token history in the caller's
/// arena, with the backend that runs its matmuls.
///
/// ```ignore
/// static mut ARENA: [u8; arena_bytes(&CONFIG, CONFIG.context_len)] = [0; _];
/// let mut s = Session::new(MODEL, CpuReference, unsafe { &mut *addr_of_mut!(ARENA) })?;
/// let logits = s.prefill(&prompt_ids)?;
/// ```
pub struct Session<'a, 's, B: Backend> {
    /// The model (config + weights).
    pub(crate) model: Model<'a>,
    /// Runs every matmul.
    pub(crate) backend: B,
    /// Descriptor indices resolved once.
    pub(crate) res: Resolved,
    /// Arena regions.
    pub(crate) bufs: Bufs<'s>,
    /// Positions filled in the KV cache (= tokens evaluated so far).
    pub(crate) pos: usize,
}

/// Carves `n` elements off the front of a slice.
pub(crate) fn take<'s, T>(rest: &mut &'s mut [T], n: usize) -> Result<&'s mut [T], ModelError> {
    let whole = core::mem::take(rest);
    if whole.len() < n {
        return Err(ModelError::ArenaTooSmall { need: n, got: whole.len() });
    }
    let (a, b) = whole.split_at_mut(n);
    *rest = b;
    Ok(a)
}

impl<'a, 's, B: Backend> Session<'a, 's, B> {
    /// Creates a session: checks the config, resolves and checks every tensor the
    /// architecture needs (kind, shape, descriptor against the blob), checks the backend's
    /// scratch needs, and carves the arena (at least [`super::arena_bytes`] bytes, any
    /// alignment).
    pub fn new(model: Model<'a>, backend: B, arena: &'s mut [u8]) -> Result<Self, ModelError> {
        let c = model.config;
        if let Some(why) = c.invalid() {
            return Err(ModelError::BadConfig(why));
        }
        let res = Resolved::new(&model)?;
        let plan = ArenaPlan::new(&c, c.context_len);
        let need = plan.bytes();
        if arena.len() < need {
            return Err(ModelError::ArenaTooSmall { need, got: arena.len() });
        }
        for l in 0..c.n_layers as usize {
            for s in [Slot::Q, Slot::K, Slot::V, Slot::O, Slot::Gate, Slot::Up, Slot::Down] {
                forward::check_scratch(&model, &backend, res.layers[l][s as usize], plan.scratch)?;
            }
        }
        forward::check_scratch(&model, &backend, res.output, plan.scratch)?;
        let bufs = Bufs::carve(&c, &plan, arena)?;
        Ok(Session { model, backend, res, bufs, pos: 0 })
    }

    /// The model's config.
    pub fn config(&self) -> &ModelConfig {
        &self.model.config
    }

    /// Tokens evaluated so far (= the next token's position).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The tokens evaluated so far, in order.
    pub fn history(&self) -> &[u32] {
        self.bufs.tokens.get(..self.pos).unwrap_or(&[])
    }

    /// Forgets the conversation (the cache is overwritten as positions are reused).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Rewinds to position `pos` (≤ the current one), keeping the cache before it: lets a
    /// caller reuse a shared prompt prefix.
    pub fn truncate(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    /// The backend.
    pub fn backend(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Evaluates `tokens` at the next positions (prefill in chunks of up to
    /// [`MAX_BATCH`] rows per matmul) and returns the logits `[vocab]` after the last one.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<&mut [f32], ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        self.check_tokens(tokens)?;
        let mut rest = tokens;
        while !rest.is_empty() {
            let n = rest.len().min(MAX_BATCH);
            let (chunk, tail) = rest.split_at(n);
            forward::chunk(self, chunk)?;
            if tail.is_empty() {
                forward::head(self, n - 1)?;
            }
            rest = tail;
        }
        Ok(self.bufs.logits_mut())
    }

    /// Evaluates one token; returns the logits for the next position.
    pub fn step(&mut self, token: u32) -> Result<&mut [f32], ModelError> {
        self.prefill(&[token])
    }

    /// Evaluates `tokens` and hands the logits after **every** token to `each(i, logits)`
    /// (for perplexity / KL measurements). Same numbers as [`Session::prefill`] for the last.
    pub fn eval_all(
        &mut self,
        tokens: &[u32],
        mut each: impl FnMut(usize, &[f32]),
    ) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        self.check_tokens(tokens)?;
        for (ci, chunk) in tokens.chunks(MAX_BATCH).enumerate() {
            forward::chunk(self, chunk)?;
            for r in 0..chunk.len() {
                forward::head(self, r)?;
                each(ci * MAX_BATCH + r, self.bufs.logits_mut());
            }
        }
        Ok(())
    }

    /// [`Session::eval_all`] with the output head run once per chunk of up to [`MAX_BATCH`]
    /// rows instead of once per token (far fewer passes over the output matrix, the largest
    /// one), into `rows`, a caller buffer of at least `MAX_BATCH · vocab` values. The same
    /// numbers as [`Session::eval_all`], bit for bit.
    pub fn eval_all_batched(
        &mut self,
        tokens: &[u32],
        rows: &mut [f32],
        mut each: impl FnMut(usize, &[f32]),
    ) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        let v = self.model.config.vocab as usize;
        if rows.len() < MAX_BATCH * v {
            return Err(ModelError::Runtime(Error::Length {
                what: "logits rows",
                need: MAX_BATCH * v,
                got: rows.len(),
            }));
        }
        self.check_tokens(tokens)?;
        for (ci, chunk) in tokens.chunks(MAX_BATCH).enumerate() {
            forward::chunk(self, chunk)?;
            forward::head_rows(self, chunk.len(), rows)?;
            for (r, l) in rows.chunks_exact(v).take(chunk.len()).enumerate() {
                each(ci * MAX_BATCH + r, l);
            }
        }
        // The last row's logits are also the session's current logits, as after `prefill`.
        let last = (tokens.len() - 1) % MAX_BATCH;
        if let Some(src) = rows.get(last * v..(last + 1) * v) {
            self.bufs.logits_mut().copy_from_slice(src);
        }
        Ok(())
    }

    /// The logits of the last evaluation, and the candidate scratch the sampler sorts in.
    pub fn logits_and_scratch(&mut self) -> (&mut [f32], &mut [u32]) {
        self.bufs.logits_and_cand()
    }

    /// Samples the next token from the last logits with `sampler` (penalties see the token
    /// history). The logits are modified in place (penalties, temperature).
    pub fn sample(&mut self, sampler: &mut crate::sampler::Sampler) -> Result<u32, ModelError> {
        let (logits, cand, hist) = self.bufs.sample_parts(self.pos);
        sampler.sample(logits, cand, hist).map_err(ModelError::Sampling)
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<(), ModelError> {
        let c = &self.model.config;
        if self.pos.saturating_add(tokens.len()) > c.context_len as usize {
            return Err(ModelError::ContextFull { context_len: c.context_len });
        }
        match tokens.iter().find(|&&t| t >= c.vocab) {
            Some(&id) => Err(ModelError::BadToken { id, vocab: c.vocab }),
            None => Ok(()),
        }
    }
}
