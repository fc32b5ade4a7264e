//! Non-linear 4-bit types: `IQ4_NL` (32-value blocks) and `IQ4_XS` (256-value super-blocks).
//!
//! Codes index ggml's 16-level table [`KVALUES_IQ4NL`]; layouts are in [`super::blocks`].
//! `IQ4_XS` forms the sub-block scale `d * (ls - 32)` first, then multiplies by the level.

use super::each_block;
use super::float::f16_le;
use crate::ggml::blocks::{BlockIQ4_NL, BlockIQ4_XS, KVALUES_IQ4NL};

/// The table as f32 (exact: small integers), so the loop is a lookup and one multiply.
const LEVELS: [f32; 16] = {
    let mut t = [0f32; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = KVALUES_IQ4NL[i] as f32;
        i += 1;
    }
    t
};

/// `IQ4_NL`: `y = d * KVALUES_IQ4NL[q]`.
pub(crate) fn iq4_nl(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockIQ4_NL::BYTES], y: &mut [f32; 32]| {
        let b = BlockIQ4_NL::from_bytes(b);
        let d = f16_le(b.d);
        for j in 0..16 {
            y[j] = d * LEVELS[(b.qs[j] & 0x0f) as usize];
            y[j + 16] = d * LEVELS[(b.qs[j] >> 4) as usize];
        }
    });
}

/// `IQ4_XS`: `y = (d * (ls - 32)) * KVALUES_IQ4NL[q]` over 8 sub-blocks of 32.
pub(crate) fn iq4_xs(src: &[u8], dst: &mut [f32]) {
    each_block(src, dst, |b: &[u8; BlockIQ4_XS::BYTES], y: &mut [f32; 256]| {
        let b = BlockIQ4_XS::from_bytes(b);
        let d = f16_le(b.d);
        let scales_h = u16::from_le_bytes(b.scales_h);
        for j in 0..8 {
            let lo = (b.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
            let hi = ((scales_h >> (2 * j)) & 3) as u8;
            let dl = d * ((lo | (hi << 4)) as i32 - 32) as f32;
            for l in 0..16 {
                let q = b.qs[16 * j + l];
                y[32 * j + l] = dl * LEVELS[(q & 0x0f) as usize];
                y[32 * j + 16 + l] = dl * LEVELS[(q >> 4) as usize];
            }
        }
    });
}
