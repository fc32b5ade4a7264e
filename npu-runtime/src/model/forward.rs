//! The transformer forward pass (llama and qwen2 blocks) over the arena buffers.
//!
//! Per block, for the `n ≤ MAX_BATCH` rows of a chunk at positions `pos..pos+n`:
//! `xb = rmsnorm(x)·γ`; `q, k, v = xb·Wqᵀ, xb·Wkᵀ, xb·Wvᵀ` (+ biases); rope on q and k; k, v
//! appended to the f16 cache; causal GQA attention per (row, head) → `xb`;
//! `x += xb·Woᵀ`; `xb = rmsnorm(x)·γ'`; `x += (silu(xb·Wgᵀ) ⊙ xb·Wuᵀ)·Wdᵀ`.
//! Every matmul goes through [`Backend::matmul`] with `m = n`, so the pipeline the packer
//! chose at build time is what runs.
//!
//! Numerics follow ggml's CPU ops where the choice is free, so differences from llama.cpp
//! come only from the matmul pipelines: RMSNorm sums squares in f64 in ascending order and
//! scales `(x·s)·γ`; the rope angle is `pos·θ^(−2i/rope_dim)` built by repeated f32
//! multiplication as ggml's rope cache does; softmax subtracts the max, sums in f64; SiLU is
//! `x / (1 + e^(−x))`. Transcendentals come from the `libm` crate (pure Rust, the same bits
//! on every host and device).
//!
//! **KV cache in f16** (`[n_layers][context][kv_dim]` of f16 bits, K and V): llama.cpp's
//! default cache type is f16 too, so rounding K and V there reproduces its numbers more
//! closely than f32 would, at half the memory (the cache is most of the arena).

use super::config::{ArenaPlan, Model, ModelConfig, RopeStyle, MAX_BATCH};
use super::session::{take, Session, Slot, TIdx, NONE};
use super::ModelError;
use crate::backend::{Backend, PackedWeight};
use crate::error::Error;
use crate::exec;
use half::f16;

/// The arena, carved. Shapes in the comments; `B` = [`MAX_BATCH`].
pub(crate) struct Bufs<'s> {
    /// Key cache `[n_layers][context][kv_dim]`, f16 bits.
    kc: &'s mut [u16],
    /// Value cache `[n_layers][context][kv_dim]`, f16 bits.
    vc: &'s mut [u16],
    /// Residual stream `[B][d]`.
    x: &'s mut [f32],
    /// Projection output `[B][d]` (attention output and FFN down, before the residual add).
    y: &'s mut [f32],
    /// Normed input / attention output `[B][max(d, q_dim)]`.
    xb: &'s mut [f32],
    /// Queries `[B][q_dim]`.
    q: &'s mut [f32],
    /// New keys `[B][kv_dim]`.
    k: &'s mut [f32],
    /// New values `[B][kv_dim]`.
    v: &'s mut [f32],
    /// FFN gate `[B][ff]`.
    hb: &'s mut [f32],
    /// FFN up `[B][ff]`.
    hb2: &'s mut [f32],
    /// Rope `(cos, sin)` pairs `[B][rope_dim/2][2]`.
    rope: &'s mut [f32],
    /// Attention weights of the query heads sharing one KV head, for one row `[group][context]`.
    att: &'s mut [f32],
    /// One K or V cache row of one KV head, as f32 `[head_dim]`.
    kv_row: &'s mut [f32],
    /// Logits `[vocab]`.
    logits: &'s mut [f32],
    /// Matmul scratch `[round_up(max K, 64)]`.
    scratch: &'s mut [f32],
    /// Token history `[context]`.
    pub(crate) tokens: &'s mut [u32],
    /// Sampler candidates `[vocab]`.
    cand: &'s mut [u32],
}

fn reinterpret_err() -> ModelError {
    ModelError::Runtime(Error::BadDescriptor("arena carving"))
}

