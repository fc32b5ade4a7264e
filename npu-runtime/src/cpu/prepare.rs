//! Host-side activation preparation, exactly as [`crate::exec::matmul`] does it: each row
//! zero-padded to `k_pad`, rotated by the tensor's rotation, then either rounded to f16 (fp16
//! pipeline) or quantized per K segment (the reference's scale, codes and rounding; int4 codes
//! stored in [`super::kernel::i4_perm`] order). Everything lands in the caller's scratch
//! ([`crate::backend::Backend::scratch_len`]); with more scratch than one row needs, rows are
//! prepared in blocks so that every weight block is read once per block of rows (prefill).

use super::kernel::Kernels;
use crate::exec::{self, quant, rotate};
use crate::format::{Pipeline, TensorDesc};

/// Most activation rows prepared and run against one weight block at once.
pub const MAX_BLOCK_ROWS: usize = 16;

/// The activation side of one block of rows, prepared.
pub struct Prepared<'p> {
    /// Rows in the block (1..=[`MAX_BLOCK_ROWS`]).
    pub rows: usize,
    /// fp16: `[rows][k_pad]` rounded values.
    pub f: &'p [f32],
    /// int: `[rows][row_bytes]` codes (int4: in [`super::kernel::i4_perm`] order per chunk).
    pub q: &'p [i8],
    /// Bytes per row of `q`.
    pub row_bytes: usize,
    /// int: `[rows][k_segs]` activation scales.
    pub s_a: &'p [f32],
}

/// f32 scratch elements one prepared activation row of `desc` takes, and the fixed part.
fn scratch_parts(desc: &TensorDesc<'_>) -> (usize, usize) {
    let g = desc.geom;
    let kp = g.k_pad as usize;
    match desc.pipeline {
        Some(Pipeline::F16F16F32) => (kp, 0),
        // codes (k_pad bytes) + one scale per segment; plus one f32 work row.
        _ => (kp.div_ceil(4) + g.k_segs as usize, kp),
    }
}

/// f32 scratch elements [`super::CpuFast`] needs to prepare `rows` activation rows at once for
/// `desc` (it works with any amount ≥ one row; more lets prefill read weights fewer times).
pub fn scratch_len_rows(desc: &TensorDesc<'_>, rows: usize) -> usize {
    let (per, fixed) = scratch_parts(desc);
    // The reference fallback needs one padded row; never ask for less.
    (fixed + per * rows.max(1)).max(exec::scratch_len(desc))
}

/// Rows per block for an `m`-row matmul with `scratch` f32 of scratch (at least one row's
/// worth, which the caller checked).
pub fn block_rows(desc: &TensorDesc<'_>, m: usize, scratch: usize) -> usize {
    let (per, fixed) = scratch_parts(desc);
    ((scratch - fixed) / per.max(1)).clamp(1, m.clamp(1, MAX_BLOCK_ROWS))
}

/// Views f32 scratch as bytes for i8 codes.
fn as_i8(v: &mut [f32]) -> &mut [i8] {
    // SAFETY: i8 has alignment 1 and every bit pattern is a valid i8 and a valid f32; the
    // length covers exactly the same bytes; the borrow is carried over.
    unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut i8, v.len() * 4) }
}

/// Copies row `row` of `x` (`[rows][K]`) into `buf` (`k_pad` long), zero-padded and rotated.
fn load_row(desc: &TensorDesc<'_>, x: &[f32], row: usize, buf: &mut [f32]) {
    let k = desc.geom.k as usize;
    buf[..k].copy_from_slice(&x[row * k..(row + 1) * k]);
    buf[k..].fill(0.0);
    if let Some(rot) = desc.rotation {
        rotate::rotate(rot, buf);
    }
}

