//! The transformer forward pass (the llama, qwen2, gemma2 and gemma3 blocks) over the arena
//! buffers: the math only. [`chunk`] reads as the block's formula below; the numeric
//! primitives follow it.
//!
//! Per block, for the `n ≤ MAX_BATCH` rows of a chunk at positions `pos..pos+n`:
//! `xb = rmsnorm(x)·γ₁`; `q, k, v = xb·Wqᵀ, xb·Wkᵀ, xb·Wvᵀ` (+ biases); [per head
//! `rmsnorm(q)·γq`, `rmsnorm(k)·γk`]; rope on q and k with the layer's base; k, v appended to
//! the f16 cache; causal GQA attention per (row, head) → `xb`, over every earlier position or,
//! in a local layer, the last `swa_window` ones [scores soft-capped]; `o = xb·Woᵀ`;
//! `x += o` [or `rmsnorm(o)·γ₂`]; `xb = rmsnorm(x)·γ₃`; `f = (act(xb·Wgᵀ) ⊙ xb·Wuᵀ)·Wdᵀ`
//! (act: SiLU or tanh-GELU); `x += f` [or `rmsnorm(f)·γ₄`]. Gemma also scales the
//! embeddings by `√d`; Gemma 2 soft-caps the output logits. Bracketed steps are per
//! architecture ([`ArchSpec`](super::ArchSpec)). Every matmul goes through
//! [`Backend::matmul`] with `m = n`, so the pipeline the packer chose at build time is what
//! runs.
//!
//! Numerics follow ggml's CPU ops where the choice is free, so differences from llama.cpp
//! come only from the matmul pipelines: RMSNorm sums squares in f64 in ascending order and
//! scales `(x·s)·γ`; the rope angle is `pos·θ^(−2i/rope_dim)` built by repeated f32
//! multiplication as ggml's rope cache does; softmax subtracts the max, sums in f64; SiLU is
//! `x / (1 + e^(−x))`; GELU is ggml's table: the f16 value of `gelu(f16(x))` for
//! `−10 < x < 10`, else 0 or x; a soft cap is `c·tanh(s·(1/c))`. Transcendentals come from
//! the `libm` crate (pure Rust, the same bits on every host and device).
//!
//! **KV cache in f16** (per layer `[cache_rows][kv_dim]` of f16 bits, K and V): llama.cpp's
//! default cache type is f16 too, so rounding K and V there reproduces its numbers more
//! closely than f32 would, at half the memory (the cache is most of the arena). Position `p`
//! of layer `l` lives in row `p % cache_rows(l)`: every position for a global layer, a ring
//! for a local one.

use super::arena::{reinterpret_err, Bufs};
use super::config::{Activation, ModelConfig, RopeStyle, MAX_BATCH};
use super::error::ModelError;
use super::weights::{desc, f32s, mm, vec_bytes, Model, Resolved, Slot, TIdx, NONE, N_SLOTS};
use crate::backend::Backend;
use crate::error::Error;
use crate::exec;
use half::f16;

/// Runs every block over `tokens` (≤ [`MAX_BATCH`], already checked against the vocabulary)
/// at positions `pos..pos+n`, leaving the final residual rows in `x`.
pub(super) fn chunk<B: Backend>(
    m: &Model<'_>,
    w: &Resolved,
    be: &mut B,
    s: &mut Bufs<'_>,
    pos: usize,
    tokens: &[u32],
) -> Result<(), ModelError> {
    let c = &m.config;
    let n = tokens.len();
    if n == 0 || n > MAX_BATCH {
        return Err(ModelError::NoTokens);
    }
    if pos + n > c.context_len as usize {
        return Err(ModelError::ContextFull { context_len: c.context_len });
    }
    // x = token embeddings (× √d for Gemma, in f32 as ggml scales them).
    let embd = desc(m, w.embd)?;
    let d = c.d_model as usize;
    let embed_scale = c.arch.spec().embed_scale.then(|| libm::sqrtf(d as f32));
    for (&t, row) in tokens.iter().zip(s.x.chunks_exact_mut(d)) {
        exec::embed_row(embd, m.weights.blob, t, row)?;
        if let Some(k) = embed_scale {
            row.iter_mut().for_each(|v| *v *= k);
        }
    }
    // (cos, sin) of every row's position, rebuilt only where the rope base changes.
    let mut table_base = None;
    for l in 0..c.n_layers as usize {
        let base = c.rope_base_of(l);
        if table_base != Some(base.to_bits()) {
            let rd = c.rope_dim as usize;
            for (r, cs) in s.rope.chunks_exact_mut(rd.max(1)).take(n).enumerate() {
                rope_table(cs, pos + r, base, rd);
            }
            table_base = Some(base.to_bits());
        }
        let ix = w
            .layers
            .get(l)
            .ok_or(ModelError::MissingTensor { layer: Some(l as u32), name: "block" })?;
        attention(m, be, s, ix, l, pos, n)?;
        feed_forward(m, be, s, ix, n)?;
    }
    Ok(())
}

