//! Packing: every tensor of a model into one blob in its target's native layout, plus the
//! descriptor table (`npu_runtime::format::TensorDesc`) and a quality report.
//!
//! Blob order: tensors in source (GGUF) order, a synthesized `output.weight` right after
//! `token_embd.weight` when the model ties them; per tensor its shards, K-segment-major then
//! core (exactly one librknnrt B buffer each), then its scale grid `[k_segs][n_pad]` of f32 LE.
//! Every shard and scale grid starts on a 64-byte boundary; padding (K to the K alignment, N
//! to the N tile, gaps between regions) is zero bytes.
//!
//! Determinism: offsets are planned before any data is computed; worker threads quantize
//! disjoint row chunks and hand them to one writer that places each element at its planned
//! byte, so the bytes do not depend on thread count or scheduling; per-chunk statistics are
//! combined in chunk order. No hash maps, no clocks, no paths in the output.

//!
//! Files, in dependency order: `plan` (offsets), `scatter` (values to bytes), `driver` (the
//! threads, [`pack()`]), [`unpack`] (the inverse, for tests); the row → codes step is
//! [`crate::quant::encode_rows`], the statistics [`crate::report`].

mod driver;
mod plan;
mod scatter;
pub mod source;
pub mod unpack;

use crate::report::Report;
pub use crate::rng::SeededRng;
pub use driver::pack;
use npu_runtime::exec::rotate;
use npu_runtime::format::{
    Geometry, Layout, Pipeline, Region, Rotation, Scheme, Shard, TensorDesc, TensorKind, BLOB_ALIGN,
};
use npu_runtime::target::Target;
use serde::Serialize;
pub use source::{MemSource, SourceTensor, TensorSource};
use std::fmt;
pub use unpack::{error_bound, unpack_original, unpack_stored};

/// What to pack for.
#[derive(Clone, Copy, Debug)]
pub struct PackOptions {
    /// Chip profile.
    pub target: &'static Target,
    /// Scheme for the matmul weights.
    pub scheme: Scheme,
    /// Worker threads (≥ 1); the output does not depend on it.
    pub threads: usize,
}

/// Why packing failed.
#[derive(Debug)]
pub enum PackError {
    /// The target cannot run a scheme, or a descriptor failed its check.
    Runtime(npu_runtime::Error),
    /// Reading a tensor failed.
    Source {
        /// Tensor name.
        tensor: String,
        /// What went wrong.
        msg: String,
    },
    /// A tensor does not fit the target's per-buffer limit or the format's 32-bit sizes.
    TooLarge {
        /// Tensor name.
        tensor: String,
        /// What is too large.
        msg: String,
    },
    /// The tensors disagree with the model's hyperparameters.
    Shapes(crate::shapes::ShapeError),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Runtime(e) => write!(f, "{e}"),
            PackError::Source { tensor, msg } => write!(f, "reading `{tensor}`: {msg}"),
            PackError::TooLarge { tensor, msg } => write!(f, "`{tensor}` is too large: {msg}"),
            PackError::Shapes(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PackError {}

impl From<npu_runtime::Error> for PackError {
    fn from(e: npu_runtime::Error) -> Self {
        PackError::Runtime(e)
    }
}

/// A packed tensor's descriptor, owned (the packer's side of `TensorDesc`).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    /// Name in the table.
    pub name: String,
    /// Index of the source tensor it was made from.
    pub source: usize,
    /// What it is.
    pub kind: TensorKind,
    /// Scheme of its values (`None` for f32 tensors).
    pub scheme: Option<Scheme>,
    /// Pipeline (matmul tensors).
    pub pipeline: Option<Pipeline>,
    /// Byte order of its shards.
    pub layout: Layout,
    /// Padding, segments, cores.
    pub geom: Geometry,
    /// Hadamard rotation, if any.
    pub rotation: Option<Rotation>,
    /// Shards in blob order.
    pub shards: Vec<Shard>,
    /// Scale grid.
    pub scales: Region,
}

impl TensorEntry {
    /// The runtime's view of this entry.
    pub fn desc(&self) -> TensorDesc<'_> {
        TensorDesc {
            name: &self.name,
            kind: self.kind,
            scheme: self.scheme,
            pipeline: self.pipeline,
            layout: self.layout,
            geom: self.geom,
            rotation: self.rotation,
            shards: &self.shards,
            scales: self.scales,
        }
    }
}

/// The result of packing: blob, descriptor table, report.
#[derive(Debug)]
pub struct Packed {
    /// Target packed for.
    pub target: &'static Target,
    /// Model scheme.
    pub scheme: Scheme,
    /// Descriptors, in blob order.
    pub tensors: Vec<TensorEntry>,
    /// The blob.
    pub blob: Vec<u8>,
    /// Quality report.
    pub report: Report,
}

