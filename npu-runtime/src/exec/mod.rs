//! Reference executors: plain, obviously-correct Rust computing exactly what each NPU pipeline
//! computes from the packed bytes. Every backend (librknnrt, the optimized CPU kernels) is
//! tested against these.
//!
//! For `y[M][N] = x[M][K] · Wᵀ` with a packed weight, per activation row:
//! 1. copy the row into scratch and zero-pad it to `k_pad`;
//! 2. Hadamard schemes: rotate it ([`rotate::rotate`], online, before quantization);
//! 3. per K segment, quantize the activation as the pipeline does it:
//!    - fp16: round to fp16 (nearest even);
//!    - int8 / int4: symmetric absmax over the (row, segment): `s_a = absmax / qmax`,
//!      `q = clamp(round_half_away(x / s_a), ±qmax)` ([`quant`]);
//! 4. per output channel, the dot product over the segment read from the shard in its native
//!    layout: fp16 products summed in f32 in the blocked order of [`F16_LANES`] (below); int8
//!    summed in i32; int4 summed in
//!    **i16**, each step checked, an overflow is reported as
//!    [`Error::AccumulatorOverflow`] (the packer's segmenting makes it impossible: with both
//!    operands in [-7, 7] no prefix sum exceeds 49·640 = 31 360);
//! 5. integer partials are scaled `(acc as f32) * s_a * s_w[seg][n]` (left to right), float
//!    partials taken as they are, and summed into `y[m][n]` in ascending segment order
//!    starting from 0.0: a fixed order, so the result is bit-exact and reproducible.
//!
//! Integer results are bit-exact by construction (integer sums are order-free). The fp16
//! pipeline's f32 summation order is this reference's definition: **16 lanes**, lane `j`
//! accumulates `acc_j = acc_j + a_k · w_k` (separate multiply and add, no fusion) for the
//! segment-relative `k ≡ j (mod 16)` in ascending k, then the lanes are folded in halves,
//! `l_j + l_{j+8}`, then `+ l_{j+4}`, `+ l_{j+2}`, `+ l_{j+1}` ([`f16_fold`]). An NPU MAC
//! array does not sum in ascending k either; this order is the one a 256-bit, 512-bit or
//! 4×128-bit SIMD unit computes naturally, so the fast CPU kernels (module `cpu`) match the
//! reference bit for bit. A backend that sums in another order (librknnrt) is compared
//! within the f32 summation bound instead.
//!
//! No allocation: the caller passes `scratch` of at least [`scratch_len`] f32s (the padded
//! activation row; quantized codes are kept in it as exact small integers).

pub mod quant;
pub mod rotate;

use crate::error::Error;
use crate::format::{ElemType, Layout, Pipeline, TensorDesc, TensorKind};

/// f32 scratch elements [`matmul`] needs for this weight: one padded activation row.
pub fn scratch_len(desc: &TensorDesc<'_>) -> usize {
    desc.geom.k_pad as usize
}

fn need(what: &'static str, need: usize, got: usize) -> Result<(), Error> {
    if need == got {
        Ok(())
    } else {
        Err(Error::Length { what, need, got })
    }
}