impl<'s> Bufs<'s> {
    /// Carves the arena per `plan` (sizes were checked by the caller; checked again here).
    pub(crate) fn carve(
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

    pub(crate) fn logits_mut(&mut self) -> &mut [f32] {
        self.logits
    }

    /// Logits, candidate scratch and the first `pos` tokens of history.
    pub(crate) fn sample_parts(&mut self, pos: usize) -> (&mut [f32], &mut [u32], &[u32]) {
        let hist = self.tokens.get(..pos).unwrap_or(&[]);
        (self.logits, self.cand, hist)
    }

    pub(crate) fn logits_and_cand(&mut self) -> (&mut [f32], &mut [u32]) {
        (self.logits, self.cand)
    }
}

fn desc<'a>(m: &Model<'a>, idx: TIdx) -> Result<&'a crate::format::TensorDesc<'a>, ModelError> {
    m.weights
        .tensors
        .get(idx as usize)
        .ok_or(ModelError::Runtime(Error::BadDescriptor("tensor index")))
}

/// Fails when the backend needs more scratch for tensor `idx` than the arena plan holds.
pub(crate) fn check_scratch<B: Backend>(
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
fn mm<B: Backend>(
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
fn vec_bytes<'a>(m: &Model<'a>, idx: TIdx) -> Result<&'a [u8], ModelError> {
    let d = desc(m, idx)?;
    let sh = d.shards.first().ok_or(ModelError::Runtime(Error::BadDescriptor("no shard")))?;
    Ok(d.shard_bytes(m.weights.blob, sh)?)
}

fn f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `out = (x · 1/√(mean(x²) + ε)) · γ`, sum of squares in f64, ascending (as ggml).
fn rmsnorm(out: &mut [f32], x: &[f32], gamma: &[u8], eps: f32) {
    let mut ss = 0f64;
    for &v in x {
        ss += (v * v) as f64;
    }
    let mean = (ss / x.len().max(1) as f64) as f32;
    let scale = 1.0 / libm::sqrtf(mean + eps);
    for ((o, &v), g) in out.iter_mut().zip(x).zip(f32s(gamma)) {
        *o = (v * scale) * g;
    }
}

/// Fills `cs` (`[rope_dim/2][2]`) with `(cos, sin)` of `pos · θ^(−2i/rope_dim)`, the angle
/// advanced by repeated f32 multiplication exactly as ggml's rope cache builds it.
fn rope_table(cs: &mut [f32], pos: usize, base: f32, rope_dim: usize) {
    let theta_scale = libm::powf(base, -2.0 / rope_dim as f32);
    let mut theta = pos as f32;
    for pair in cs.chunks_exact_mut(2) {
        pair[0] = libm::cosf(theta);
        pair[1] = libm::sinf(theta);
        theta *= theta_scale;
    }
}

/// Rotates one head vector in place with the table from [`rope_table`].
fn rope_apply(h: &mut [f32], cs: &[f32], style: RopeStyle) {
    let half = cs.len() / 2;
    match style {
        RopeStyle::Normal => {
            for (p, c) in h.chunks_exact_mut(2).zip(cs.chunks_exact(2)) {
                let (x0, x1) = (p[0], p[1]);
                p[0] = x0 * c[0] - x1 * c[1];
                p[1] = x0 * c[1] + x1 * c[0];
            }
        }
        RopeStyle::Neox => {
            if h.len() < 2 * half {
                return;
            }
            let (a, b) = h.split_at_mut(half);
            for ((x0, x1), c) in a.iter_mut().zip(b.iter_mut()).zip(cs.chunks_exact(2)) {
                let (v0, v1) = (*x0, *x1);
                *x0 = v0 * c[0] - v1 * c[1];
                *x1 = v0 * c[1] + v1 * c[0];
            }
        }
    }
}

/// IEEE binary16 bits → f32, exactly as `half` converts (every f16 is exact in f32; NaNs get
/// the quiet bit), without branches on the common path so the attention loops vectorize:
/// finite values are the bits shifted into place and scaled by 2^112 (exact, subnormals
/// included).
#[inline(always)]
fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    let finite = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000);
    let bits = if em < 0x7c00 {
        finite.to_bits()
    } else if em == 0x7c00 {
        0x7f80_0000
    } else {
        0x7fc0_0000 | (em & 0x3ff) << 13
    };
    f32::from_bits(bits | sign)
}

/// Lanes of [`dot`]'s partial sums: 8 f32 (two SSE or NEON registers, one AVX register).
const DOT_LANES: usize = 8;