/// `x += attn(rmsnorm(x)·γ)·Woᵀ` (post-normed for Gemma) for the rows `0..n` at positions
/// `pos..pos+n` of block `l`.
fn attention<B: Backend>(
    m: &Model<'_>,
    be: &mut B,
    s: &mut Bufs<'_>,
    ix: &[u16; N_SLOTS],
    l: usize,
    pos: usize,
    n: usize,
) -> Result<(), ModelError> {
    let c = &m.config;
    let at = |slot: Slot| ix[slot as usize];
    norm_rows(s.xb, s.x, vec_bytes(m, at(Slot::AttnNorm))?, c, n);
    mm(be, m, at(Slot::Q), s.xb, n, s.q, s.scratch)?;
    mm(be, m, at(Slot::K), s.xb, n, s.k, s.scratch)?;
    mm(be, m, at(Slot::V), s.xb, n, s.v, s.scratch)?;
    let (qd, kvd) = (c.q_dim(), c.kv_dim());
    for (slot, buf, width) in
        [(Slot::QBias, &mut *s.q, qd), (Slot::KBias, &mut *s.k, kvd), (Slot::VBias, &mut *s.v, kvd)]
    {
        if at(slot) != NONE {
            add_bias(buf, vec_bytes(m, at(slot))?, width, n);
        }
    }
    if at(Slot::QNorm) != NONE {
        norm_heads(s.q, s.kv_row, vec_bytes(m, at(Slot::QNorm))?, c, qd * n)?;
        norm_heads(s.k, s.kv_row, vec_bytes(m, at(Slot::KNorm))?, c, kvd * n)?;
    }
    rope_and_cache(c, s, l, pos, n)?;
    for r in 0..n {
        for kvh in 0..c.n_kv_heads as usize {
            attend(c, s, l, r, pos + r, kvh)?;
        }
    }
    mm(be, m, at(Slot::O), s.xb, n, s.y, s.scratch)?;
    residual(m, s, at(Slot::PostAttnNorm), n)
}

/// `x += y`, or with a post-norm `x += rmsnorm(y)·γ` (normed through `xb`), rows `0..n`.
fn residual(m: &Model<'_>, s: &mut Bufs<'_>, post_norm: TIdx, n: usize) -> Result<(), ModelError> {
    let c = &m.config;
    let len = c.d_model as usize * n;
    if post_norm == NONE {
        add_rows(s.x, s.y, len);
    } else {
        norm_rows(s.xb, s.y, vec_bytes(m, post_norm)?, c, n);
        add_rows(s.x, s.xb, len);
    }
    Ok(())
}