/// `y[m][n] = Σ_k x[m][k] · W[n][k]` as the tensor's pipeline computes it (see the module
/// docs). `x` is `[m][K]`, `y` is `[m][N]` (logical sizes), `scratch` ≥ [`scratch_len`].
pub fn matmul(
    desc: &TensorDesc<'_>,
    blob: &[u8],
    x: &[f32],
    m: usize,
    y: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    desc.check(blob.len())?;
    let pipeline = match (desc.kind, desc.pipeline) {
        (TensorKind::Matmul, Some(p)) => p,
        _ => return Err(Error::WrongKind),
    };
    let g = desc.geom;
    let (k, n, kp) = (g.k as usize, g.n as usize, g.k_pad as usize);
    need("x", m * k, x.len())?;
    need("y", m * n, y.len())?;
    if scratch.len() < kp {
        return Err(Error::Length { what: "scratch", need: kp, got: scratch.len() });
    }
    let buf = &mut scratch[..kp];
    let qmax = pipeline.qmax();
    for row in 0..m {
        buf[..k].copy_from_slice(&x[row * k..(row + 1) * k]);
        buf[k..].fill(0.0);
        if let Some(rot) = desc.rotation {
            rotate::rotate(rot, buf);
        }
        let yrow = &mut y[row * n..(row + 1) * n];
        yrow.fill(0.0);
        for seg in 0..g.k_segs {
            let (k0, kl) = g.seg_range(seg);
            let a = &mut buf[k0 as usize..(k0 + kl) as usize];
            let s_a = match pipeline {
                Pipeline::F16F16F32 => {
                    a.iter_mut().for_each(|v| *v = quant::to_f16_and_back(*v));
                    1.0
                }
                Pipeline::I8I8I32 | Pipeline::I4I4I16 => {
                    let s = quant::scale_for(quant::absmax(a), qmax);
                    a.iter_mut().for_each(|v| *v = quant::quantize(*v, s, qmax) as f32);
                    s
                }
            };
            for sh in desc.shards.iter().filter(|s| s.k_seg == seg) {
                let bytes = desc.shard_bytes(blob, sh)?;
                let nl_end = (sh.n_len as usize).min(n.saturating_sub(sh.n0 as usize));
                for nl in 0..nl_end {
                    let nn = sh.n0 as usize + nl;
                    let partial = match pipeline {
                        Pipeline::F16F16F32 => {
                            dot_f16(desc.layout, bytes, a, nl, sh.n_len as usize)
                        }
                        Pipeline::I8I8I32 => {
                            let acc = dot_i8(desc.layout, bytes, a, nl, sh.n_len as usize)
                                .ok_or(Error::AccumulatorOverflow { k_seg: seg })?;
                            acc as f32 * s_a * desc.scale(blob, seg, nn as u32)
                        }
                        Pipeline::I4I4I16 => {
                            let acc = dot_i4(desc.layout, bytes, a, nl, sh.n_len as usize)
                                .ok_or(Error::AccumulatorOverflow { k_seg: seg })?;
                            acc as f32 * s_a * desc.scale(blob, seg, nn as u32)
                        }
                    };
                    yrow[nn] += partial;
                }
            }
        }
    }
    Ok(())
}

/// Runs of (k, n) elements: yields (k offset in the segment, byte offset in the shard, run).
fn runs(
    layout: Layout,
    kl: usize,
    nl: usize,
    n_len: usize,
) -> impl Iterator<Item = (usize, usize, usize)> {
    let run = layout.k_run(kl);
    (0..kl).step_by(run).map(move |k| (k, layout.byte_offset(k, nl, kl, n_len), run))
}

/// Lanes of the fp16 pipeline's f32 summation order (see the module docs).
pub const F16_LANES: usize = 16;

/// Folds the [`F16_LANES`] partial sums into one, in halves: `l_j + l_{j+8}`, then
/// `+ l_{j+4}`, `+ l_{j+2}`, `+ l_{j+1}` (the lower lane is always the left operand).
#[inline]
pub fn f16_fold(mut l: [f32; F16_LANES]) -> f32 {
    let mut h = F16_LANES / 2;
    while h > 0 {
        for j in 0..h {
            l[j] += l[j + h];
        }
        h /= 2;
    }
    l[0]
}

fn dot_f16(layout: Layout, bytes: &[u8], a: &[f32], nl: usize, n_len: usize) -> f32 {
    let mut lanes = [0.0f32; F16_LANES];
    for (k, off, run) in runs(layout, a.len(), nl, n_len) {
        for (j, w) in bytes[off..off + 2 * run].chunks_exact(2).enumerate() {
            let kk = k + j;
            lanes[kk % F16_LANES] += a[kk] * half::f16::from_le_bytes([w[0], w[1]]).to_f32();
        }
    }
    f16_fold(lanes)
}

fn dot_i8(layout: Layout, bytes: &[u8], a: &[f32], nl: usize, n_len: usize) -> Option<i32> {
    let mut acc = 0i32;
    for (k, off, run) in runs(layout, a.len(), nl, n_len) {
        for (j, &w) in bytes[off..off + run].iter().enumerate() {
            acc = acc.checked_add(a[k + j] as i32 * w as i8 as i32)?;
        }
    }
    Some(acc)
}

/// A raw dot product as the chip returns it, before any scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawSum {
    /// fp16 pipeline: f32 sum in the order of [`F16_LANES`].
    F32(f32),
    /// int8 pipeline.
    I32(i32),
    /// int4 pipeline.
    I16(i16),
}