/// `Σ q_d · k_d` in a fixed order that vectorizes on every target: lane `d % 8` sums its
/// terms in ascending d, the lanes fold in halves (`l_j + l_{j+4}`, then `+ l_{j+2}`,
/// `+ l_{j+1}`), and a head size that is not a multiple of 8 adds its last terms one by one.
/// The same bits on every machine and kernel set; only the order differs from a plain
/// ascending sum (llama.cpp's own attention uses yet another).
#[inline(always)]
fn dot(q: &[f32], k: &[f32]) -> f32 {
    let mut l = [0f32; DOT_LANES];
    let (qc, kc) = (q.chunks_exact(DOT_LANES), k.chunks_exact(DOT_LANES));
    let tail: f32 = qc.remainder().iter().zip(kc.remainder()).fold(0.0, |s, (&q, &k)| s + q * k);
    for (qc, kc) in qc.zip(kc) {
        for i in 0..DOT_LANES {
            l[i] += qc[i] * kc[i];
        }
    }
    let mut h = DOT_LANES / 2;
    while h > 0 {
        for j in 0..h {
            l[j] += l[j + h];
        }
        h /= 2;
    }
    l[0] + tail
}

fn silu(v: f32) -> f32 {
    v / (1.0 + libm::expf(-v))
}

