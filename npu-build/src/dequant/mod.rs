//! Dequantization: ggml blocks of any supported type to f32, bit-exact to ggml's reference
//! `dequantize_row_*` (and gguf-py's `gguf.dequantize`).
//!
//! Callers hand in whole blocks: a tensor row always holds a whole number of blocks (the GGUF
//! reader checks this), so dequantizing a tensor in row chunks is just calling [`dequantize`]
//! on each chunk's bytes. Values come out in ggml element order (within a block as the
//! format defines, blocks in file order).
//!
//! # Formats
//!
//! The block layouts are ggml's, from `ggml/src/ggml-common.h`; each is a struct in
//! [`crate::ggml::blocks`] whose doc comment gives the bit layout and the formula. In short (`QK_K = 256`):
//!
//! | type | values/block | bytes | formula per value |
//! |---|---|---|---|
//! | `F32`, `F16`, `BF16` | 1 | 4, 2, 2 | the value, widened exactly |
//! | `Q4_0` | 32 | 18 | `d * (q4 - 8)` |
//! | `Q4_1` | 32 | 20 | `d * q4 + m` |
//! | `Q5_0` | 32 | 22 | `d * (q5 - 16)` |
//! | `Q5_1` | 32 | 24 | `d * q5 + m` |
//! | `Q8_0` | 32 | 34 | `d * q8` |
//! | `Q2_K` | 256 | 84 | `(d * sc4) * q2 - dmin * m4`, 16 sub-blocks of 16 |
//! | `Q3_K` | 256 | 110 | `(d * (sc6 - 32)) * q3`, q3 in -4..=3, 16 sub-blocks of 16 |
//! | `Q4_K` | 256 | 144 | `(d * sc6) * q4 - dmin * m6`, 8 sub-blocks of 32 |
//! | `Q5_K` | 256 | 176 | `(d * sc6) * q5 - dmin * m6`, 8 sub-blocks of 32 |
//! | `Q6_K` | 256 | 210 | `(d * sc8) * (q6 - 32)`, 16 sub-blocks of 16 |
//! | `Q8_K` | 256 | 292 | `d * q8`, f32 `d` |
//! | `IQ4_NL` | 32 | 18 | `d * KVALUES[q4]` |
//! | `IQ4_XS` | 256 | 136 | `(d * (sc6 - 32)) * KVALUES[q4]`, 8 sub-blocks of 32 |
//!
//! # Exactness
//!
//! Every value is computed with the same f32 operations in the same order as gguf-py's numpy
//! code (which agrees with ggml's C reference): f16 scales are widened to f32 first, sub-block
//! scales are formed as one f32 product (`d * sc`), then multiplied by the code, then the
//! offset is subtracted or added. There is no fused multiply-add and no library math call, so
//! results are the same bits on every IEEE-754 target. NaN and infinite scales are not
//! errors: they propagate as IEEE arithmetic says.
//!
//! # Speed
//!
//! Each type's loop takes one block at a time as fixed-size arrays (`&[u8; N]` in,
//! `&mut [f32; L]` out), so the inner loops have constant trip counts, no per-element bounds
//! checks, and vectorize. No `unsafe` is used: blocks are copied out of the byte slice into
//! their structs, which the optimizer folds into direct loads.

mod float;
mod iquants;
mod kquants;
mod legacy;

pub use float::{f16_le, f16_to_f32};

use crate::ggml::GgmlType;
use core::fmt;

/// Why a dequantization could not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DequantError {
    /// This crate has no dequantizer for the type.
    Unsupported(GgmlType),
    /// `src` and `dst` do not hold the same number of whole blocks.
    LengthMismatch {
        /// The type being dequantized.
        ty: GgmlType,
        /// Bytes given.
        src_bytes: usize,
        /// f32 slots given.
        dst_len: usize,
    },
}

impl fmt::Display for DequantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DequantError::Unsupported(ty) => write!(
                f,
                "tensor type {ty} cannot be dequantized (supported: {})",
                SupportedList
            ),
            DequantError::LengthMismatch { ty, src_bytes, dst_len } => write!(
                f,
                "{src_bytes} bytes of {ty} do not make {dst_len} values (blocks of {} values in {} bytes)",
                ty.block_len(),
                ty.block_bytes()
            ),
        }
    }
}

impl std::error::Error for DequantError {}

struct SupportedList;
impl fmt::Display for SupportedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in SUPPORTED.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(t.name())?;
        }
        Ok(())
    }
}

/// The types [`dequantize`] accepts.
pub const SUPPORTED: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
];

/// Whether [`dequantize`] accepts `ty`.
pub fn supported(ty: GgmlType) -> bool {
    SUPPORTED.contains(&ty)
}

/// Dequantize whole blocks of `ty` from `src` into `dst`.
///
/// `dst.len()` must be a multiple of `ty.block_len()` and `src.len()` exactly the bytes of
/// that many values.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), DequantError> {
    if !supported(ty) {
        return Err(DequantError::Unsupported(ty));
    }
    let blocks_ok = (dst.len() as u64).is_multiple_of(ty.block_len())
        && ty.bytes_for(dst.len() as u64) == Some(src.len() as u64);
    if !blocks_ok {
        return Err(DequantError::LengthMismatch { ty, src_bytes: src.len(), dst_len: dst.len() });
    }
    match ty {
        GgmlType::F32 => float::f32_rows(src, dst),
        GgmlType::F16 => float::f16_rows(src, dst),
        GgmlType::BF16 => float::bf16_rows(src, dst),
        GgmlType::Q4_0 => legacy::q4_0(src, dst),
        GgmlType::Q4_1 => legacy::q4_1(src, dst),
        GgmlType::Q5_0 => legacy::q5_0(src, dst),
        GgmlType::Q5_1 => legacy::q5_1(src, dst),
        GgmlType::Q8_0 => legacy::q8_0(src, dst),
        GgmlType::Q2_K => kquants::q2_k(src, dst),
        GgmlType::Q3_K => kquants::q3_k(src, dst),
        GgmlType::Q4_K => kquants::q4_k(src, dst),
        GgmlType::Q5_K => kquants::q5_k(src, dst),
        GgmlType::Q6_K => kquants::q6_k(src, dst),
        GgmlType::Q8_K => kquants::q8_k(src, dst),
        GgmlType::IQ4_NL => iquants::iq4_nl(src, dst),
        GgmlType::IQ4_XS => iquants::iq4_xs(src, dst),
        _ => return Err(DequantError::Unsupported(ty)),
    }
    Ok(())
}

/// Runs `f` on each block of `B` bytes in `src` and its `L` output values in `dst`.
///
/// The fixed-size array views are what let the per-type loops run without bounds checks.
/// [`dequantize`] has checked that `src` and `dst` hold the same number of whole blocks.
#[inline(always)]
fn each_block<const B: usize, const L: usize>(
    src: &[u8],
    dst: &mut [f32],
    mut f: impl FnMut(&[u8; B], &mut [f32; L]),
) {
    for (s, d) in src.chunks_exact(B).zip(dst.chunks_exact_mut(L)) {
        // Both conversions always succeed (chunks_exact gives exactly B and L items); the
        // `if let` keeps even the impossible failure from being a panic path.
        if let (Ok(s), Ok(d)) = (<&[u8; B]>::try_from(s), <&mut [f32; L]>::try_from(d)) {
            f(s, d);
        }
    }
}
