//! The backend seam: where a model's matmuls leave the portable runtime.
//!
//! A [`Backend`] multiplies activations by one packed weight. The model code (`model`) only
//! ever calls [`Backend::matmul`]; which silicon does the work is the backend's business, and
//! every backend must reproduce [`crate::exec::matmul`] (bit-exact for the integer pipelines,
//! within the f32 summation bound for fp16).
//!
//! Plan for the RKNPU2 backend (librknnrt matmul API, SDK ≥ 2.0.0b0; not written yet):
//! - at load: for every matmul tensor and every [`Shard`](crate::format::Shard) create one
//!   context with `rknn_matmul_info { M: bucket, K: shard.k_len, N: shard.n_len,
//!   type: pipeline.rknn_matmul_type(), B_layout: NATIVE, AC_layout: NORM,
//!   iommu_domain_id: chosen so a domain's total stays ≤ `Target::max_buffer` }` and core mask
//!   `1 << shard.core`; bind the shard's bytes **zero-copy** as B with
//!   `rknn_create_mem_from_fd(ctx, blob_fd, blob_virt, shard.data.len, shard.data.offset)`
//!   — shards are already native, 64-byte aligned and contiguous per (K segment, core), which
//!   is why the packer lays them out that way;
//! - per call: on the host, rotate (Hadamard schemes) and quantize each activation row per K
//!   segment exactly as [`crate::exec`] does, write A (row-major, int4 packed low nibble
//!   first), run the segment's core contexts from one thread per core, then read C
//!   (fp32/int32/int16) and apply `s_a · s_w` and the ascending-segment f32 sum on the host,
//!   as the reference does (librknnrt's in-library dequantization is not relied on:
//!   rknn-toolkit2 issue #550).
//!
//! The scratch buffer is caller-owned (no allocator): [`Backend::scratch_len`] says how much.

use crate::error::Error;
use crate::exec;
use crate::format::TensorDesc;

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
