//! The backend seam: where a model's matmuls leave the portable runtime.
//!
//! A [`Backend`] multiplies activations by one packed weight. The model code only
//! ever calls [`Backend::matmul`]; which silicon does the work is the backend's business, and
//! every backend must reproduce [`crate::exec::matmul`] (bit-exact for the integer pipelines,
//! within the f32 summation bound for fp16).
//!
//! The RKNPU2 backend ([`crate::rknpu`], feature `rknpu`) runs the packed shards through
//! librknnrt's matmul API and applies scales and the segment sum on the host, as the reference
//! does (librknnrt's in-library dequantization is not relied on: rknn-toolkit2 issue #550).
//!
//! The scratch buffer is caller-owned (no allocator): [`Backend::scratch_len`] says how much.

use crate::error::Error;
use crate::exec;
use crate::format::TensorDesc;

/// Most activation rows one [`Backend::matmul`] call gets: a prefill step pushes this many
/// prompt tokens through each matmul. Bigger batches amortise weight reads on real backends;
/// the activation part of a session's arena grows linearly with it.
pub const MAX_BATCH: usize = 16;

/// A packed weight checked against its blob once, so hot loops skip re-validation by type.
#[derive(Clone, Copy, Debug)]
pub struct PackedWeight<'a> {
    desc: &'a TensorDesc<'a>,
    blob: &'a [u8],
}

impl<'a> PackedWeight<'a> {
    /// Validates `desc` against `blob` ([`TensorDesc::check`]).
    pub fn new(desc: &'a TensorDesc<'a>, blob: &'a [u8]) -> Result<Self, Error> {
        desc.check(blob.len())?;
        Ok(PackedWeight { desc, blob })
    }
    /// The descriptor.
    pub fn desc(&self) -> &'a TensorDesc<'a> {
        self.desc
    }
    /// The whole blob the descriptor points into.
    pub fn blob(&self) -> &'a [u8] {
        self.blob
    }
}

/// Something that runs matmuls on packed weights.
pub trait Backend {
    /// Short name for logs.
    fn name(&self) -> &'static str;
    /// f32 scratch elements [`Backend::matmul`] needs for `w`.
    fn scratch_len(&self, w: &PackedWeight<'_>) -> usize;
    /// `y[m][N] = x[m][K] · Wᵀ` through `w`'s pipeline.
    fn matmul(
        &mut self,
        w: &PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error>;
}

/// The CPU backend that runs the reference executors directly: slow, exact, the yardstick.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuReference;

impl Backend for CpuReference {
    fn name(&self) -> &'static str {
        "cpu-reference"
    }
    fn scratch_len(&self, w: &PackedWeight<'_>) -> usize {
        exec::scratch_len(w.desc)
    }
    fn matmul(
        &mut self,
        w: &PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        exec::matmul(w.desc, w.blob, x, m, y, scratch)
    }
}

/// A boxed backend is a backend, so applications can pick one at run time
/// (`Box<dyn Backend>`).
#[cfg(feature = "std")]
impl<B: Backend + ?Sized> Backend for std::boxed::Box<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn scratch_len(&self, w: &PackedWeight<'_>) -> usize {
        (**self).scratch_len(w)
    }
    fn matmul(
        &mut self,
        w: &PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        (**self).matmul(w, x, m, y, scratch)
    }
}
