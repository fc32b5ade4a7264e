//! Target profiles as const data: which matmul pipelines a chip runs, in which native weight
//! layout, with which alignment, K limit and segmenting, how many cores, how much memory one
//! buffer may span. The packer reads these at build time, the runtime at run time.
//!
//! Sources (see the project's rknpu brief for the full citations):
//! - MMH = `rknn_matmul_api.h` of rknn-toolkit2 **v2.3.2** (commit 42aa1d4, 2025-04): per-chip
//!   K/N alignment, B native layouts, K > 8192 (RK3588) / 4096 (RK3576) segment rule,
//!   "K max: k <= 10240", core mask only on multi-core parts, `iommu_domain_id` "each domain
//!   has 4GB of space" (field since 2.0.0b0).
//! - `rknn_api.h` v2.3.2: `rknn_tensor_mem` has `u32 size; i32 offset`, so one imported
//!   sub-buffer must start below 2 GiB.
//! - rknn-toolkit2 CHANGELOG 1.6.0: "RK3588 adding int4*int4->int16".
//!
//! Nothing here is measured on hardware by this project yet; the RK3576 int4 pipeline in
//! particular rests only on MMH's alignment comment ("RK3588/3576: … int4 type must be
//! aligned with 32byte").

use crate::error::{Error, SchemeNames};
pub use crate::format::TargetId;
use crate::format::{ElemType, Geometry, Layout, Pipeline, Scheme};

/// Every scheme's name, in [`Scheme::ALL`] order: what [`SchemeNames`] masks select from.
static SCHEME_NAMES: [&str; Scheme::ALL.len()] = {
    let mut names = [""; Scheme::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Scheme::ALL[i].name();
        i += 1;
    }
    names
};
const _: () = assert!(Scheme::ALL.len() <= 32);

/// How a target runs one pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineSpec {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Native layout of the weight (B) operand.
    pub layout: Layout,
    /// K must be a multiple of this (zero padding).
    pub k_align: u32,
    /// N must be a multiple of this (zero padding); also the unit of the core split.
    pub n_align: u32,
    /// Longest K segment the packer emits: the SDK's per-matmul limit, or less where the
    /// accumulator needs it (int4 → int16, see [`INT4_K_SEG`]) or the target wants finer
    /// scales (`cpu`: per-group scales are K segments).
    pub max_k_seg: u32,
    /// Where the facts come from.
    pub source: &'static str,
}

/// A matmul type the SDK offers on a target that no scheme here uses, recorded with why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdkType {
    /// `rknn_matmul_type` value.
    pub rknn_type: u32,
    /// Its name in MMH.
    pub name: &'static str,
    /// First SDK whose header lists it.
    pub since: &'static str,
    /// Why it is not used.
    pub note: &'static str,
}

/// A chip profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Which one.
    pub id: TargetId,
    /// Name used by the attribute and the CLI.
    pub name: &'static str,
    /// NPU cores; weights are split across them along N.
    pub cores: u32,
    /// Pipelines a scheme can map to.
    pub pipelines: &'static [PipelineSpec],
    /// Other SDK matmul types, not used.
    pub unused_sdk_types: &'static [SdkType],
    /// Address window of one IOMMU domain in bytes (librknnrt `iommu_domain_id`, SDK ≥
    /// 2.0.0b0: 4 GiB each; up to 16 domains in RKLC's use).
    pub iommu_window: u64,
    /// IOMMU domains the NPU driver offers a process (`iommu_domain_id` 0..16: the ids
    /// rk-llama.cpp's `IOMMUDomainManager` allocates from; rknn_matmul_api.h v2.3.2 "each
    /// domain has 4GB of space"). The runtime places tensors into them
    /// ([`crate::rknpu::plan`]); the build refuses a model needing more.
    pub iommu_domains: u32,
    /// Largest single buffer / blob offset the runtime can bind: `i32` offsets of
    /// `rknn_create_mem_from_fd` (rknn_api.h v2.3.2) limit it to just under 2 GiB.
    pub max_buffer: u64,
}

