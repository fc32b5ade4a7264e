//! The scatter: encoded rows to their planned bytes, through the tensor's layout. Every byte
//! written has exactly one planned place, so chunks can arrive in any order.

use super::TensorEntry;
use crate::quant::{Codes, Encoded};
use npu_runtime::format::ElemType;

/// Places the encoded rows `r0..r1` of entry `e` at their planned bytes of `blob`.
pub fn scatter(e: &TensorEntry, (r0, r1): (u32, u32), out: &Encoded, blob: &mut [u8]) {
    let g = e.geom;
    let kp = g.k_pad as usize;
    let layout = e.layout;
    for r in 0..(r1 - r0) as usize {
        let n = r0 + r as u32;
        for sh in e.shards.iter().filter(|s| n >= s.n0 && n < s.n0 + s.n_len) {
            let (kl, nl, n_len) = (sh.k_len as usize, (n - sh.n0) as usize, sh.n_len as usize);
            let run = layout.k_run(kl);
            let row0 = r * kp + sh.k0 as usize;
            for kk in (0..kl).step_by(run) {
                let at = sh.data.offset as usize + layout.byte_offset(kk, nl, kl, n_len);
                let src = row0 + kk;
                match &out.codes {
                    Codes::F32(v) => {
                        for (j, x) in v[src..src + run].iter().enumerate() {
                            blob[at + 4 * j..at + 4 * j + 4].copy_from_slice(&x.to_le_bytes());
                        }
                    }
                    Codes::F16(v) => {
                        for (j, x) in v[src..src + run].iter().enumerate() {
                            blob[at + 2 * j..at + 2 * j + 2].copy_from_slice(&x.to_le_bytes());
                        }
                    }
                    Codes::Int(v) if layout.elem() == ElemType::I8 => {
                        for (j, &x) in v[src..src + run].iter().enumerate() {
                            blob[at + j] = x as u8;
                        }
                    }
                    Codes::Int(v) => {
                        // Even k (even element index) in the low nibble.
                        for (j, pair) in v[src..src + run].chunks_exact(2).enumerate() {
                            blob[at + j] = (pair[0] as u8 & 0x0f) | ((pair[1] as u8 & 0x0f) << 4);
                        }
                    }
                }
            }
        }
        if !out.scales.is_empty() {
            let segs = g.k_segs as usize;
            for seg in 0..segs {
                let at = (e.scales.offset + 4 * (seg as u64 * g.n_pad as u64 + n as u64)) as usize;
                blob[at..at + 4].copy_from_slice(&out.scales[r * segs + seg].to_le_bytes());
            }
        }
    }
}
