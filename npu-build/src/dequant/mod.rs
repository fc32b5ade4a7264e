//! Dequantization: ggml blocks of any supported type to f32, bit-exact to ggml's reference
//! `dequantize_row_*` (and gguf-py's `gguf.dequantize`).
//!
//! Callers hand in whole blocks: a tensor row always holds a whole number of blocks (the GGUF
//! reader checks this), so dequantizing a tensor in row chunks is just calling [`dequantize`]
//! on each chunk's bytes.

use crate::gguf::GgmlType;
use core::fmt;
use half::{bf16, f16};

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
pub const SUPPORTED: &[GgmlType] = &[GgmlType::F32, GgmlType::F16, GgmlType::BF16];

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
    let blocks_ok = (dst.len() as u64) % ty.block_len() == 0
        && ty.bytes_for(dst.len() as u64) == Some(src.len() as u64);
    if !blocks_ok {
        return Err(DequantError::LengthMismatch { ty, src_bytes: src.len(), dst_len: dst.len() });
    }
    match ty {
        GgmlType::F32 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::BF16 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        _ => return Err(DequantError::Unsupported(ty)),
    }
    Ok(())
}