/// K segment cap for int4 × int4 → int16: with both operands in [-7, 7] every partial sum
/// satisfies |Σ| ≤ 49 · K_seg ≤ 49 · 640 = 31 360 ≤ 32 767, so the int16 accumulator cannot
/// overflow whatever the data (no reliance on rotation or luck). 640 is the largest multiple
/// of 32 below the bound 668.
pub const INT4_K_SEG: u32 = 640;
const _: () = assert!(49 * INT4_K_SEG <= i16::MAX as u32 && INT4_K_SEG.is_multiple_of(32));
const _: () = assert!(INT4_K_SEG <= Pipeline::I4I4I16.overflow_free_k());

const RK_WINDOW: u64 = 4 << 30;
const RK_DOMAINS: u32 = 16;
const RK_MAX_BUFFER: u64 = (i32::MAX as u64 + 1) - 64;

const RK3588_PIPES: [PipelineSpec; 3] = [
    PipelineSpec {
        pipeline: Pipeline::F16F16F32,
        layout: Layout::Tiled { n_tile: 16, k_tile: 32, elem: ElemType::F16 },
        k_align: 32,
        n_align: 16,
        max_k_seg: 8192,
        source: "MMH v2.3.2: RK3588/3576 fp16 K%32 N%16, B native (N/16, K/32, 16, 32); K > 8192 split into segments",
    },
    PipelineSpec {
        pipeline: Pipeline::I8I8I32,
        layout: Layout::Tiled { n_tile: 32, k_tile: 32, elem: ElemType::I8 },
        k_align: 32,
        n_align: 32,
        max_k_seg: 8192,
        source: "MMH v2.3.2: RK3588/3576 int8 K%32 N%32, B native (N/32, K/32, 32, 32); K > 8192 split into segments",
    },
    PipelineSpec {
        pipeline: Pipeline::I4I4I16,
        layout: Layout::Tiled { n_tile: 64, k_tile: 32, elem: ElemType::I4 },
        k_align: 32,
        n_align: 64,
        max_k_seg: INT4_K_SEG,
        source: "MMH v2.3.2: RK3588/3576 int4 K%32 N%64, B native (N/64, K/32, 64, 32); int4*int4->int16 since 1.6.0; K capped at 640 for int16",
    },
];

const RK3576_PIPES: [PipelineSpec; 3] = [
    PipelineSpec { max_k_seg: 4096, source: "MMH v2.3.2: as RK3588 fp16; K > 4096 split into segments", ..RK3588_PIPES[0] },
    PipelineSpec { max_k_seg: 4096, source: "MMH v2.3.2: as RK3588 int8; K > 4096 split into segments", ..RK3588_PIPES[1] },
    PipelineSpec {
        source: "MMH v2.3.2: int4 alignment listed for RK3588/3576 (not hardware-verified here); K capped at 640 for int16",
        ..RK3588_PIPES[2]
    },
];

const RK356X_PIPES: [PipelineSpec; 2] = [
    PipelineSpec {
        pipeline: Pipeline::F16F16F32,
        layout: Layout::Tiled { n_tile: 8, k_tile: 16, elem: ElemType::F16 },
        k_align: 16,
        n_align: 8,
        max_k_seg: 8192,
        source: "MMH v2.3.2: RK3566/3568 fp16 K%16 N%8, B native (N/8, K/16, 8, 16); K <= 10240, segments kept <= 8192",
    },
    PipelineSpec {
        pipeline: Pipeline::I8I8I32,
        layout: Layout::Tiled { n_tile: 16, k_tile: 32, elem: ElemType::I8 },
        k_align: 32,
        n_align: 16,
        max_k_seg: 8192,
        source: "MMH v2.3.2: RK3566/3568 int8 K%32 N%16, B native (N/16, K/32, 16, 32); no int4 listed for RK356x",
    },
];

/// The cpu target's choices (this project's own kernels, no SDK): row-major `[N][K]` so a
/// row of weights is one contiguous run for SIMD dot products; K padded to 32 so int4 rows
/// are whole bytes and vectors are full; one "core" (the CPU kernels split N over threads
/// themselves). Integer schemes use per-group scales, expressed as short K segments: groups
/// of 256 for int8 and 128 for int4 (weights and activations), which the NPU targets cannot
/// afford (one matmul per segment) but a CPU can.
const CPU_PIPES: [PipelineSpec; 3] = [
    PipelineSpec {
        pipeline: Pipeline::F16F16F32,
        layout: Layout::RowMajor { elem: ElemType::F16 },
        k_align: 32,
        n_align: 1,
        max_k_seg: 1 << 20,
        source: "npu-model cpu target: row-major [N][K], unsegmented",
    },
    PipelineSpec {
        pipeline: Pipeline::I8I8I32,
        layout: Layout::RowMajor { elem: ElemType::I8 },
        k_align: 32,
        n_align: 1,
        max_k_seg: 256,
        source: "npu-model cpu target: row-major [N][K], scale groups of 256 along K",
    },
    PipelineSpec {
        pipeline: Pipeline::I4I4I16,
        layout: Layout::RowMajor { elem: ElemType::I4 },
        k_align: 32,
        n_align: 1,
        max_k_seg: 128,
        source: "npu-model cpu target: row-major [N][K], low nibble = even k, scale groups of 128 along K",
    },
];

