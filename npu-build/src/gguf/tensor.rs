//! Tensor infos: name, shape, type and where the data lies.

use super::error::ErrorKind;
use super::GgmlType;

/// One entry of the tensor table, with sizes computed from the ggml type table and checked
/// against the file when it was opened.
///
/// Shapes are in ggml order: `dims()[0]` (ne0) is the fastest-varying dimension, i.e. the row
/// length. A 2-D weight `W` of a `y = W x` layer with `n_in` inputs and `n_out` outputs has
/// dims `[n_in, n_out]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    offset: u64,
    file_offset: u64,
    n_elements: u64,
    n_rows: u64,
    n_bytes: u64,
}

impl TensorInfo {
    /// Check the shape against the type and compute sizes. `offset` is relative to the data
    /// section; the absolute offset is filled in once the data section's start is known.
    pub(crate) fn new(
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        offset: u64,
    ) -> Result<TensorInfo, ErrorKind> {
        let overflow = || ErrorKind::DimsOverflow { tensor: name.to_owned(), dims: dims.to_vec() };
        // ggml stores dims as int64_t, so the element count must fit i64. The row count is
        // checked on its own: with ne0 = 0 the full product is 0 even when the rest overflows.
        let limit = i64::MAX as u64;
        let n_rows = dims
            .iter()
            .skip(1)
            .try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|&p| p <= limit))
            .ok_or_else(overflow)?;
        let ne0 = dims.first().copied().unwrap_or(1);
        let n_elements = ne0.checked_mul(n_rows).filter(|&n| n <= limit).ok_or_else(overflow)?;
        if !ne0.is_multiple_of(ty.block_len()) {
            return Err(ErrorKind::RowNotBlockAligned { tensor: name.to_owned(), ty, ne0 });
        }
        let n_bytes = ty.bytes_for(n_elements).ok_or_else(overflow)?;
        Ok(TensorInfo {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ty,
            offset,
            file_offset: 0,
            n_elements,
            n_rows,
            n_bytes,
        })
    }

    pub(crate) fn set_file_offset(&mut self, at: u64) {
        self.file_offset = at;
    }

    /// The tensor's name (e.g. `blk.0.attn_q.weight`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Dimensions, ne0 (fastest varying) first; empty for a 0-dimensional tensor.
    pub fn dims(&self) -> &[u64] {
        &self.dims
    }

    /// The ggml element type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Offset of the data within the data section, as stored in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Offset of the data from the start of the file.
    pub fn file_offset(&self) -> u64 {
        self.file_offset
    }

    /// Number of elements (product of the dimensions).
    pub fn n_elements(&self) -> u64 {
        self.n_elements
    }

    /// Row length: ne0 (1 for a 0-dimensional tensor).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows: the product of every dimension after ne0.
    pub fn n_rows(&self) -> u64 {
        self.n_rows
    }

    /// Bytes of one row in the file.
    pub fn row_bytes(&self) -> u64 {
        // ne0 was checked to be a whole number of blocks and the whole tensor's size fits u64.
        self.ty.bytes_for(self.row_len()).unwrap_or(0)
    }

    /// Bytes of the whole tensor in the file.
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
    }
}
