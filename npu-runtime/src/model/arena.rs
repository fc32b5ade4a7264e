//! The session's memory: one caller-provided `&mut [u8]`, planned ([`ArenaPlan`],
//! [`arena_bytes`]) and carved into the KV cache, the activation buffers and the token
//! history ([`Bufs`]). No allocator: every buffer of a session comes from here.

use super::config::{max, ModelConfig, MAX_BATCH};
use super::error::ModelError;
use crate::error::Error;

/// Padding granularity of the matmul scratch row: every target's K alignment divides it
/// (`target.rs`: 16 or 32), so `round_up(K, 64) ≥ k_pad` for every packed tensor.
pub const SCRATCH_K_ALIGN: usize = 64;

/// Bytes of slack so the f32/u32 regions can start on a 4-byte boundary of any arena.
pub const ARENA_ALIGN_SLACK: usize = 3;

/// Element counts of every arena region, in carving order. One definition, used by
/// [`arena_bytes`] and by the session when it carves the arena, so they cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaPlan {
    /// f16 elements of the key cache (same for values): per layer
    /// `[ModelConfig::cache_rows][kv_dim]`, layers one after the other (all `context` rows,
    /// or a ring of `swa_window + MAX_BATCH − 1` for a local layer when that is smaller).
    pub kv_elems: usize,
    /// f32 elements of all activation buffers together.
    pub f32_elems: usize,
    /// u32 elements: token history `[context]` + sampler candidates `[vocab]`.
    pub u32_elems: usize,
    /// f32 matmul scratch: `(MAX_BATCH + 1) · round_up(max K, 64)`, enough for the reference
    /// executor (one padded row) and for [`crate::cpu::CpuFast`] to prepare a whole batch of
    /// rows at once (int: a work row plus codes, scales and sums per row, under 6 rows' worth;
    /// fp16: one f32 row per row), so prefill reads each weight once per batch.
    pub scratch: usize,
}

impl ArenaPlan {
    /// The plan for `config` with a KV cache of `context_len` positions.
    pub const fn new(c: &ModelConfig, context_len: u32) -> ArenaPlan {
        let b = MAX_BATCH;
        let d = c.d_model as usize;
        let q = c.q_dim();
        let kv = c.kv_dim();
        let ff = c.ff as usize;
        let ctx = context_len as usize;
        let max_k = max(max(d, q), ff);
        let scratch = (b + 1) * (max_k.div_ceil(SCRATCH_K_ALIGN) * SCRATCH_K_ALIGN);
        // x, y: [b][d]; xb: [b][max(d, q)]; q: [b][q]; k, v: [b][kv]; hb, hb2: [b][ff];
        // rope: [b][rope_dim] (cos, sin pairs); att: [group][ctx] (the query heads of one KV
        // head); kv_row: [head_dim]; logits: [vocab]; scratch.
        let f32_elems = b * d * 2
            + b * max(d, q)
            + b * q
            + b * kv * 2
            + b * ff * 2
            + b * c.rope_dim as usize
            + c.gqa_group() * ctx
            + c.head_dim as usize
            + c.vocab as usize
            + scratch;
        ArenaPlan {
            kv_elems: c.cache_offset(c.n_layers as usize, context_len) * kv,
            f32_elems,
            u32_elems: ctx + c.vocab as usize,
            scratch,
        }
    }
    /// Bytes of the two f16 caches, rounded up to 4 so the next region stays aligned.
    pub const fn kv_bytes(&self) -> usize {
        (2 * self.kv_elems * 2).div_ceil(4) * 4
    }
    /// Total bytes, alignment slack included.
    pub const fn bytes(&self) -> usize {
        ARENA_ALIGN_SLACK + self.kv_bytes() + 4 * self.f32_elems + 4 * self.u32_elems
    }
}

/// Exact bytes of the arena a session over `config` needs for a KV cache of `context_len`
/// positions: f16 K and V caches (`2 · n_layers · context_len · kv_dim · 2` bytes; a local
/// layer of a sliding-window model keeps `swa_window + MAX_BATCH − 1` positions instead when
/// fewer),
/// activations for [`MAX_BATCH`] rows, one row of logits, the attention scores of the query
/// heads that share one KV head and one cache row in f32, the matmul scratch row, the token
/// history and the sampler's candidate list, plus 3 bytes of alignment slack (any `&mut [u8]` works, no alignment required of the caller).
///
/// SmolLM2-135M at 2048 positions: 30·2048·192·2·2 B = 47 MB of KV cache + ~0.9 MB.
///
/// The KV cache fills position by position: on a hosted OS, a zeroed allocation
/// (`vec![0u8; n]`, which the OS backs lazily) costs only the pages a run uses, where filling
/// a buffer first touches all of them at startup (~6,000 page faults, 20 ms, for SmolLM2 at
/// 1024 positions on the development machine).
pub const fn arena_bytes(config: &ModelConfig, context_len: u32) -> usize {
    ArenaPlan::new(config, context_len).bytes()
}