const RK3588_UNUSED: [SdkType; 3] = [
    SdkType {
        rknn_type: 7,
        name: "RKNN_FLOAT16_MM_INT4_TO_FLOAT32",
        since: "2.0.0b0 header (RT-DOC: 2.1.0)",
        note: "mixed-type results unverified on RK3588 (rknn-toolkit2 #550 reports zeros for mixed/int8-to-fp32 variants); RKLLM offers no w4a16 on RK3588",
    },
    SdkType {
        rknn_type: 5,
        name: "RKNN_FLOAT16_MM_INT8_TO_FLOAT32",
        since: "2.0.0b0",
        note: "no gain over int8 x int8 with host-side scales; unverified",
    },
    SdkType {
        rknn_type: 9,
        name: "RKNN_INT8_MM_INT8_TO_FLOAT32",
        since: "2.1.0",
        note: "per-channel rejected / zeros (rknn-toolkit2 #550); scales applied on the host instead",
    },
];

static TARGETS: [Target; 5] = [
    Target {
        id: TargetId::Rk3588,
        name: "rk3588",
        cores: 3,
        pipelines: &RK3588_PIPES,
        unused_sdk_types: &RK3588_UNUSED,
        iommu_window: RK_WINDOW,
        iommu_domains: RK_DOMAINS,
        max_buffer: RK_MAX_BUFFER,
    },
    Target {
        id: TargetId::Rk3576,
        name: "rk3576",
        cores: 2,
        pipelines: &RK3576_PIPES,
        unused_sdk_types: &RK3588_UNUSED,
        iommu_window: RK_WINDOW,
        iommu_domains: RK_DOMAINS,
        max_buffer: RK_MAX_BUFFER,
    },
    Target {
        id: TargetId::Rk3566,
        name: "rk3566",
        cores: 1,
        pipelines: &RK356X_PIPES,
        unused_sdk_types: &[],
        iommu_window: RK_WINDOW,
        iommu_domains: RK_DOMAINS,
        max_buffer: RK_MAX_BUFFER,
    },
    Target {
        id: TargetId::Rk3568,
        name: "rk3568",
        cores: 1,
        pipelines: &RK356X_PIPES,
        unused_sdk_types: &[],
        iommu_window: RK_WINDOW,
        iommu_domains: RK_DOMAINS,
        max_buffer: RK_MAX_BUFFER,
    },
    Target {
        id: TargetId::Cpu,
        name: "cpu",
        cores: 1,
        pipelines: &CPU_PIPES,
        unused_sdk_types: &[],
        iommu_window: u64::MAX,
        iommu_domains: 1,
        max_buffer: u64::MAX,
    },
];