/// The raw dot product of one output channel `nl` of a native block (`a.len()` × `n_len`,
/// laid out as `layout`) with the activation codes `a` (fp16 values or integer codes held
/// exactly in f32), summed exactly as [`matmul`] sums it. `None` when the integer accumulator
/// leaves its range. This is the part of the reference a matmul accelerator replaces;
/// `bytes` must hold the whole block ([`Layout::byte_len`]).
pub fn raw_dot(
    pipeline: Pipeline,
    layout: Layout,
    bytes: &[u8],
    a: &[f32],
    nl: usize,
    n_len: usize,
) -> Option<RawSum> {
    if layout.elem() != pipeline.elem() || bytes.len() < layout.byte_len(a.len(), n_len) {
        return None;
    }
    Some(match pipeline {
        Pipeline::F16F16F32 => RawSum::F32(dot_f16(layout, bytes, a, nl, n_len)),
        Pipeline::I8I8I32 => RawSum::I32(dot_i8(layout, bytes, a, nl, n_len)?),
        Pipeline::I4I4I16 => RawSum::I16(dot_i4(layout, bytes, a, nl, n_len)?),
    })
}

/// Sign-extends the low / high nibble of a byte.
#[inline]
pub fn nibbles(b: u8) -> (i8, i8) {
    (((b << 4) as i8) >> 4, (b as i8) >> 4)
}

fn dot_i4(layout: Layout, bytes: &[u8], a: &[f32], nl: usize, n_len: usize) -> Option<i16> {
    let mut acc = 0i16;
    for (k, off, run) in runs(layout, a.len(), nl, n_len) {
        for (j, &w) in bytes[off..off + run / 2].iter().enumerate() {
            let (lo, hi) = nibbles(w);
            acc = acc.checked_add(a[k + 2 * j] as i16 * lo as i16)?;
            acc = acc.checked_add(a[k + 2 * j + 1] as i16 * hi as i16)?;
        }
    }
    Some(acc)
}

/// Reads row `row` of an embedding table into `out` (length K): `q · s[row]` for int8
/// storage, the stored value for fp16 / f32.
pub fn embed_row(
    desc: &TensorDesc<'_>,
    blob: &[u8],
    row: u32,
    out: &mut [f32],
) -> Result<(), Error> {
    desc.check(blob.len())?;
    if desc.kind != TensorKind::Embedding {
        return Err(Error::WrongKind);
    }
    read_row(desc, blob, row, out)
}

/// Reads a [`TensorKind::F32`] tensor (all rows) into `out` (length N·K).
pub fn read_f32(desc: &TensorDesc<'_>, blob: &[u8], out: &mut [f32]) -> Result<(), Error> {
    desc.check(blob.len())?;
    if desc.kind != TensorKind::F32 {
        return Err(Error::WrongKind);
    }
    let k = desc.geom.k as usize;
    need("out", k * desc.geom.n as usize, out.len())?;
    for (r, chunk) in out.chunks_exact_mut(k.max(1)).enumerate() {
        read_row(desc, blob, r as u32, chunk)?;
    }
    Ok(())
}

fn read_row(desc: &TensorDesc<'_>, blob: &[u8], row: u32, out: &mut [f32]) -> Result<(), Error> {
    let g = desc.geom;
    if row >= g.n {
        return Err(Error::RowOutOfRange { row, rows: g.n });
    }
    need("out", g.k as usize, out.len())?;
    let sh = desc.shards.iter().find(|s| row >= s.n0 && row < s.n0 + s.n_len);
    let sh = sh.ok_or(Error::BadDescriptor("row not in any shard"))?;
    let bytes = desc.shard_bytes(blob, sh)?;
    let (kl, nl, n_len) = (sh.k_len as usize, (row - sh.n0) as usize, sh.n_len as usize);
    let scale = desc.scale(blob, 0, row);
    for (kk, o) in out.iter_mut().enumerate() {
        let off = desc.layout.byte_offset(kk, nl, kl, n_len);
        *o = match desc.layout.elem() {
            ElemType::F32 => {
                f32::from_le_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]])
            }
            ElemType::F16 => half::f16::from_le_bytes([bytes[off], bytes[off + 1]]).to_f32(),
            ElemType::I8 => bytes[off] as i8 as f32 * scale,
            ElemType::I4 => {
                let (lo, hi) = nibbles(bytes[off]);
                let q = if desc.layout.high_nibble(kk, nl, kl, n_len) { hi } else { lo };
                q as f32 * scale
            }
        };
    }
    Ok(())
}