impl Packed {
    /// The runtime's view of every tensor (borrowing this value).
    pub fn descs(&self) -> Vec<TensorDesc<'_>> {
        self.tensors.iter().map(|t| t.desc()).collect()
    }

    /// FNV-1a 64 of the blob (the digest in `tensors.json`).
    pub fn blob_digest(&self) -> u64 {
        rotate::fnv1a64(&self.blob)
    }

    /// `tensors.json`: the descriptor table.
    pub fn tensors_json(&self) -> String {
        let doc = TableJson {
            format_version: npu_runtime::format::FORMAT_VERSION,
            target: self.target.name,
            scheme: self.scheme.name(),
            blob_align: BLOB_ALIGN,
            blob_len: self.blob.len(),
            blob_fnv1a64: format!("{:016x}", self.blob_digest()),
            tensors: self.tensors.iter().map(EntryJson::new).collect(),
        };
        let mut s = serde_json::to_string_pretty(&doc).expect("the table serializes");
        s.push('\n');
        s
    }

    /// Writes `model.blob`, `tensors.json` and `report.json` into `dir` (created if missing),
    /// each through a temporary file renamed into place.
    pub fn write_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let put = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, dir.join(name))
        };
        put("model.blob", &self.blob)?;
        put("tensors.json", self.tensors_json().as_bytes())?;
        put("report.json", self.report.to_json().as_bytes())
    }
}

#[derive(Serialize)]
struct TableJson<'a> {
    format_version: u32,
    target: &'static str,
    scheme: &'static str,
    blob_align: u64,
    blob_len: usize,
    blob_fnv1a64: String,
    tensors: Vec<EntryJson<'a>>,
}

#[derive(Serialize)]
struct PipelineJson {
    name: &'static str,
    rknn_matmul_type: u32,
    acc_bits: u32,
}

#[derive(Serialize)]
struct LayoutJson {
    name: &'static str,
    elem: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n_tile: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k_tile: Option<u32>,
}

#[derive(Serialize)]
struct RotationJson {
    block: u32,
    seed: String,
}

#[derive(Serialize)]
struct RegionJson {
    offset: u64,
    len: u64,
}

#[derive(Serialize)]
struct ShardJson {
    k_seg: u32,
    core: u32,
    k0: u32,
    k_len: u32,
    n0: u32,
    n_len: u32,
    offset: u64,
    len: u64,
}

#[derive(Serialize)]
struct EntryJson<'a> {
    name: &'a str,
    kind: &'static str,
    scheme: Option<&'static str>,
    pipeline: Option<PipelineJson>,
    layout: LayoutJson,
    k: u32,
    n: u32,
    k_pad: u32,
    n_pad: u32,
    k_align: u32,
    n_align: u32,
    k_seg_len: u32,
    k_segs: u32,
    cores: u32,
    rotation: Option<RotationJson>,
    scales: RegionJson,
    shards: Vec<ShardJson>,
}

impl<'a> EntryJson<'a> {
    fn new(t: &'a TensorEntry) -> Self {
        let (n_tile, k_tile) = match t.layout {
            Layout::Tiled { n_tile, k_tile, .. } => (Some(n_tile), Some(k_tile)),
            Layout::RowMajor { .. } => (None, None),
        };
        let g = t.geom;
        EntryJson {
            name: &t.name,
            kind: t.kind.name(),
            scheme: t.scheme.map(Scheme::name),
            pipeline: t.pipeline.map(|p| PipelineJson {
                name: p.name(),
                rknn_matmul_type: p.rknn_matmul_type(),
                acc_bits: p.acc_bits(),
            }),
            layout: LayoutJson {
                name: t.layout.name(),
                elem: t.layout.elem().name(),
                n_tile,
                k_tile,
            },
            k: g.k,
            n: g.n,
            k_pad: g.k_pad,
            n_pad: g.n_pad,
            k_align: g.k_align,
            n_align: g.n_align,
            k_seg_len: g.k_seg_len,
            k_segs: g.k_segs,
            cores: g.cores,
            rotation: t
                .rotation
                .map(|r| RotationJson { block: r.block, seed: format!("{:016x}", r.seed) }),
            scales: RegionJson { offset: t.scales.offset, len: t.scales.len },
            shards: t
                .shards
                .iter()
                .map(|s| ShardJson {
                    k_seg: s.k_seg,
                    core: s.core,
                    k0: s.k0,
                    k_len: s.k_len,
                    n0: s.n0,
                    n_len: s.n_len,
                    offset: s.data.offset,
                    len: s.data.len,
                })
                .collect(),
        }
    }
}

/// The blob length packing `src` for `opts` will produce, from the plan alone (no value is
/// read): for checks that should fail before minutes of packing (the blob's size against how
/// it is embedded).
pub fn planned_blob_len(src: &dyn TensorSource, opts: &PackOptions) -> Result<u64, PackError> {
    plan::plan(&src.tensors(), opts).map(|(_, len)| len)
}