impl Target {
    /// Every profile, in a fixed order.
    pub fn all() -> &'static [Target] {
        &TARGETS
    }

    /// The profile of `id`.
    pub fn get(id: TargetId) -> &'static Target {
        match id {
            TargetId::Rk3588 => &TARGETS[0],
            TargetId::Rk3576 => &TARGETS[1],
            TargetId::Rk3566 => &TARGETS[2],
            TargetId::Rk3568 => &TARGETS[3],
            TargetId::Cpu => &TARGETS[4],
        }
    }

    /// Bytes of NPU-addressable memory: every IOMMU domain's window (`u64::MAX` for `cpu`).
    pub const fn npu_memory(&self) -> u64 {
        self.iommu_window.saturating_mul(self.iommu_domains as u64)
    }

    /// Looks a profile up by name (exact, lower case).
    pub fn by_name(name: &str) -> Option<&'static Target> {
        TARGETS.iter().find(|t| t.name == name)
    }

    /// How this target runs `pipeline`, if it can.
    pub fn spec(&self, pipeline: Pipeline) -> Option<&'static PipelineSpec> {
        Target::get(self.id).pipelines.iter().find(|s| s.pipeline == pipeline)
    }

    /// How this target runs `scheme`, or an error listing the schemes it supports.
    pub fn scheme_spec(&self, scheme: Scheme) -> Result<&'static PipelineSpec, Error> {
        self.spec(scheme.pipeline()).ok_or(Error::UnsupportedScheme {
            target: self.name,
            scheme: scheme.name(),
            supported: self.schemes(),
        })
    }

    /// The names of the schemes this target runs, in [`Scheme::ALL`] order.
    pub fn schemes(&self) -> SchemeNames {
        let mask = Scheme::ALL
            .iter()
            .enumerate()
            .filter(|(_, s)| self.spec(s.pipeline()).is_some())
            .fold(0u32, |mask, (i, _)| mask | 1 << i);
        SchemeNames::new(&SCHEME_NAMES, mask)
    }

    /// Plans padding, segments and the core split of an `n × k` weight for `spec`.
    pub fn geometry(&self, spec: &PipelineSpec, k: u32, n: u32) -> Geometry {
        Geometry::plan(k, n, spec.k_align, spec.n_align, spec.max_k_seg, self.cores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_self_consistent() {
        for t in Target::all() {
            assert_eq!(Target::get(t.id), t);
            assert_eq!(Target::by_name(t.name), Some(t));
            for s in t.pipelines {
                assert_eq!(s.layout.elem(), s.pipeline.elem(), "{} {:?}", t.name, s.pipeline);
                assert_eq!(s.max_k_seg % s.k_align, 0);
                assert!(s.max_k_seg <= s.pipeline.overflow_free_k());
                if let Layout::Tiled { n_tile, k_tile, .. } = s.layout {
                    assert_eq!(n_tile, s.n_align);
                    assert_eq!(s.k_align % k_tile, 0);
                }
            }
        }
    }

    #[test]
    fn unsupported_scheme_lists_supported() {
        let t = Target::by_name("rk3566").unwrap();
        let e = t.scheme_spec(Scheme::Int4).unwrap_err();
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            e.to_string(),
            "target `rk3566` cannot run quant `int4`; it supports: fp16, int8, int8_hadamard"
        );
        assert!(Target::by_name("rk3588").unwrap().scheme_spec(Scheme::Int4Hadamard).is_ok());
    }

    #[test]
    fn segments_and_core_split() {
        let t = Target::get(TargetId::Rk3588);
        let int4 = t.scheme_spec(Scheme::Int4).unwrap();
        // SmolLM2 ffn_down: K = 1536 → 3 segments of 512.
        let g = t.geometry(int4, 1536, 576);
        assert_eq!((g.k_pad, g.k_segs, g.k_seg_len), (1536, 3, 512));
        // N = 576 = 9 tiles of 64 over 3 cores: 3 each.
        assert_eq!(
            [g.core_range(0), g.core_range(1), g.core_range(2)],
            [(0, 192), (192, 192), (384, 192)]
        );
        // Qwen ffn_down: K = 4864 → 8 segments of 608 (≤ 640).
        let g = t.geometry(int4, 4864, 896);
        assert_eq!((g.k_segs, g.k_seg_len), (8, 608));
        // N = 896 = 14 tiles: 5, 5, 4 (remainder to the first cores).
        assert_eq!(
            [g.core_range(0), g.core_range(1), g.core_range(2)],
            [(0, 320), (320, 320), (640, 256)]
        );
        // int8: K = 10000 → 2 segments of 5024 (padded 10016).
        let g = t.geometry(t.scheme_spec(Scheme::Int8).unwrap(), 10000, 40);
        assert_eq!(
            (g.k_pad, g.k_segs, g.k_seg_len, g.seg_range(1)),
            (10016, 2, 5024, (5024, 4992))
        );
        // N = 64 = 2 tiles of 32 over 3 cores: core 2 empty.
        let g = t.geometry(t.scheme_spec(Scheme::Int8).unwrap(), 64, 64);
        assert_eq!(g.core_range(2), (64, 0));
        assert_eq!(g.shard_count(), 2);
    }
}
