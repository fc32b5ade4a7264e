//! K-quants: 256-value super-blocks `Q2_K`, `Q3_K`, `Q4_K`, `Q5_K`, `Q6_K`, `Q8_K`.
//!
//! Layouts and formulas are in [`super::blocks`]. The sub-block scale is always formed first
//! as one f32 product of the widened f16 super-block scale and the small integer scale
//! (`dl = d * sc`, likewise `ml = dmin * m`), then each value is `dl * q` (minus `ml`): the
//! order gguf-py and ggml's `dequantize_row_q*_K` use. Forming `d * (sc * q)` instead would
//! round differently.

use super::each_block;
use super::float::f16_le;
use crate::ggml::blocks::{BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K};

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (`0..8`) of a
/// `Q4_K`/`Q5_K` block.
#[inline(always)]
fn scale_min_k4(j: usize, s: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// `Q2_K`: `y = (d * sc) * q - dmin * m` over 16 sub-blocks of 16.
pub(crate) fn q2_k(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ2_K::BYTES], y: &mut [f32; 256]| {
        let b = BlockQ2_K::from_bytes(b);
        let (d, dmin) = (f16_le(b.d), f16_le(b.dmin));
        for s in 0..16 {
            // Sub-block s covers elements 16s..16s+16: half h, shift pair k, bytes from `at`.
            let (h, k, part) = (s / 8, (s % 8) / 2, s % 2);
            let at = 32 * h + 16 * part;
            let dl = d * (b.scales[s] & 0x0f) as f32;
            let ml = dmin * (b.scales[s] >> 4) as f32;
            for l in 0..16 {
                let q = (b.qs[at + l] >> (2 * k)) & 3;
                y[16 * s + l] = dl * q as f32 - ml;
            }
        }
    });
}

/// `Q3_K`: `y = (d * (sc - 32)) * q` over 16 sub-blocks of 16, `q` in `-4..=3`.
pub(crate) fn q3_k(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ3_K::BYTES], y: &mut [f32; 256]| {
        let b = BlockQ3_K::from_bytes(b);
        let d = f16_le(b.d);
        for s in 0..16 {
            let lo = (b.scales[s % 8] >> (4 * (s / 8))) & 0x0f;
            let hi = (b.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
            let dl = d * ((lo | (hi << 4)) as i32 - 32) as f32;
            let (h, k, part) = (s / 8, (s % 8) / 2, s % 2);
            // Bit index into hmask: one bit per group of 32 elements.
            let m = s / 2;
            for l in 0..16 {
                let i = 16 * part + l;
                let low = ((b.qs[32 * h + i] >> (2 * k)) & 3) as i32;
                let high = if (b.hmask[i] >> m) & 1 != 0 { 0 } else { 4 };
                y[16 * s + l] = dl * (low - high) as f32;
            }
        }
    });
}

/// `Q4_K`: `y = (d * sc) * q - dmin * m` over 8 sub-blocks of 32.
pub(crate) fn q4_k(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ4_K::BYTES], y: &mut [f32; 256]| {
        let b = BlockQ4_K::from_bytes(b);
        let (d, dmin) = (f16_le(b.d), f16_le(b.dmin));
        for c in 0..4 {
            let (sc0, m0) = scale_min_k4(2 * c, &b.scales);
            let (sc1, m1) = scale_min_k4(2 * c + 1, &b.scales);
            let (d0, ml0) = (d * sc0 as f32, dmin * m0 as f32);
            let (d1, ml1) = (d * sc1 as f32, dmin * m1 as f32);
            for l in 0..32 {
                let q = b.qs[32 * c + l];
                y[64 * c + l] = d0 * (q & 0x0f) as f32 - ml0;
                y[64 * c + 32 + l] = d1 * (q >> 4) as f32 - ml1;
            }
        }
    });
}

/// `Q5_K`: `y = (d * sc) * q - dmin * m` over 8 sub-blocks of 32, 5-bit `q`.
pub(crate) fn q5_k(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ5_K::BYTES], y: &mut [f32; 256]| {
        let b = BlockQ5_K::from_bytes(b);
        let (d, dmin) = (f16_le(b.d), f16_le(b.dmin));
        for c in 0..4 {
            let (j0, j1) = (2 * c, 2 * c + 1);
            let (sc0, m0) = scale_min_k4(j0, &b.scales);
            let (sc1, m1) = scale_min_k4(j1, &b.scales);
            let (d0, ml0) = (d * sc0 as f32, dmin * m0 as f32);
            let (d1, ml1) = (d * sc1 as f32, dmin * m1 as f32);
            for l in 0..32 {
                let q = b.qs[32 * c + l];
                let h = b.qh[l];
                let q0 = (q & 0x0f) | (((h >> j0) & 1) << 4);
                let q1 = (q >> 4) | (((h >> j1) & 1) << 4);
                y[64 * c + l] = d0 * q0 as f32 - ml0;
                y[64 * c + 32 + l] = d1 * q1 as f32 - ml1;
            }
        }
    });
}

/// `Q6_K`: `y = (d * sc) * (q - 32)` over 16 sub-blocks of 16, signed 8-bit `sc`.
pub(crate) fn q6_k(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ6_K::BYTES], y: &mut [f32; 256]| {
        let b = BlockQ6_K::from_bytes(b);
        let d = f16_le(b.d);
        for s in 0..16 {
            let dl = d * (b.scales[s] as i8) as f32;
            let (h, k, part) = (s / 8, (s % 8) / 2, s % 2);
            for l in 0..16 {
                let i = 16 * part + l;
                let low = (b.ql[64 * h + 32 * (k % 2) + i] >> (4 * (k / 2))) & 0x0f;
                let high = (b.qh[32 * h + i] >> (2 * k)) & 3;
                y[16 * s + l] = dl * ((low | (high << 4)) as i32 - 32) as f32;
            }
        }
    });
}

/// `Q8_K`: `y = d * q` with an f32 `d`.
pub(crate) fn q8_k(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ8_K::BYTES], y: &mut [f32; 256]| {
        let b = BlockQ8_K::from_bytes(b);
        let d = f32::from_le_bytes(b.d);
        for (y, &q) in y.iter_mut().zip(&b.qs) {
            *y = d * (q as i8) as f32;
        }
    });
}
