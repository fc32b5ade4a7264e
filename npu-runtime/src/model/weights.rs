//! The packed weights: a [`Model`] (config, blob and descriptor table, tokenizer tables), its
//! tensors resolved once per block into [`Resolved`] (names → descriptor indices, each checked
//! for kind and shape), and the accessors the forward pass reads them through (a matmul via
//! the [`Backend`], a 1-D f32 vector).

use super::config::{ModelConfig, MAX_LAYERS};
use super::error::ModelError;
use crate::backend::{Backend, PackedWeight};
use crate::error::Error;
use crate::format::{PackedModel, TensorDesc, TensorKind};
use crate::tokenizer::{Tokenizer, TokenizerError, TokenizerTables};
use core::fmt::Write as _;

/// A model ready to run: its config, its packed weights (blob + descriptor table) and its
/// tokenizer tables, as generated statics or as built by the CLI from a blob it packed a
/// moment ago.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    /// Hyperparameters and sizing.
    pub config: ModelConfig,
    /// Blob and descriptor table; tensors named as in GGUF (`blk.{i}.attn_q.weight`, …,
    /// `output.weight` always present).
    pub weights: PackedModel<'a>,
    /// The vocabulary's tokenizer tables (text ↔ ids).
    pub tokenizer: &'a TokenizerTables<'a>,
}

impl<'a> Model<'a> {
    /// A [`Tokenizer`] over [`Model::tokenizer`], after checking the tables (cheap enough to
    /// call once per prompt; the check is linear in the vocabulary). Fails when the tables are
    /// inconsistent or their size disagrees with the config's vocabulary.
    pub fn tokenizer(&self) -> Result<Tokenizer<'a>, TokenizerError> {
        let t = Tokenizer::new(*self.tokenizer)?;
        if t.tables().n_tokens() > self.config.vocab as usize {
            return Err(TokenizerError::BadTables("more tokens than the model's vocabulary"));
        }
        Ok(t)
    }
}

/// Per-block tensors: those every architecture reads, in the order of a block's computation,
/// then the optional ones. `NONE` marks an optional tensor the architecture does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(super) enum Slot {
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
    QNorm,
    KNorm,
    PostAttnNorm,
    PostFfnNorm,
}

/// Number of [`Slot`]s.
pub(super) const N_SLOTS: usize = 16;

/// Index into the descriptor table, or [`NONE`].
pub(super) type TIdx = u16;
/// An absent tensor.
pub(super) const NONE: TIdx = u16::MAX;

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
        Slot::QNorm => ("attn_q_norm.weight", TensorKind::F32, c.head_dim as usize, 1),
        Slot::KNorm => ("attn_k_norm.weight", TensorKind::F32, c.head_dim as usize, 1),
        Slot::PostAttnNorm => ("post_attention_norm.weight", TensorKind::F32, d, 1),
        Slot::PostFfnNorm => ("post_ffw_norm.weight", TensorKind::F32, d, 1),
    }
}

/// Whether a model of config `c` has the tensor of slot `s` in every block.
fn slot_present(c: &ModelConfig, s: Slot) -> bool {
    let spec = c.arch.spec();
    match s {
        Slot::QBias | Slot::KBias | Slot::VBias => c.qkv_bias,
        Slot::QNorm | Slot::KNorm => spec.qk_norm,
        Slot::PostAttnNorm | Slot::PostFfnNorm => spec.post_norms,
        _ => true,
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
    Slot::QNorm,
    Slot::KNorm,
    Slot::PostAttnNorm,
    Slot::PostFfnNorm,
];

/// A tensor name built on the stack (`blk.{i}.{suffix}`), so resolving names needs no
/// allocator; the longest is `blk.127.post_attention_norm.weight` (35 bytes).
type NameBuf = heapless::String<48>;

/// Resolved descriptor indices of the whole model: per block `[slot]`, plus the globals.
pub(super) struct Resolved {
    /// `[n_layers][N_SLOTS]` indices into the descriptor table.
    pub(super) layers: heapless::Vec<[TIdx; N_SLOTS], MAX_LAYERS>,
    /// `token_embd.weight`.
    pub(super) embd: TIdx,
    /// `output_norm.weight`.
    pub(super) out_norm: TIdx,
    /// `output.weight`.
    pub(super) output: TIdx,
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
    /// Finds and checks every tensor the architecture needs.
    pub(super) fn new(m: &Model<'_>) -> Result<Resolved, ModelError> {
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
                if !slot_present(c, s) {
                    continue;
                }
                let (suffix, kind, k, n) = slot_spec(c, s);
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

/// The descriptor at index `idx` of the table.
pub(super) fn desc<'a>(m: &Model<'a>, idx: TIdx) -> Result<&'a TensorDesc<'a>, ModelError> {
    m.weights
        .tensors
        .get(idx as usize)
        .ok_or(ModelError::Runtime(Error::BadDescriptor("tensor index")))
}

/// Fails when the backend needs more scratch for tensor `idx` than the arena plan holds.
pub(super) fn check_scratch<B: Backend>(
    m: &Model<'_>,
    b: &B,
    idx: TIdx,
    have: usize,
) -> Result<(), ModelError> {
    let w = PackedWeight::new(desc(m, idx)?, m.weights.blob)?;
    let need = b.scratch_len(&w);
    if need > have {
        return Err(ModelError::Runtime(Error::Length { what: "matmul scratch", need, got: have }));
    }
    Ok(())
}

/// `y[rows][N] = x[rows][K] · Wᵀ` through the backend.
pub(super) fn mm<B: Backend>(
    b: &mut B,
    m: &Model<'_>,
    idx: TIdx,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), ModelError> {
    let d = desc(m, idx)?;
    let (k, n) = (d.geom.k as usize, d.geom.n as usize);
    let bad = |what| ModelError::Runtime(Error::Length { what, need: rows * k, got: x.len() });
    let x = x.get(..rows * k).ok_or(bad("matmul input"))?;
    let y = y.get_mut(..rows * n).ok_or(ModelError::Runtime(Error::Length {
        what: "matmul output",
        need: rows * n,
        got: 0,
    }))?;
    let w = PackedWeight::new(d, m.weights.blob)?;
    b.matmul(&w, x, rows, y, scratch)?;
    Ok(())
}

/// The f32 values of a 1-D tensor, as little-endian bytes (4 per value).
pub(super) fn vec_bytes<'a>(m: &Model<'a>, idx: TIdx) -> Result<&'a [u8], ModelError> {
    let d = desc(m, idx)?;
    let sh = d.shards.first().ok_or(ModelError::Runtime(Error::BadDescriptor("no shard")))?;
    Ok(d.shard_bytes(m.weights.blob, sh)?)
}

/// Little-endian bytes as f32 values.
pub(super) fn f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
