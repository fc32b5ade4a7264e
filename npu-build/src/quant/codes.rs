//! The row → codes step: f32 source rows of one tensor to the values its layout stores
//! (f32, f16 bits, or int8/int4 codes with per-K-segment scales), row-major `[rows][k_pad]`.

use super::{prepare_row, quantize_row};
use npu_runtime::format::{ElemType, Geometry, Rotation};

/// A chunk of rows in stored form, row-major with `k_pad` values per row (`k` for f32).
pub enum Codes {
    /// Unchanged f32 values (`[rows][k]`).
    F32(Vec<f32>),
    /// IEEE half bits.
    F16(Vec<u16>),
    /// Integer codes in `[-qmax, qmax]` (int8, or int4 before nibble packing).
    Int(Vec<i8>),
}

/// Rows in stored form and their scales (`[rows][k_segs]`, empty unless integer).
pub struct Encoded {
    /// The values.
    pub codes: Codes,
    /// Per row and K segment, the step of the integer grid.
    pub scales: Vec<f32>,
}

/// Turns `raw` (`rows × geom.k` source values) into what a tensor of element type `elem`
/// stores: rows prepared (padded, rotated) then rounded. `note(v, v̂)` sees every stored value
/// next to its reconstruction, row by row in K order, for the report's statistics.
pub fn encode_rows(
    raw: Vec<f32>,
    rows: usize,
    elem: ElemType,
    geom: &Geometry,
    rotation: Option<Rotation>,
    mut note: impl FnMut(f32, f32),
) -> Encoded {
    let (k, kp) = (geom.k as usize, geom.k_pad as usize);
    let mut prep = vec![0f32; kp];
    match elem {
        ElemType::F32 => {
            raw.iter().for_each(|&v| note(v, v));
            Encoded { codes: Codes::F32(raw), scales: Vec::new() }
        }
        ElemType::F16 => {
            let mut out = Vec::with_capacity(rows * kp);
            for r in 0..rows {
                prepare_row(&raw[r * k..(r + 1) * k], rotation, &mut prep);
                for &v in &prep {
                    let h = half::f16::from_f32(v);
                    note(v, h.to_f32());
                    out.push(h.to_bits());
                }
            }
            Encoded { codes: Codes::F16(out), scales: Vec::new() }
        }
        ElemType::I8 | ElemType::I4 => {
            let qmax = if elem == ElemType::I8 { 127 } else { 7 };
            let segs = geom.k_segs as usize;
            let mut out = vec![0i8; rows * kp];
            let mut scales = vec![0f32; rows * segs];
            for r in 0..rows {
                prepare_row(&raw[r * k..(r + 1) * k], rotation, &mut prep);
                let codes = &mut out[r * kp..(r + 1) * kp];
                let sc = &mut scales[r * segs..(r + 1) * segs];
                quantize_row(&prep, geom, qmax, codes, sc);
                for seg in 0..geom.k_segs {
                    let (k0, kl) = geom.seg_range(seg);
                    for kk in k0 as usize..(k0 + kl) as usize {
                        note(prep[kk], codes[kk] as f32 * sc[seg as usize]);
                    }
                }
            }
            Encoded { codes: Codes::Int(out), scales }
        }
    }
}