/// `x += (act(xb·Wgᵀ) ⊙ xb·Wuᵀ)·Wdᵀ` with `xb = rmsnorm(x)·γ` (SwiGLU or GeGLU; post-normed
/// for Gemma), rows `0..n`.
fn feed_forward<B: Backend>(
    m: &Model<'_>,
    be: &mut B,
    s: &mut Bufs<'_>,
    ix: &[u16; N_SLOTS],
    n: usize,
) -> Result<(), ModelError> {
    let c = &m.config;
    let at = |slot: Slot| ix[slot as usize];
    norm_rows(s.xb, s.x, vec_bytes(m, at(Slot::FfnNorm))?, c, n);
    mm(be, m, at(Slot::Gate), s.xb, n, s.hb, s.scratch)?;
    mm(be, m, at(Slot::Up), s.xb, n, s.hb2, s.scratch)?;
    let ff = c.ff as usize;
    let gated = s.hb[..n * ff].iter_mut().zip(&s.hb2[..n * ff]);
    match c.arch.spec().act {
        Activation::Silu => gated.for_each(|(g, &u)| *g = silu(*g) * u),
        Activation::GeluTanh => gated.for_each(|(g, &u)| *g = gelu_tanh(*g) * u),
    }
    mm(be, m, at(Slot::Down), s.hb, n, s.y, s.scratch)?;
    residual(m, s, at(Slot::PostFfnNorm), n)
}

/// Final norm and output head for row `r` of the last chunk → `logits`.
pub(super) fn head<B: Backend>(
    m: &Model<'_>,
    w: &Resolved,
    be: &mut B,
    s: &mut Bufs<'_>,
    r: usize,
) -> Result<(), ModelError> {
    let d = m.config.d_model as usize;
    let xr = s.x.get(r * d..(r + 1) * d).ok_or(ModelError::NoTokens)?;
    let g = vec_bytes(m, w.out_norm)?;
    rmsnorm(&mut s.y[..d], xr, g, m.config.rms_eps);
    mm(be, m, w.output, s.y, 1, s.logits, s.scratch)?;
    softcap(s.logits, m.config.final_softcap);
    Ok(())
}

/// Final norm and output head for rows `0..n` of the last chunk at once (one matmul with
/// `M = n`) → `out[..n·vocab]`. Each row's logits are the same as [`head`] gives for it: every
/// backend computes the rows of a matmul independently.
pub(super) fn head_rows<B: Backend>(
    m: &Model<'_>,
    w: &Resolved,
    be: &mut B,
    s: &mut Bufs<'_>,
    n: usize,
    out: &mut [f32],
) -> Result<(), ModelError> {
    let c = &m.config;
    let v = c.vocab as usize;
    if n == 0 || n > MAX_BATCH {
        return Err(ModelError::NoTokens);
    }
    let got = out.len();
    let out = out.get_mut(..n * v).ok_or(ModelError::Runtime(Error::Length {
        what: "logits rows",
        need: n * v,
        got,
    }))?;
    norm_rows(s.y, s.x, vec_bytes(m, w.out_norm)?, c, n);
    mm(be, m, w.output, s.y, n, out, s.scratch)?;
    softcap(out, c.final_softcap);
    Ok(())
}

/// In place: `z = cap·tanh(z·(1/cap))` (ggml's scale, tanh, scale); nothing for `cap = 0`.
fn softcap(z: &mut [f32], cap: f32) {
    if cap > 0.0 {
        let inv = 1.0 / cap;
        z.iter_mut().for_each(|v| *v = libm::tanhf(*v * inv) * cap);
    }
}

/// Per-head RMSNorm in place over the first `len` values of `rows` (heads of `head_dim`),
/// with `γ` of `[head_dim]`; `tmp` holds one head.
fn norm_heads(
    rows: &mut [f32],
    tmp: &mut [f32],
    gamma: &[u8],
    c: &ModelConfig,
    len: usize,
) -> Result<(), ModelError> {
    let hd = c.head_dim as usize;
    let tmp = tmp.get_mut(..hd).ok_or(reinterpret_err())?;
    for h in rows.get_mut(..len).ok_or(reinterpret_err())?.chunks_exact_mut(hd) {
        tmp.copy_from_slice(h);
        rmsnorm(h, tmp, gamma, c.rms_eps);
    }
    Ok(())
}

/// `out[r] = rmsnorm(x[r])·γ` for rows `0..n` of width `d_model`.
fn norm_rows(out: &mut [f32], x: &[f32], gamma: &[u8], c: &ModelConfig, n: usize) {
    let d = c.d_model as usize;
    for (o, xr) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)).take(n) {
        rmsnorm(o, xr, gamma, c.rms_eps);
    }
}

