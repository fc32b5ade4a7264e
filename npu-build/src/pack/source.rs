//! Where the packer reads f32 weights from: a GGUF file (through the reader and dequantizer)
//! or, in tests and benchmarks, plain in-memory matrices.

/// One tensor a source offers, in GGUF conventions: `dims[0]` is the contiguous (K)
/// dimension, the product of the others is the number of rows (N).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTensor {
    /// Tensor name.
    pub name: String,
    /// GGUF `ne` dimensions, innermost first.
    pub dims: Vec<u64>,
}

impl SourceTensor {
    /// Elements per row.
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }
    /// Number of rows.
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
}

/// A set of tensors readable as f32 rows, from several threads at once.
pub trait TensorSource: Sync {
    /// The tensors, in file order (the packer keeps this order in the blob).
    fn tensors(&self) -> Vec<SourceTensor>;
    /// Reads rows `first_row..first_row + n_rows` of tensor `index` into `out`
    /// (`n_rows · row_len` values).
    fn read_rows(
        &self,
        index: usize,
        first_row: u64,
        n_rows: u64,
        out: &mut [f32],
    ) -> Result<(), String>;
    /// Checks that the tensors form a model the runtime can run, before anything is packed
    /// (a GGUF: [`crate::shapes::check`]). Other sources are taken as they are.
    fn check_model(&self) -> Result<(), crate::shapes::ShapeError> {
        Ok(())
    }
}

/// In-memory tensors: `(name, dims, values)`.
#[derive(Clone, Debug, Default)]
pub struct MemSource {
    /// The tensors.
    pub tensors: Vec<(String, Vec<u64>, Vec<f32>)>,
}

impl MemSource {
    /// Adds a tensor with GGUF dims (innermost first).
    pub fn push(&mut self, name: &str, dims: &[u64], values: Vec<f32>) {
        assert_eq!(
            dims.iter().product::<u64>() as usize,
            values.len(),
            "{name}: dims and values disagree"
        );
        self.tensors.push((name.to_string(), dims.to_vec(), values));
    }
}

impl TensorSource for MemSource {
    fn tensors(&self) -> Vec<SourceTensor> {
        self.tensors
            .iter()
            .map(|(n, d, _)| SourceTensor { name: n.clone(), dims: d.clone() })
            .collect()
    }
    fn read_rows(
        &self,
        index: usize,
        first_row: u64,
        n_rows: u64,
        out: &mut [f32],
    ) -> Result<(), String> {
        let (name, dims, v) = self.tensors.get(index).ok_or("no such tensor")?;
        let k = dims.first().copied().unwrap_or(1) as usize;
        let start = first_row as usize * k;
        let end = start + n_rows as usize * k;
        let src = v.get(start..end).ok_or_else(|| format!("{name}: rows out of range"))?;
        if out.len() != src.len() {
            return Err(format!("{name}: output has {} slots for {} values", out.len(), src.len()));
        }
        out.copy_from_slice(src);
        Ok(())
    }
}

impl TensorSource for crate::gguf::Gguf<'_> {
    fn check_model(&self) -> Result<(), crate::shapes::ShapeError> {
        crate::shapes::check(self)
    }
    fn tensors(&self) -> Vec<SourceTensor> {
        crate::gguf::Gguf::tensors(self)
            .iter()
            .map(|t| SourceTensor { name: t.name().to_string(), dims: t.dims().to_vec() })
            .collect()
    }
    fn read_rows(
        &self,
        index: usize,
        first_row: u64,
        n_rows: u64,
        out: &mut [f32],
    ) -> Result<(), String> {
        let t = crate::gguf::Gguf::tensors(self).get(index).ok_or("no such tensor")?;
        self.dequantize_rows(t, first_row, n_rows, out).map_err(|e| e.to_string())
    }
}
