//! The inverse of the packer, for tests: packed bytes back to f32 rows through the layout,
//! and the error bound a packed matmul must meet against the f32 source. Not used by the
//! packing path itself.

use npu_runtime::exec::{self, quant as rq, rotate};
use npu_runtime::format::{ElemType, TensorDesc};

/// Dequantizes a packed matmul or embedding tensor back to f32 rows `[n][k_pad]` in the stored
/// (rotated) domain, reading the blob through the layout: the inverse of the packer, used by
/// tests to check both directions agree.
pub fn unpack_stored(d: &TensorDesc<'_>, blob: &[u8]) -> Result<Vec<f32>, npu_runtime::Error> {
    d.check(blob.len())?;
    let g = d.geom;
    let (n, kp) = (g.n as usize, g.k_pad as usize);
    let mut out = vec![0f32; n * kp];
    for sh in d.shards {
        let bytes = d.shard_bytes(blob, sh)?;
        let (kl, n_len) = (sh.k_len as usize, sh.n_len as usize);
        for nl in 0..n_len {
            let nn = sh.n0 as usize + nl;
            if nn >= n {
                break;
            }
            let s = d.scale(blob, sh.k_seg, nn as u32);
            for kk in 0..kl {
                let off = d.layout.byte_offset(kk, nl, kl, n_len);
                let v = match d.layout.elem() {
                    ElemType::F32 => f32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()),
                    ElemType::F16 => {
                        half::f16::from_le_bytes([bytes[off], bytes[off + 1]]).to_f32()
                    }
                    ElemType::I8 => bytes[off] as i8 as f32 * s,
                    ElemType::I4 => {
                        let (lo, hi) = exec::nibbles(bytes[off]);
                        (if d.layout.high_nibble(kk, nl, kl, n_len) { hi } else { lo }) as f32 * s
                    }
                };
                out[nn * kp + sh.k0 as usize + kk] = v;
            }
        }
    }
    Ok(out)
}

/// Un-rotates rows from [`unpack_stored`] back to the original domain (`[n][k]`).
pub fn unpack_original(d: &TensorDesc<'_>, blob: &[u8]) -> Result<Vec<f32>, npu_runtime::Error> {
    let stored = unpack_stored(d, blob)?;
    let (k, kp) = (d.geom.k as usize, d.geom.k_pad as usize);
    let mut out = Vec::with_capacity(d.geom.n as usize * k);
    for row in stored.chunks_exact(kp.max(1)) {
        let mut r = row.to_vec();
        if let Some(rot) = d.rotation {
            rotate::unrotate_scaled(rot, &mut r);
        }
        out.extend_from_slice(&r[..k]);
    }
    Ok(out)
}

/// The error bound of a packed matmul against the exact product with the f32 source weight,
/// per output element `(m, n)`. Derivation, in the stored domain (`x' = R x` padded, `w'` the
/// prepared row, `ŵ`, `x̂` what the pipeline multiplies), per K segment with scales `s_w`,
/// `s_a`: `w'x' − ŵx̂ = (w' − ŵ)x' + ŵ(x' − x̂)` and rounding to the grid gives
/// `|w' − ŵ| ≤ s_w/2`, `|x' − x̂| ≤ s_a/2`, so each term is at most
/// `|x'|·s_w/2 + |ŵ|·s_a/2` (plus `s_w·s_a/4` of slack for the clamp at ±qmax). For fp16 the
/// step is half an fp16 ulp of each operand: relative 2⁻¹¹ each, absolute 2⁻²⁵ in the subnormal
/// range. On top, f32 arithmetic: the executor's products, scale multiplications and segment
/// sum, the fp16 K-sum, and the f32 rotation of `x` (log₂B butterfly levels) — each a relative
/// 2⁻²⁴ per operation, bounded generously by `ε·(Σ|ŵx̂| + bound)·(ops)`.
///
/// Computed in f64 from the packed bytes; used by tests only.
pub fn error_bound(
    d: &TensorDesc<'_>,
    blob: &[u8],
    x: &[f32],
    m: usize,
) -> Result<Vec<f64>, npu_runtime::Error> {
    let g = d.geom;
    let (k, kp, n) = (g.k as usize, g.k_pad as usize, g.n as usize);
    let w = unpack_stored(d, blob)?;
    let pipeline = d.pipeline.ok_or(npu_runtime::Error::WrongKind)?;
    let qmax = pipeline.qmax();
    let eps = f32::EPSILON as f64;
    let rot_ops = d.rotation.map_or(0.0, |r| {
        let b = r.block as f64;
        (r.block.trailing_zeros() as f64 + 1.0) * b.sqrt()
    });
    let mut bound = vec![0f64; m * n];
    let mut xr = vec![0f32; kp];
    for row in 0..m {
        xr[..k].copy_from_slice(&x[row * k..(row + 1) * k]);
        xr[k..].fill(0.0);
        if let Some(rot) = d.rotation {
            rotate::rotate(rot, &mut xr);
        }
        for seg in 0..g.k_segs {
            let (k0, kl) = g.seg_range(seg);
            let r = k0 as usize..(k0 + kl) as usize;
            let s_a =
                if qmax > 0 { rq::scale_for(rq::absmax(&xr[r.clone()]), qmax) as f64 } else { 0.0 };
            for nn in 0..n {
                let s_w = if qmax > 0 { d.scale(blob, seg, nn as u32) as f64 } else { 0.0 };
                let (mut b, mut mag) = (0f64, 0f64);
                for kk in r.clone() {
                    let xv = xr[kk] as f64;
                    let wv = w[nn * kp + kk] as f64;
                    mag += (xv * wv).abs();
                    b += if qmax > 0 {
                        xv.abs() * s_w / 2.0 + wv.abs() * s_a / 2.0 + s_w * s_a / 4.0
                    } else {
                        (xv * wv).abs() * (2.0 / 2048.0) * 1.001
                            + (xv.abs() + wv.abs()) * 2f64.powi(-25)
                    };
                }
                let ops =
                    if qmax > 0 { 4.0 } else { kl as f64 + 2.0 } + g.k_segs as f64 + 2.0 + rot_ops;
                bound[row * n + nn] += b + eps * (mag + b) * ops;
            }
        }
    }
    Ok(bound)
}