/// `rows[r] += bias` for rows `0..n` of width `width`.
fn add_bias(rows: &mut [f32], bias: &[u8], width: usize, n: usize) {
    for row in rows.chunks_exact_mut(width).take(n) {
        row.iter_mut().zip(f32s(bias)).for_each(|(v, b)| *v += b);
    }
}

/// The residual add `x[..len] += y[..len]`.
fn add_rows(x: &mut [f32], y: &[f32], len: usize) {
    x[..len].iter_mut().zip(&y[..len]).for_each(|(x, &y)| *x += y);
}

/// Rope on every head of q and k of rows `0..n`, then k and v of each row into block `l`'s
/// f16 caches at the row of its position `pos + r`. All `n` rows are written before any row
/// attends; a local layer's ring has room for them and the window of the first.
fn rope_and_cache(
    c: &ModelConfig,
    s: &mut Bufs<'_>,
    l: usize,
    pos: usize,
    n: usize,
) -> Result<(), ModelError> {
    let (qd, kvd, hd) = (c.q_dim(), c.kv_dim(), c.head_dim as usize);
    let rd = c.rope_dim as usize;
    let (start, rows) = (c.cache_offset(l, c.context_len), c.cache_rows(l, c.context_len));
    for r in 0..n {
        let cs = s.rope.get(r * rd..(r + 1) * rd).unwrap_or(&[]);
        for h in s.q[r * qd..(r + 1) * qd].chunks_exact_mut(hd) {
            rope_apply(&mut h[..rd], cs, c.rope_style);
        }
        for h in s.k[r * kvd..(r + 1) * kvd].chunks_exact_mut(hd) {
            rope_apply(&mut h[..rd], cs, c.rope_style);
        }
        let at_cache = (start + (pos + r) % rows) * kvd;
        let kc = s.kc.get_mut(at_cache..at_cache + kvd).ok_or(reinterpret_err())?;
        kc.iter_mut()
            .zip(&s.k[r * kvd..(r + 1) * kvd])
            .for_each(|(o, &v)| *o = f16::from_f32(v).to_bits());
        let vc = s.vc.get_mut(at_cache..at_cache + kvd).ok_or(reinterpret_err())?;
        vc.iter_mut()
            .zip(&s.v[r * kvd..(r + 1) * kvd])
            .for_each(|(o, &v)| *o = f16::from_f32(v).to_bits());
    }
    Ok(())
}