impl ModelConfig {
    /// [`arena_bytes`] for this config's own context length.
    pub const fn arena_bytes(&self) -> usize {
        arena_bytes(self, self.context_len)
    }
}

/// The arena, carved. Shapes in the comments; `B` = [`MAX_BATCH`].
pub(crate) struct Bufs<'s> {
    /// Key cache, f16 bits: per layer `[cache_rows][kv_dim]` from `cache_offset · kv_dim`.
    pub(super) kc: &'s mut [u16],
    /// Value cache, laid out as the key cache.
    pub(super) vc: &'s mut [u16],
    /// Residual stream `[B][d]`.
    pub(super) x: &'s mut [f32],
    /// Projection output `[B][d]` (attention output and FFN down, before the residual add).
    pub(super) y: &'s mut [f32],
    /// Normed input / attention output `[B][max(d, q_dim)]`.
    pub(super) xb: &'s mut [f32],
    /// Queries `[B][q_dim]`.
    pub(super) q: &'s mut [f32],
    /// New keys `[B][kv_dim]`.
    pub(super) k: &'s mut [f32],
    /// New values `[B][kv_dim]`.
    pub(super) v: &'s mut [f32],
    /// FFN gate `[B][ff]`.
    pub(super) hb: &'s mut [f32],
    /// FFN up `[B][ff]`.
    pub(super) hb2: &'s mut [f32],
    /// Rope `(cos, sin)` pairs `[B][rope_dim/2][2]`.
    pub(super) rope: &'s mut [f32],
    /// Attention weights of the query heads sharing one KV head, for one row `[group][context]`.
    pub(super) att: &'s mut [f32],
    /// One K or V cache row of one KV head, as f32 `[head_dim]`.
    pub(super) kv_row: &'s mut [f32],
    /// Logits `[vocab]`.
    pub(super) logits: &'s mut [f32],
    /// Matmul scratch `[round_up(max K, 64)]`.
    pub(super) scratch: &'s mut [f32],
    /// Token history `[context]`.
    pub(super) tokens: &'s mut [u32],
    /// Sampler candidates `[vocab]`.
    pub(super) cand: &'s mut [u32],
}

pub(super) fn reinterpret_err() -> ModelError {
    ModelError::Runtime(Error::BadDescriptor("arena carving"))
}

