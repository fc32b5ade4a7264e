//! Plain float types: `F32` (copied), `F16` and `BF16` (widened exactly), and the f16
//! conversion every quantized type uses for its scales.
//!
//! Widening f16 or bf16 to f32 is exact for every bit pattern. NaN payloads are kept as they
//! are (a signaling NaN stays signaling), which is what numpy's `float16 -> float32` cast does
//! and so what gguf-py's `dequantize` returns. The `half` crate's software path sets the quiet
//! bit instead, so this module converts by itself.

/// Widens the f16 with bits `h` to f32 exactly, keeping NaN payloads.
///
/// Integer operations only, except for subnormals, which are `h * 2^-24`: an exact product
/// (at most 10 significant bits times a power of two, far inside f32's normal range).
/// Written with selects so loops over it vectorize.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    // Normal numbers: rebias the exponent from 15 to 127. Infinities and NaNs (all-ones
    // exponent) get a further 128 - 16 so their exponent is all ones too, mantissa (the NaN
    // payload) kept. Subnormals are `em * 2^-24`, an exact product.
    let rebiased = (em << 13) + ((127 - 15) << 23);
    let normal_or_special = if em >= 0x7c00 { rebiased + ((128 - 16) << 23) } else { rebiased };
    // Via i32: signed int-to-float is one vector instruction on baseline x86-64, u32 is not.
    let sub = ((em as i32 as f32) * (1.0 / 16_777_216.0)).to_bits();
    let bits = if em < 0x0400 { sub } else { normal_or_special };
    f32::from_bits(sign | bits)
}

/// Reads a little-endian f16 and widens it (see [`f16_to_f32`]).
#[inline(always)]
pub fn f16_le(b: [u8; 2]) -> f32 {
    f16_to_f32(u16::from_le_bytes(b))
}

/// `F32`: little-endian f32 values, copied bit for bit.
pub(crate) fn f32_rows(src: &[u8], dst: &mut [f32]) {
    for (o, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// `F16`: little-endian IEEE half floats.
pub(crate) fn f16_rows(src: &[u8], dst: &mut [f32]) {
    // Fixed-size groups of 16 so the select-based conversion vectorizes; then the tail.
    let whole = dst.len() / 16 * 16;
    let (head, tail) = dst.split_at_mut(whole);
    let (src_head, src_tail) = src.split_at((whole * 2).min(src.len()));
    super::each_block(src_head, head, |b: &[u8; 32], y: &mut [f32; 16]| {
        for (j, y) in y.iter_mut().enumerate() {
            *y = f16_le([b[2 * j], b[2 * j + 1]]);
        }
    });
    for (o, b) in tail.iter_mut().zip(src_tail.chunks_exact(2)) {
        *o = f16_le([b[0], b[1]]);
    }
}

/// `BF16`: little-endian bfloat16, the top half of an f32; widening is a shift.
pub(crate) fn bf16_rows(src: &[u8], dst: &mut [f32]) {
    for (o, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *o = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_half_on_every_non_nan() {
        for h in 0..=u16::MAX {
            let ours = f16_to_f32(h);
            let theirs = half::f16::from_bits(h).to_f32();
            if theirs.is_nan() {
                assert!(ours.is_nan(), "{h:#06x}");
                // Payload and sign kept, quiet bit not forced.
                let want = ((h as u32 & 0x8000) << 16) | 0x7f80_0000 | ((h as u32 & 0x3ff) << 13);
                assert_eq!(ours.to_bits(), want, "{h:#06x}");
            } else {
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{h:#06x}");
            }
        }
    }

    #[test]
    fn known_f16_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0x7c01).to_bits(), 0x7f80_2000);
    }
}