/// Causal attention of row `r` (at position `p`) for the query heads that share KV head `kvh`
/// over the cached positions it sees in block `l` (all of `0..=p`, or `p − swa_window < t ≤ p`
/// in a local layer) → their slice of `xb`. The query heads of one KV head go together: each
/// cache row is converted from f16 once and used by all of them (GQA: 3 heads per KV head in
/// SmolLM2, 7 in Qwen2.5-0.5B, 4 in Gemma 3 270M); per head the operations and their order
/// are those of one head at a time.
fn attend(
    c: &ModelConfig,
    s: &mut Bufs<'_>,
    l: usize,
    r: usize,
    p: usize,
    kvh: usize,
) -> Result<(), ModelError> {
    let (qd, kvd, hd) = (c.q_dim(), c.kv_dim(), c.head_dim as usize);
    let ctx = c.context_len as usize;
    let group = (c.n_heads / c.n_kv_heads) as usize;
    let scale = 1.0 / libm::sqrtf(c.query_scale_dim as f32);
    let cap = c.attn_softcap;
    let (start, rows) = (c.cache_offset(l, c.context_len), c.cache_rows(l, c.context_len));
    let layer_k = s.kc.get(start * kvd..(start + rows) * kvd).ok_or(reinterpret_err())?;
    let layer_v = s.vc.get(start * kvd..(start + rows) * kvd).ok_or(reinterpret_err())?;
    let first = if c.is_local(l) { (p + 1).saturating_sub(c.swa_window as usize) } else { 0 };
    let seen = p + 1 - first;
    if seen > ctx || seen > rows {
        return Err(reinterpret_err());
    }
    fn cache_row(cache: &[u16], at: usize, hd: usize) -> &[u16] {
        cache.get(at..at + hd).unwrap_or(&[])
    }
    let at = |t: usize| (t % rows) * kvd + kvh * hd;
    let h0 = kvh * group;
    let row = &mut s.kv_row[..hd];
    // Scores: q·k / √query_scale_dim, soft-capped as ggml's flash attention does
    // (`c·tanh(q·k·(scale/c))`).
    for (i, t) in (first..=p).enumerate() {
        row.iter_mut().zip(cache_row(layer_k, at(t), hd)).for_each(|(o, &b)| *o = f16_to_f32(b));
        for j in 0..group {
            let qh = &s.q[r * qd + (h0 + j) * hd..r * qd + (h0 + j + 1) * hd];
            s.att[j * ctx + i] = if cap > 0.0 {
                cap * libm::tanhf(dot(qh, row) * (scale / cap))
            } else {
                dot(qh, row) * scale
            };
        }
    }
    // Softmax per head; the weights replace the scores.
    for j in 0..group {
        softmax(&mut s.att[j * ctx..j * ctx + seen]);
    }
    // Weighted sum of the values.
    let outs = &mut s.xb[r * qd + h0 * hd..r * qd + (h0 + group) * hd];
    outs.fill(0.0);
    for (i, t) in (first..=p).enumerate() {
        row.iter_mut().zip(cache_row(layer_v, at(t), hd)).for_each(|(o, &b)| *o = f16_to_f32(b));
        for (j, out) in outs.chunks_exact_mut(hd).enumerate() {
            let w = s.att[j * ctx + i];
            out.iter_mut().zip(row.iter()).for_each(|(o, &v)| *o += w * v);
        }
    }
    Ok(())
}

/// In place: `a = e^(a − max) / Σ e^(a − max)`, the sum in f64 (as ggml).
fn softmax(att: &mut [f32]) {
    let mx = att.iter().fold(f32::NEG_INFINITY, |m, &a| m.max(a));
    let mut sum = 0f64;
    for a in att.iter_mut() {
        *a = libm::expf(*a - mx);
        sum += *a as f64;
    }
    let inv = (1.0 / sum) as f32;
    att.iter_mut().for_each(|a| *a *= inv);
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

/// GELU, tanh approximation, as ggml's CPU op computes it (`GGML_GELU_FP16`): 0 at or below
/// −10, the identity at or above 10, between them the f16 table entry of the input rounded to
/// f16 (the table holds `gelu` of each f16 value, rounded to f16).
fn gelu_tanh(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        let h = f16::from_f32(x).to_f32();
        f16::from_f32(gelu_f32(h)).to_f32()
    }
}

/// `0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²)))`, in ggml's operation order.
fn gelu_f32(x: f32) -> f32 {
    const GELU_COEF_A: f32 = 0.044715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)))
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
    fn gelu_follows_ggmls_table() {
        assert_eq!(gelu_tanh(-10.0), 0.0);
        assert_eq!(gelu_tanh(12.5), 12.5);
        assert_eq!(gelu_tanh(0.0), 0.0);
        // 1.0 is exact in f16: gelu(1) = 0.841192, rounded to f16.
        assert_eq!(gelu_tanh(1.0), f16::from_f32(0.841_192).to_f32());
        // Inputs that round to the same f16 give the same output.
        assert_eq!(gelu_tanh(1.0001), gelu_tanh(1.0));
        assert!((gelu_tanh(-1.5) - (-0.100_371)).abs() < 1e-3);
    }

    #[test]
    fn softcap_bounds_logits() {
        let mut z = [0.0, 3.0, 300.0, -1e9];
        softcap(&mut z, 30.0);
        assert_eq!(z[0], 0.0);
        assert!((z[1] - 30.0 * libm::tanhf(0.1)).abs() < 1e-6);
        assert!(z[2] <= 30.0 && z[2] > 29.99 && z[3] >= -30.0);
        let mut same = [5.0f32];
        softcap(&mut same, 0.0);
        assert_eq!(same, [5.0]);
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