/// Prepares rows `x` (`[rows][K]`) into `scratch` as [`exec::matmul`] prepares them, with
/// kernel set `ks` for the quantization.
pub fn prepare<'s>(
    ks: &Kernels,
    desc: &TensorDesc<'_>,
    p: Pipeline,
    x: &[f32],
    rows: usize,
    scratch: &'s mut [f32],
) -> Prepared<'s> {
    let g = desc.geom;
    let (kp, segs) = (g.k_pad as usize, g.k_segs as usize);
    if p == Pipeline::F16F16F32 {
        let f = &mut scratch[..rows * kp];
        for (row, buf) in f.chunks_exact_mut(kp).enumerate() {
            load_row(desc, x, row, buf);
            buf.iter_mut().for_each(|v| *v = quant::to_f16_and_back(*v));
        }
        return Prepared { rows, f, q: &[], row_bytes: 0, s_a: &[] };
    }
    let cpr = kp.div_ceil(4);
    let (qf, rest) = scratch.split_at_mut(rows * cpr);
    let (s_a, rest) = rest.split_at_mut(rows * segs);
    let work = &mut rest[..kp];
    let q = as_i8(qf);
    let row_bytes = cpr * 4;
    for row in 0..rows {
        load_row(desc, x, row, work);
        let qrow = &mut q[row * row_bytes..row * row_bytes + kp];
        for seg in 0..segs {
            let (k0, kl) = g.seg_range(seg as u32);
            let (k0, kl) = (k0 as usize, kl as usize);
            let (a, dst) = (&work[k0..k0 + kl], &mut qrow[k0..k0 + kl]);
            let i4 = p == Pipeline::I4I4I16;
            s_a[row * segs + seg] = quantize_segment(ks, a, p.qmax(), dst, i4).0;
        }
    }
    Prepared { rows, f: &[], q, row_bytes, s_a }
}

/// One activation segment's scale and codes (into `dst`, int4 in [`super::kernel::i4_perm`]
/// order) exactly
/// as [`exec::matmul`] computes them; returns the scale and the codes' sum.
fn quantize_segment(ks: &Kernels, a: &[f32], qmax: i32, dst: &mut [i8], i4: bool) -> (f32, i32) {
    // SAFETY: a kernel table is only handed out for a kernel set this CPU runs.
    let s = quant::scale_for(unsafe { (ks.absmax)(a) }, qmax);
    if s == 0.0 {
        // The reference's codes for a zero scale.
        dst.fill(0);
        return (s, 0);
    }
    // SAFETY: as above.
    (s, unsafe { (ks.quantize)(a, s, qmax, dst, i4) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernel::{i4_perm, ACT_CHUNK};
    use crate::cpu::{kernels, Isa};

    /// Every kernel set's activation quantization against the reference's, on awkward values:
    /// exact ties at every code (power-of-two scales), values one ulp either side, zeros of
    /// both signs, NaN, ±∞ (in some segments), huge and subnormal scales, both code orders.
    #[test]
    fn quantize_segment_is_the_reference() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rnd = || {
            seed = rotate::splitmix64(seed);
            seed
        };
        let ulp = |x: f32, d: i32| f32::from_bits((x.to_bits() as i32).wrapping_add(d) as u32);
        for (isa, ks) in Isa::ALL.into_iter().filter_map(|i| Some((i, kernels(i)?))) {
            for (qmax, len) in [(127, 256), (7, 128), (127, 37), (7, 64)] {
                for case in 0..40 {
                    let unit = [1.0f32, 0.125, 2f32.powi(100), 2f32.powi(-140)][case % 4];
                    let with_inf = case % 5 == 4;
                    let v: [f32; 256] = core::array::from_fn(|i| {
                        if i == 0 {
                            return qmax as f32 * unit; // absmax: the scale is exactly `unit`
                        }
                        let r = rnd();
                        let code = ((r >> 8) % (2 * qmax as u64)) as f32 - qmax as f32;
                        match r % 10 {
                            0..=2 => (code + 0.5) * unit,
                            3 => ulp((code + 0.5) * unit, 1),
                            4 => ulp((code + 0.5) * unit, -1),
                            5 => -0.0,
                            6 => f32::NAN,
                            7 if with_inf => {
                                if r & 256 == 0 {
                                    f32::INFINITY
                                } else {
                                    f32::NEG_INFINITY
                                }
                            }
                            _ => {
                                ((r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
                                    * qmax as f32
                                    * unit
                            }
                        }
                    });
                    let v = &v[..len];
                    let (mut got, mut want) = ([0i8; 256], [0i8; 256]);
                    for i4 in [false, true] {
                        if i4 && len % ACT_CHUNK != 0 {
                            continue;
                        }
                        let (gs, gsum) = quantize_segment(ks, v, qmax, &mut got[..len], i4);
                        let ws = quant::scale_for(quant::absmax(v), qmax);
                        let mut wsum = 0;
                        for (i, &x) in v.iter().enumerate() {
                            let c = quant::quantize(x, ws, qmax);
                            wsum += c;
                            want[if i4 { i4_perm(i) } else { i }] = c as i8;
                        }
                        assert_eq!(
                            (gs.to_bits(), gsum),
                            (ws.to_bits(), wsum),
                            "{isa:?} qmax {qmax} case {case}"
                        );
                        assert_eq!(
                            got[..len],
                            want[..len],
                            "{isa:?} qmax {qmax} case {case} i4 {i4}"
                        );
                    }
                }
            }
        }
    }
}