/// Runs every block over `tokens` (≤ [`MAX_BATCH`], already checked against the vocabulary
/// and the context) at positions `pos..pos+n`, leaving the final residual rows in `x`.
pub(crate) fn chunk<B: Backend>(
    s: &mut Session<'_, '_, B>,
    tokens: &[u32],
) -> Result<(), ModelError> {
    let Session { model, backend, res, bufs, pos } = s;
    let c = model.config;
    let n = tokens.len();
    let (d, qd, kvd, ff, hd) =
        (c.d_model as usize, c.q_dim(), c.kv_dim(), c.ff as usize, c.head_dim as usize);
    let ctx = c.context_len as usize;
    let p0 = *pos;
    if n == 0 || n > MAX_BATCH {
        return Err(ModelError::NoTokens);
    }
    if p0 + n > ctx {
        return Err(ModelError::ContextFull { context_len: c.context_len });
    }
    let embd = desc(model, res.embd)?;
    for (&t, row) in tokens.iter().zip(bufs.x.chunks_exact_mut(d)) {
        exec::embed_row(embd, model.weights.blob, t, row)?;
    }
    if let Some(slot) = bufs.tokens.get_mut(p0..p0 + n) {
        slot.copy_from_slice(tokens);
    }
    let rd = c.rope_dim as usize;
    for (r, cs) in bufs.rope.chunks_exact_mut(rd.max(1)).take(n).enumerate() {
        rope_table(cs, p0 + r, c.rope_base, rd);
    }
    let group = (c.n_heads / c.n_kv_heads) as usize;
    let scale = 1.0 / libm::sqrtf(hd as f32);
    for l in 0..c.n_layers as usize {
        let ix = res
            .layers
            .get(l)
            .ok_or(ModelError::MissingTensor { layer: Some(l as u32), name: "block" })?;
        let at = |s: Slot| ix[s as usize];

        // Attention.
        let g = vec_bytes(model, at(Slot::AttnNorm))?;
        for (o, xr) in bufs.xb.chunks_exact_mut(d).zip(bufs.x.chunks_exact(d)).take(n) {
            rmsnorm(o, xr, g, c.rms_eps);
        }
        mm(backend, model, at(Slot::Q), bufs.xb, n, bufs.q, bufs.scratch)?;
        mm(backend, model, at(Slot::K), bufs.xb, n, bufs.k, bufs.scratch)?;
        mm(backend, model, at(Slot::V), bufs.xb, n, bufs.v, bufs.scratch)?;
        for (slot, buf, w) in [
            (Slot::QBias, &mut *bufs.q, qd),
            (Slot::KBias, &mut *bufs.k, kvd),
            (Slot::VBias, &mut *bufs.v, kvd),
        ] {
            if at(slot) == NONE {
                continue;
            }
            let bias = vec_bytes(model, at(slot))?;
            for row in buf.chunks_exact_mut(w).take(n) {
                row.iter_mut().zip(f32s(bias)).for_each(|(v, b)| *v += b);
            }
        }
        for r in 0..n {
            let cs = bufs.rope.get(r * rd..(r + 1) * rd).unwrap_or(&[]);
            for h in bufs.q[r * qd..(r + 1) * qd].chunks_exact_mut(hd) {
                rope_apply(&mut h[..rd], cs, c.rope_style);
            }
            for h in bufs.k[r * kvd..(r + 1) * kvd].chunks_exact_mut(hd) {
                rope_apply(&mut h[..rd], cs, c.rope_style);
            }
            let at_cache = (l * ctx + p0 + r) * kvd;
            let kc = bufs.kc.get_mut(at_cache..at_cache + kvd).ok_or(reinterpret_err())?;
            kc.iter_mut()
                .zip(&bufs.k[r * kvd..(r + 1) * kvd])
                .for_each(|(o, &v)| *o = f16::from_f32(v).to_bits());
            let vc = bufs.vc.get_mut(at_cache..at_cache + kvd).ok_or(reinterpret_err())?;
            vc.iter_mut()
                .zip(&bufs.v[r * kvd..(r + 1) * kvd])
                .for_each(|(o, &v)| *o = f16::from_f32(v).to_bits());
        }
        let layer_k = bufs.kc.get(l * ctx * kvd..(l + 1) * ctx * kvd).ok_or(reinterpret_err())?;
        let layer_v = bufs.vc.get(l * ctx * kvd..(l + 1) * ctx * kvd).ok_or(reinterpret_err())?;
        // The query heads of one KV head go together: each cache row is converted from f16
        // once and used by all of them (GQA: 3 heads per KV head in SmolLM2, 7 in Qwen2.5-0.5B).
        // Per head the operations and their order are those of one head at a time.
        for r in 0..n {
            let upto = p0 + r + 1; // causal: positions 0..=p0+r
            for kvh in 0..c.n_kv_heads as usize {
                let h0 = kvh * group;
                let row = &mut bufs.kv_row[..hd];
                fn cache_row(cache: &[u16], at: usize, hd: usize) -> &[u16] {
                    cache.get(at..at + hd).unwrap_or(&[])
                }
                for t in 0..upto {
                    row.iter_mut()
                        .zip(cache_row(layer_k, t * kvd + kvh * hd, hd))
                        .for_each(|(o, &b)| *o = f16_to_f32(b));
                    for j in 0..group {
                        let qh = &bufs.q[r * qd + (h0 + j) * hd..r * qd + (h0 + j + 1) * hd];
                        bufs.att[j * ctx + t] = dot(qh, row) * scale;
                    }
                }
                // Softmax per head; the weights replace the scores.
                for j in 0..group {
                    let att = &mut bufs.att[j * ctx..j * ctx + upto];
                    let mx = att.iter().fold(f32::NEG_INFINITY, |m, &a| m.max(a));
                    let mut sum = 0f64;
                    for a in att.iter_mut() {
                        *a = libm::expf(*a - mx);
                        sum += *a as f64;
                    }
                    let inv = (1.0 / sum) as f32;
                    att.iter_mut().for_each(|a| *a *= inv);
                }
                let outs = &mut bufs.xb[r * qd + h0 * hd..r * qd + (h0 + group) * hd];
                outs.fill(0.0);
                for t in 0..upto {
                    row.iter_mut()
                        .zip(cache_row(layer_v, t * kvd + kvh * hd, hd))
                        .for_each(|(o, &b)| *o = f16_to_f32(b));
                    for (j, out) in outs.chunks_exact_mut(hd).enumerate() {
                        let w = bufs.att[j * ctx + t];
                        out.iter_mut().zip(row.iter()).for_each(|(o, &v)| *o += w * v);
                    }
                }
            }
        }
        mm(backend, model, at(Slot::O), bufs.xb, n, bufs.y, bufs.scratch)?;
        bufs.x[..n * d].iter_mut().zip(&bufs.y[..n * d]).for_each(|(x, &y)| *x += y);

        // Feed-forward (SwiGLU).
        let g = vec_bytes(model, at(Slot::FfnNorm))?;
        for (o, xr) in bufs.xb.chunks_exact_mut(d).zip(bufs.x.chunks_exact(d)).take(n) {
            rmsnorm(o, xr, g, c.rms_eps);
        }
        mm(backend, model, at(Slot::Gate), bufs.xb, n, bufs.hb, bufs.scratch)?;
        mm(backend, model, at(Slot::Up), bufs.xb, n, bufs.hb2, bufs.scratch)?;
        bufs.hb[..n * ff].iter_mut().zip(&bufs.hb2[..n * ff]).for_each(|(g, &u)| *g = silu(*g) * u);
        mm(backend, model, at(Slot::Down), bufs.hb, n, bufs.y, bufs.scratch)?;
        bufs.x[..n * d].iter_mut().zip(&bufs.y[..n * d]).for_each(|(x, &y)| *x += y);
    }
    *pos = p0 + n;
    Ok(())
}

