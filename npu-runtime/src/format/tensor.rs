//! Tensor descriptors: where each packed tensor's bytes are in the blob ([`Region`],
//! [`Shard`]), what it is for ([`TensorKind`]), its checks against the blob
//! ([`TensorDesc::check`]), and the whole model's table ([`PackedModel`]).

use super::{ElemType, Geometry, Layout, Pipeline, Scheme, BLOB_ALIGN};
use crate::error::Error;

/// A byte range of the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Region {
    /// Offset from the blob's start.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Region {
    /// The empty region.
    pub const EMPTY: Region = Region { offset: 0, len: 0 };

    fn slice<'b>(&self, blob: &'b [u8]) -> Option<&'b [u8]> {
        let start = usize::try_from(self.offset).ok()?;
        let len = usize::try_from(self.len).ok()?;
        blob.get(start..start.checked_add(len)?)
    }
}

/// The randomized Hadamard rotation a weight was packed with; the runtime applies the same
/// one to activations (see `exec::rotate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rotation {
    /// Block size B of the block-diagonal transform (a power of two dividing `k_pad`).
    pub block: u32,
    /// Seed of the ±1 signs: FNV-1a 64 of the tensor name.
    pub seed: u64,
}

/// One contiguous native block: the weights of K segment `k_seg` for the output channels
/// `n0..n0+n_len` given to `core`, in the descriptor's [`Layout`] with
/// `k_pad = k_len`, `n_pad = n_len`. On an RKNPU this is exactly one librknnrt B buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    /// K segment index.
    pub k_seg: u32,
    /// Core index.
    pub core: u32,
    /// First K element (padded coordinates).
    pub k0: u32,
    /// K elements (multiple of the K alignment).
    pub k_len: u32,
    /// First output channel (padded coordinates).
    pub n0: u32,
    /// Output channels (multiple of the N tile).
    pub n_len: u32,
    /// Where the bytes are.
    pub data: Region,
}

/// What a tensor is for; decides which runtime operations apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorKind {
    /// A linear layer's weight `[N][K]`, run through a matmul pipeline.
    Matmul,
    /// A token embedding table `[vocab][d]`, read one row at a time (a gather, not a matmul).
    Embedding,
    /// Plain f32 data (norm weights, biases, anything 1-D), row-major `[n][k]`.
    F32,
}

impl TensorKind {
    /// Short name, as used in `tensors.json`.
    pub const fn name(self) -> &'static str {
        match self {
            TensorKind::Matmul => "matmul",
            TensorKind::Embedding => "embedding",
            TensorKind::F32 => "f32",
        }
    }
}

/// Descriptor of one packed tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorDesc<'a> {
    /// GGUF tensor name (a tied output head is emitted as `output.weight`).
    pub name: &'a str,
    /// What it is.
    pub kind: TensorKind,
    /// Scheme its values were quantized with (`None` for [`TensorKind::F32`]).
    pub scheme: Option<Scheme>,
    /// The pipeline that runs it ([`TensorKind::Matmul`] only).
    pub pipeline: Option<Pipeline>,
    /// Byte order of every shard.
    pub layout: Layout,
    /// Padding, segments, cores.
    pub geom: Geometry,
    /// Rotation applied along K (Hadamard schemes only).
    pub rotation: Option<Rotation>,
    /// Shards, K-segment-major then core, in blob order.
    pub shards: &'a [Shard],
    /// Scale grid `[k_segs][n_pad]` of f32 LE (empty for float storage). Padding channels
    /// have scale 0.
    pub scales: Region,
}

