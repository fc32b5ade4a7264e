//! The original 32-value block types: `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0`.
//!
//! Layouts and formulas are in [`super::blocks`]. Operation order follows gguf-py (same
//! as ggml's `dequantize_row_q*`): the f16 scale is widened, the code is converted to f32,
//! then `d * q`, then `+ m` for the `_1` types.

use super::each_block;
use super::float::f16_le;
use crate::ggml::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};

/// The 32 five-bit codes of a `Q5_*` block, unsigned (`0..=31`).
#[inline(always)]
fn q5_codes(qh: [u8; 4], qs: &[u8; 16]) -> [u8; 32] {
    let qh = u32::from_le_bytes(qh);
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0x0f) | ((((qh >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    q
}

/// `Q4_0`: `y = d * (q - 8)`.
pub(crate) fn q4_0(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ4_0::BYTES], y: &mut [f32; 32]| {
        let b = BlockQ4_0::from_bytes(b);
        let d = f16_le(b.d);
        for j in 0..16 {
            y[j] = d * ((b.qs[j] & 0x0f) as i32 - 8) as f32;
            y[j + 16] = d * ((b.qs[j] >> 4) as i32 - 8) as f32;
        }
    });
}

/// `Q4_1`: `y = d * q + m`.
pub(crate) fn q4_1(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ4_1::BYTES], y: &mut [f32; 32]| {
        let b = BlockQ4_1::from_bytes(b);
        let (d, m) = (f16_le(b.d), f16_le(b.m));
        for j in 0..16 {
            y[j] = d * (b.qs[j] & 0x0f) as f32 + m;
            y[j + 16] = d * (b.qs[j] >> 4) as f32 + m;
        }
    });
}

/// `Q5_0`: `y = d * (q - 16)`.
pub(crate) fn q5_0(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ5_0::BYTES], y: &mut [f32; 32]| {
        let b = BlockQ5_0::from_bytes(b);
        let d = f16_le(b.d);
        let q = q5_codes(b.qh, &b.qs);
        for j in 0..32 {
            y[j] = d * (q[j] as i32 - 16) as f32;
        }
    });
}

/// `Q5_1`: `y = d * q + m`.
pub(crate) fn q5_1(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ5_1::BYTES], y: &mut [f32; 32]| {
        let b = BlockQ5_1::from_bytes(b);
        let (d, m) = (f16_le(b.d), f16_le(b.m));
        let q = q5_codes(b.qh, &b.qs);
        for j in 0..32 {
            y[j] = d * q[j] as f32 + m;
        }
    });
}

/// `Q8_0`: `y = d * q`.
pub(crate) fn q8_0(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockQ8_0::BYTES], y: &mut [f32; 32]| {
        let b = BlockQ8_0::from_bytes(b);
        let d = f16_le(b.d);
        for (y, &q) in y.iter_mut().zip(&b.qs) {
            *y = d * (q as i8) as f32;
        }
    });
}