/// Final norm and output head for row `r` of the last chunk → `logits`.
pub(crate) fn head<B: Backend>(s: &mut Session<'_, '_, B>, r: usize) -> Result<(), ModelError> {
    let Session { model, backend, res, bufs, .. } = s;
    let d = model.config.d_model as usize;
    let xr = bufs.x.get(r * d..(r + 1) * d).ok_or(ModelError::NoTokens)?;
    let g = vec_bytes(model, res.out_norm)?;
    rmsnorm(&mut bufs.y[..d], xr, g, model.config.rms_eps);
    mm(backend, model, res.output, bufs.y, 1, bufs.logits, bufs.scratch)
}

/// Final norm and output head for rows `0..n` of the last chunk at once (one matmul with
/// `M = n`) → `out[..n·vocab]`. Each row's logits are the same as [`head`] gives for it: every
/// backend computes the rows of a matmul independently.
pub(crate) fn head_rows<B: Backend>(
    s: &mut Session<'_, '_, B>,
    n: usize,
    out: &mut [f32],
) -> Result<(), ModelError> {
    let Session { model, backend, res, bufs, .. } = s;
    let d = model.config.d_model as usize;
    let v = model.config.vocab as usize;
    if n == 0 || n > MAX_BATCH {
        return Err(ModelError::NoTokens);
    }
    let got = out.len();
    let out = out.get_mut(..n * v).ok_or(ModelError::Runtime(Error::Length {
        what: "logits rows",
        need: n * v,
        got,
    }))?;
    let g = vec_bytes(model, res.out_norm)?;
    for (o, xr) in bufs.y.chunks_exact_mut(d).zip(bufs.x.chunks_exact(d)).take(n) {
        rmsnorm(o, xr, g, model.config.rms_eps);
    }
    mm(backend, model, res.output, bufs.y, n, out, bufs.scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_rotates_pairs_and_halves() {
        // pos 1, rope_dim 4, base 100: angles 1 and 1·100^(-1/2) = 0.1.
        let mut cs = [0f32; 4];
        rope_table(&mut cs, 1, 100.0, 4);
        assert!((cs[0] - libm::cosf(1.0)).abs() < 1e-7 && (cs[3] - libm::sinf(0.1)).abs() < 1e-7);
        let mut h = [1.0, 0.0, 1.0, 0.0];
        rope_apply(&mut h, &cs, RopeStyle::Normal);
        assert!((h[0] - libm::cosf(1.0)).abs() < 1e-7 && (h[1] - libm::sinf(1.0)).abs() < 1e-7);
        assert!((h[2] - libm::cosf(0.1)).abs() < 1e-7 && (h[3] - libm::sinf(0.1)).abs() < 1e-7);
        // NEOX pairs (0, 2) and (1, 3).
        let mut h = [1.0, 1.0, 0.0, 0.0];
        rope_apply(&mut h, &cs, RopeStyle::Neox);
        assert!((h[0] - libm::cosf(1.0)).abs() < 1e-7 && (h[2] - libm::sinf(1.0)).abs() < 1e-7);
        assert!((h[1] - libm::cosf(0.1)).abs() < 1e-7 && (h[3] - libm::sinf(0.1)).abs() < 1e-7);
    }

    #[test]
    fn f16_conversion_is_halfs_for_every_value() {
        for h in 0..=u16::MAX {
            assert_eq!(f16_to_f32(h).to_bits(), f16::from_bits(h).to_f32().to_bits(), "{h:#x}");
        }
    }

    #[test]
    fn rmsnorm_by_hand() {
        // x = (3, 4): mean square 12.5, scale 1/√12.5; γ = (1, 2).
        let g: [u8; 8] = [1f32.to_le_bytes(), 2f32.to_le_bytes()].concat().try_into().unwrap();
        let mut o = [0f32; 2];
        rmsnorm(&mut o, &[3.0, 4.0], &g, 0.0);
        let s = 1.0 / 12.5f32.sqrt();
        assert_eq!(o, [3.0 * s, (4.0 * s) * 2.0]);
    }
}