impl<'a> TensorDesc<'a> {
    /// Checks the descriptor against itself and against a blob of `blob_len` bytes: every
    /// region in range and aligned, shards exactly as [`Geometry`] plans them, sizes matching
    /// the layout. After this passes, the executors index without further checks.
    pub fn check(&self, blob_len: usize) -> Result<(), Error> {
        let g = &self.geom;
        if !g.consistent() {
            return Err(Error::BadDescriptor("inconsistent geometry"));
        }
        let elem = self.layout.elem();
        match (self.kind, self.pipeline, self.scheme) {
            (TensorKind::Matmul, Some(p), Some(s)) => {
                if p.elem() != elem || s.pipeline() != p {
                    return Err(Error::BadDescriptor("pipeline does not match scheme or layout"));
                }
            }
            (TensorKind::Embedding, None, Some(_)) => {
                if !matches!(elem, ElemType::F16 | ElemType::I8 | ElemType::F32) || g.k_segs != 1 {
                    return Err(Error::BadDescriptor("embedding storage"));
                }
            }
            (TensorKind::F32, None, None) => {
                if elem != ElemType::F32 {
                    return Err(Error::BadDescriptor("f32 tensor storage"));
                }
            }
            _ => return Err(Error::BadDescriptor("kind, pipeline and scheme disagree")),
        }
        match (self.rotation, self.scheme) {
            (None, Some(s)) if s.hadamard() && self.kind == TensorKind::Matmul => {
                return Err(Error::BadDescriptor("hadamard scheme without rotation"))
            }
            (Some(r), s) => {
                let ok = s.is_some_and(|s| s.hadamard())
                    && r.block.is_power_of_two()
                    && g.k_pad.is_multiple_of(r.block);
                if !ok {
                    return Err(Error::BadDescriptor("rotation"));
                }
            }
            _ => {}
        }
        if g.shard_count() as usize != self.shards.len() {
            return Err(Error::BadDescriptor("shard count"));
        }
        let mut i = 0;
        for s in 0..g.k_segs {
            let (k0, k_len) = g.seg_range(s);
            for c in 0..g.cores {
                let (n0, n_len) = g.core_range(c);
                if n_len == 0 {
                    continue;
                }
                let sh = &self.shards[i];
                i += 1;
                if (sh.k_seg, sh.core, sh.k0, sh.k_len, sh.n0, sh.n_len)
                    != (s, c, k0, k_len, n0, n_len)
                {
                    return Err(Error::BadDescriptor("shard does not match geometry"));
                }
                if !self.layout.fits(k_len as usize, n_len as usize)
                    || sh.data.len != self.layout.byte_len(k_len as usize, n_len as usize) as u64
                    || !sh.data.offset.is_multiple_of(BLOB_ALIGN)
                    || !in_range(sh.data, blob_len)
                {
                    return Err(Error::BadDescriptor("shard region"));
                }
            }
        }
        let want_scales = if matches!(elem, ElemType::I8 | ElemType::I4) {
            g.k_segs as u64 * g.n_pad as u64 * 4
        } else {
            0
        };
        if self.scales.len != want_scales
            || (want_scales > 0
                && (!self.scales.offset.is_multiple_of(4) || !in_range(self.scales, blob_len)))
        {
            return Err(Error::BadDescriptor("scale region"));
        }
        Ok(())
    }

    /// The scale of (K segment `seg`, output channel `n`). Assumes [`TensorDesc::check`]
    /// passed; returns 0 for out-of-range arguments rather than panicking.
    pub fn scale(&self, blob: &[u8], seg: u32, n: u32) -> f32 {
        let at = self.scales.offset + 4 * (seg as u64 * self.geom.n_pad as u64 + n as u64);
        read_f32_at(blob, at).unwrap_or(0.0)
    }

    /// The bytes of a shard.
    pub fn shard_bytes<'b>(&self, blob: &'b [u8], shard: &Shard) -> Result<&'b [u8], Error> {
        shard.data.slice(blob).ok_or(Error::BadDescriptor("shard outside blob"))
    }
}

fn in_range(r: Region, blob_len: usize) -> bool {
    r.offset.checked_add(r.len).is_some_and(|end| end <= blob_len as u64)
}

/// Reads an f32 LE at byte `at` of the blob.
pub fn read_f32_at(blob: &[u8], at: u64) -> Option<f32> {
    let at = usize::try_from(at).ok()?;
    let b = blob.get(at..at.checked_add(4)?)?;
    Some(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Identifies a target profile (the profiles themselves are in the `target` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetId {
    /// Rockchip RK3588 / RK3588S: 3 NPU cores.
    Rk3588,
    /// Rockchip RK3576: 2 NPU cores.
    Rk3576,
    /// Rockchip RK3566: 1 NPU core.
    Rk3566,
    /// Rockchip RK3568: 1 NPU core (same NPU as RK3566).
    Rk3568,
    /// The portable CPU target: this project's own layouts and kernels.
    Cpu,
}

/// A whole packed model as the runtime sees it: the blob and its descriptor table.
#[derive(Clone, Copy, Debug)]
pub struct PackedModel<'a> {
    /// Target the blob was packed for.
    pub target: TargetId,
    /// Scheme chosen for the model (individual tensors may differ, see the packer docs).
    pub scheme: Scheme,
    /// Descriptors in blob order.
    pub tensors: &'a [TensorDesc<'a>],
    /// The blob, aligned to [`BLOB_ALIGN`].
    pub blob: &'a [u8],
}

impl<'a> PackedModel<'a> {
    /// Finds a tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&'a TensorDesc<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Checks every descriptor against the blob.
    pub fn check(&self) -> Result<(), Error> {
        self.tensors.iter().try_for_each(|t| t.check(self.blob.len()))
    }
}