impl<'s> Bufs<'s> {
    /// Carves the arena per `plan` (sizes were checked by the caller; checked again here).
    pub(super) fn carve(
        c: &ModelConfig,
        plan: &ArenaPlan,
        arena: &'s mut [u8],
    ) -> Result<Bufs<'s>, ModelError> {
        let got = arena.len();
        let too_small = ModelError::ArenaTooSmall { need: plan.bytes(), got };
        let off = arena.as_ptr().align_offset(4);
        let mut rest = arena.get_mut(off..).ok_or(too_small)?;
        let kvb = take(&mut rest, plan.kv_bytes()).map_err(|_| too_small)?;
        let fb = take(&mut rest, 4 * plan.f32_elems).map_err(|_| too_small)?;
        let ub = take(&mut rest, 4 * plan.u32_elems).map_err(|_| too_small)?;
        // SAFETY: u16, f32 and u32 are plain data for which every bit pattern is a valid
        // value, and `align_to_mut` only hands out the correctly aligned middle part. Each
        // region starts 4-aligned and is a multiple of 4 bytes long, so the middle part is
        // the whole region (checked below rather than assumed).
        let (p0, kv, s0) = unsafe { kvb.align_to_mut::<u16>() };
        let (p1, mut f, s1) = unsafe { fb.align_to_mut::<f32>() };
        let (p2, mut u, s2) = unsafe { ub.align_to_mut::<u32>() };
        if !(p0.is_empty()
            && s0.is_empty()
            && p1.is_empty()
            && s1.is_empty()
            && p2.is_empty()
            && s2.is_empty())
        {
            return Err(reinterpret_err());
        }
        let (kc, vc) = kv.split_at_mut(plan.kv_elems.min(kv.len()));
        let b = MAX_BATCH;
        let (d, q, kvd, ff) = (c.d_model as usize, c.q_dim(), c.kv_dim(), c.ff as usize);
        let ctx = c.context_len as usize;
        Ok(Bufs {
            kc,
            vc: vc.get_mut(..plan.kv_elems).ok_or(too_small)?,
            x: take(&mut f, b * d)?,
            y: take(&mut f, b * d)?,
            xb: take(&mut f, b * d.max(q))?,
            q: take(&mut f, b * q)?,
            k: take(&mut f, b * kvd)?,
            v: take(&mut f, b * kvd)?,
            hb: take(&mut f, b * ff)?,
            hb2: take(&mut f, b * ff)?,
            rope: take(&mut f, b * c.rope_dim as usize)?,
            att: take(&mut f, c.gqa_group() * ctx)?,
            kv_row: take(&mut f, c.head_dim as usize)?,
            logits: take(&mut f, c.vocab as usize)?,
            scratch: take(&mut f, plan.scratch)?,
            tokens: take(&mut u, ctx)?,
            cand: take(&mut u, c.vocab as usize)?,
        })
    }

    pub(super) fn logits_mut(&mut self) -> &mut [f32] {
        self.logits
    }

    /// Logits, candidate scratch and the first `pos` tokens of history.
    pub(super) fn sample_parts(&mut self, pos: usize) -> (&mut [f32], &mut [u32], &[u32]) {
        let hist = self.tokens.get(..pos).unwrap_or(&[]);
        (self.logits, self.cand, hist)
    }

    pub(super) fn logits_and_cand(&mut self) -> (&mut [f32], &mut [u32]) {
        (self.logits, self.cand)
    }
}

/// Carves `n` elements off the front of a slice.
fn take<'s, T>(rest: &mut &'s mut [T], n: usize) -> Result<&'s mut [T], ModelError> {
    let whole = core::mem::take(rest);
    if whole.len() < n {
        return Err(ModelError::ArenaTooSmall { need: n, got: whole.len() });
    }
    let (a, b) = whole.split_at_mut(n);
    *rest = b;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Arch;

    #[test]
    fn arena_size_by_hand() {
        // SmolLM2-135M: 30 layers, d 576, 9/3 heads of 64, ff 1536, vocab 49152.
        const C: ModelConfig =
            ModelConfig::new(Arch::Llama, 30, 576, 9, 3, 64, 1536, 49152, 1e5, 1e-5, true, 2048, 2);
        const N: usize = arena_bytes(&C, 2048);
        let kv = 2 * 30 * 2048 * 192 * 2;
        // ... att: 3 query heads per KV head × 2048, kv_row: 64.
        let f = 16 * 576 * 2
            + 16 * 576
            + 16 * 576
            + 16 * 192 * 2
            + 16 * 1536 * 2
            + 16 * 64
            + 3 * 2048
            + 64
            + 49152
            + 17 * 1536;
        assert_eq!(N, 3 + kv + 4 * f + 4 * (2048 + 49152));
        assert_eq!(C.invalid(), None);
        let mut bad = C;
        bad.n_kv_heads = 4;
        assert!(bad.invalid().is_some());
    }

    #[test]
    fn sliding_window_layers_keep_a_ring() {
        // Gemma 3 270M at 4096 positions: 15 local layers of 512 + 15 rows, 3 global of 4096;
        // one KV head of 256.
        let mut c = crate::model::config::gemma3_270m();
        let full = ArenaPlan::new(&c, 4096);
        assert_eq!(full.kv_elems, 18 * 4096 * 256);
        c.swa_window = 512;
        c.swa_layers = crate::model::config::swa_pattern(6, 18);
        let plan = ArenaPlan::new(&c, 4096);
        assert_eq!(plan.kv_elems, (15 * (512 + MAX_BATCH - 1) + 3 * 4096) * 256);
        assert_eq!(full.bytes() - plan.bytes(), 4 * (full.kv_elems - plan.kv_elems));
        // At a context no longer than the ring every layer keeps all positions.
        assert_eq!(ArenaPlan::new(&c, 512).kv_elems, 18 * 512 * 256);
    }
}
