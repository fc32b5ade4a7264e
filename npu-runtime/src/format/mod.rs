//! The packed-model format: the types the packer (build time, `npu-build`) writes and the
//! runtime reads. Every layout fact lives here, once: the packer places each element with
//! [`Layout::elem_index`] and the reference executors read it back with the same function;
//! K segmenting and the split across cores come from [`Geometry`], used by both sides.
//!
//! All types are plain `Copy` data or borrow slices with a lifetime, so a table of them can be
//! emitted as `static` Rust source by a build script, or built at run time from owned vectors
//! by the CLI. Nothing here allocates.
//!
//! A packed model is one byte blob plus a table of [`TensorDesc`]. Offsets are relative to the
//! blob's start, which the embedder aligns to [`BLOB_ALIGN`] bytes; every shard starts on a
//! [`BLOB_ALIGN`] boundary, every scale grid on a 4-byte boundary. Numbers in the blob are
//! little-endian.

mod tensor;

pub use tensor::{
    read_f32_at, PackedModel, Region, Rotation, Shard, TargetId, TensorDesc, TensorKind,
};

/// Version of this format; bump on any change to the meaning of a byte.
pub const FORMAT_VERSION: u32 = 1;

/// Alignment of the blob and of every shard inside it, in bytes. 64 covers a cache line on
/// the A76/A55 cores and the DMA alignment librknnrt asks of imported buffers.
pub const BLOB_ALIGN: u64 = 64;

/// Element type of a stored weight or activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// IEEE binary32, little-endian.
    F32,
    /// IEEE binary16, little-endian.
    F16,
    /// Two's-complement 8-bit integer.
    I8,
    /// Two's-complement 4-bit integer, two per byte: the element with the even index (even
    /// k) in the low nibble, the odd one in the high nibble (the convention RKNPU matmul
    /// users run on hardware; see the nibble notes on [`Layout`]).
    I4,
}

impl ElemType {
    /// Bits per element.
    pub const fn bits(self) -> usize {
        match self {
            ElemType::F32 => 32,
            ElemType::F16 => 16,
            ElemType::I8 => 8,
            ElemType::I4 => 4,
        }
    }
    /// Short name, as used in `tensors.json`.
    pub const fn name(self) -> &'static str {
        match self {
            ElemType::F32 => "f32",
            ElemType::F16 => "f16",
            ElemType::I8 => "i8",
            ElemType::I4 => "i4",
        }
    }
}

/// A quantization scheme, chosen by the `quant` attribute / `--quant` flag.
///
/// | scheme | weights | activations (at run time) | pipeline |
/// |---|---|---|---|
/// | `fp16` | fp16 (round to nearest even) | fp16 | [`Pipeline::F16F16F32`] |
/// | `int8` | int8, symmetric, scale per (K segment, output channel) | int8, symmetric absmax per (row, K segment) | [`Pipeline::I8I8I32`] |
/// | `int8_hadamard` | as `int8`, after the randomized Hadamard rotation along K | rotated, then as `int8` | [`Pipeline::I8I8I32`] |
/// | `int4` | int4 in [-7, 7], scale per (K segment, output channel) | int4 in [-7, 7] per (row, K segment) | [`Pipeline::I4I4I16`] |
/// | `int4_hadamard` | as `int4`, rotated | rotated, then as `int4` | [`Pipeline::I4I4I16`] |
///
/// Symmetric quantization: `scale = absmax / qmax`, `q = clamp(round_half_away(v / scale),
/// -qmax, qmax)` with `qmax` 127 or 7 (−128 and −8 are never produced, so the grid is
/// symmetric and the int16 bound below holds); a segment of zeros gets scale 0 and codes 0.
/// The rotation is described in `exec::rotate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// fp16 weights and activations, fp32 accumulation.
    Fp16,
    /// int8 weights and activations, int32 accumulation.
    Int8,
    /// `Int8` after a randomized Walsh–Hadamard rotation along K.
    Int8Hadamard,
    /// int4 weights and activations, int16 accumulation.
    Int4,
    /// `Int4` after a randomized Walsh–Hadamard rotation along K.
    Int4Hadamard,
}

impl Scheme {
    /// Every scheme, in a fixed order (the order used in messages and reports).
    pub const ALL: [Scheme; 5] =
        [Scheme::Fp16, Scheme::Int8, Scheme::Int8Hadamard, Scheme::Int4, Scheme::Int4Hadamard];

    /// The name used by the attribute, the CLI and the JSON files.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::Fp16 => "fp16",
            Scheme::Int8 => "int8",
            Scheme::Int8Hadamard => "int8_hadamard",
            Scheme::Int4 => "int4",
            Scheme::Int4Hadamard => "int4_hadamard",
        }
    }

    /// Parses a scheme name (exact, lower case).
    pub fn parse(s: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|x| x.name() == s)
    }

    /// True for the rotated variants.
    pub const fn hadamard(self) -> bool {
        matches!(self, Scheme::Int8Hadamard | Scheme::Int4Hadamard)
    }

    /// The pipeline that executes this scheme (the same on every target that has it).
    pub const fn pipeline(self) -> Pipeline {
        match self {
            Scheme::Fp16 => Pipeline::F16F16F32,
            Scheme::Int8 | Scheme::Int8Hadamard => Pipeline::I8I8I32,
            Scheme::Int4 | Scheme::Int4Hadamard => Pipeline::I4I4I16,
        }
    }

    /// Largest quantized magnitude (0 for fp16, which is not quantized to a grid).
    pub const fn qmax(self) -> i32 {
        self.pipeline().qmax()
    }
}

/// A matmul pipeline: operand types, accumulator, and what the chip returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pipeline {
    /// fp16 × fp16 → fp32 accumulation (`RKNN_FLOAT16_MM_FLOAT16_TO_FLOAT32` = 1, SDK ≥ 1.5.0).
    F16F16F32,
    /// int8 × int8 → int32 (`RKNN_INT8_MM_INT8_TO_INT32` = 2, SDK ≥ 1.5.0). Raw integer dot
    /// products; scales are applied on the host (librknnrt's own per-channel dequant returned
    /// zeros in rknn-toolkit2 issue #550, so it is not relied on).
    I8I8I32,
    /// int4 × int4 → int16 (`RKNN_INT4_MM_INT4_TO_INT16` = 10, SDK ≥ 1.6.0, "RK3588 adding
    /// int4*int4->int16"). The 16-bit result makes K segmenting part of correctness.
    I4I4I16,
}

impl Pipeline {
    /// Short name, as used in `tensors.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Pipeline::F16F16F32 => "f16xf16->f32",
            Pipeline::I8I8I32 => "i8xi8->i32",
            Pipeline::I4I4I16 => "i4xi4->i16",
        }
    }
    /// The `rknn_matmul_type` value librknnrt uses for it (rknn_matmul_api.h, v2.3.2).
    pub const fn rknn_matmul_type(self) -> u32 {
        match self {
            Pipeline::F16F16F32 => 1,
            Pipeline::I8I8I32 => 2,
            Pipeline::I4I4I16 => 10,
        }
    }
    /// Element type of both operands.
    pub const fn elem(self) -> ElemType {
        match self {
            Pipeline::F16F16F32 => ElemType::F16,
            Pipeline::I8I8I32 => ElemType::I8,
            Pipeline::I4I4I16 => ElemType::I4,
        }
    }
    /// Accumulator / output width in bits.
    pub const fn acc_bits(self) -> u32 {
        match self {
            Pipeline::F16F16F32 | Pipeline::I8I8I32 => 32,
            Pipeline::I4I4I16 => 16,
        }
    }
    /// Largest quantized magnitude of either operand (0 for the float pipeline).
    pub const fn qmax(self) -> i32 {
        match self {
            Pipeline::F16F16F32 => 0,
            Pipeline::I8I8I32 => 127,
            Pipeline::I4I4I16 => 7,
        }
    }
    /// Longest K segment for which no dot product can leave the accumulator, whatever the
    /// inputs: `qmax² · K ≤ acc_max`. Only finite for the int4 pipeline:
    /// 49 · 668 = 32 732 ≤ 32 767 (the int32 pipelines would need K > 133 000).
    pub const fn overflow_free_k(self) -> u32 {
        match self {
            Pipeline::F16F16F32 => u32::MAX,
            Pipeline::I8I8I32 => (i32::MAX / (127 * 127)) as u32,
            Pipeline::I4I4I16 => (i16::MAX as i32 / 49) as u32,
        }
    }
}

/// How a (K × N) weight block is ordered in bytes. `k` runs along the reduction dimension,
/// `n` along output channels; `k_pad`, `n_pad` are the padded extents of the block (a shard).
///
/// Nibble order for [`ElemType::I4`]: element index `i` lives in byte `i / 2`, low nibble when
/// `i` is even. In both layouts K is innermost and `k_pad` is even, so even k ↔ low nibble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// RKNPU native B layout `(N/n_tile, K/k_tile, n_tile, k_tile)`: a K-run of `k_tile`
    /// elements of one column n is contiguous, then the next n of the same N tile, then the
    /// next K tile, then the next N tile (rknn_matmul_api.h v2.3.2, B native layout comments).
    Tiled {
        /// Output channels per tile.
        n_tile: u32,
        /// Reduction elements per tile (contiguous run).
        k_tile: u32,
        /// Element type.
        elem: ElemType,
    },
    /// Row-major `[N][K]`, K contiguous: the GGUF orientation, used by the `cpu` target and
    /// for embeddings and vectors.
    RowMajor {
        /// Element type.
        elem: ElemType,
    },
}

impl Layout {
    /// Element type stored.
    pub const fn elem(self) -> ElemType {
        match self {
            Layout::Tiled { elem, .. } | Layout::RowMajor { elem } => elem,
        }
    }

    /// Short name, as used in `tensors.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Layout::Tiled { .. } => "rknpu_native_b",
            Layout::RowMajor { .. } => "row_major_nk",
        }
    }

    /// Index (in elements) of weight element (k, n) in a block of `k_pad × n_pad`.
    pub const fn elem_index(self, k: usize, n: usize, k_pad: usize, _n_pad: usize) -> usize {
        match self {
            Layout::Tiled { n_tile, k_tile, .. } => {
                let nt = n_tile as usize;
                let kt = k_tile as usize;
                ((n / nt) * (k_pad / kt) + k / kt) * (nt * kt) + (n % nt) * kt + k % kt
            }
            Layout::RowMajor { .. } => n * k_pad + k,
        }
    }

    /// Byte offset of element (k, n); for int4 the byte that holds its nibble.
    pub const fn byte_offset(self, k: usize, n: usize, k_pad: usize, n_pad: usize) -> usize {
        self.elem_index(k, n, k_pad, n_pad) * self.elem().bits() / 8
    }

    /// For int4: true when element (k, n) is in the high nibble of its byte.
    pub const fn high_nibble(self, k: usize, n: usize, k_pad: usize, n_pad: usize) -> bool {
        self.elem_index(k, n, k_pad, n_pad) % 2 == 1
    }

    /// Bytes of a `k_pad × n_pad` block.
    pub const fn byte_len(self, k_pad: usize, n_pad: usize) -> usize {
        k_pad * n_pad * self.elem().bits() / 8
    }

    /// Length of the contiguous K-runs in a block with `k_len` rows: elements (k..k+run, n)
    /// are adjacent for k a multiple of the run. Lets readers copy runs instead of elements.
    pub const fn k_run(self, k_len: usize) -> usize {
        match self {
            Layout::Tiled { k_tile, .. } => k_tile as usize,
            Layout::RowMajor { .. } => k_len,
        }
    }

    /// Whether a `k_pad × n_pad` block tiles exactly.
    pub const fn fits(self, k_pad: usize, n_pad: usize) -> bool {
        match self {
            Layout::Tiled { n_tile, k_tile, elem } => {
                k_tile > 0
                    && n_tile > 0
                    && k_pad.is_multiple_of(k_tile as usize)
                    && n_pad.is_multiple_of(n_tile as usize)
                    && (k_tile as usize * elem.bits()).is_multiple_of(8)
            }
            Layout::RowMajor { elem } => (k_pad * elem.bits()).is_multiple_of(8),
        }
    }
}

const fn round_up(v: u32, a: u32) -> u32 {
    v.div_ceil(a) * a
}

/// Padding, K segmenting and the split across cores of one tensor: computed once by
/// [`Geometry::plan`] and stored in its descriptor.
///
/// - K is zero-padded to `k_align`, N to `n_align` (the N tile of the layout).
/// - K is cut into `k_segs` segments of `k_seg_len` (the last one may be shorter), each a
///   multiple of `k_align`, balanced so no segment is tiny: `k_segs = ceil(k_pad / max)`, then
///   `k_seg_len = round_up(ceil(k_pad / k_segs), k_align)`. Every segment is a separate
///   matmul on the chip, with its own scales.
/// - N is split across `cores` in whole tiles; the remainder tiles go to the first cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Logical K (elements per row of the source weight, GGUF `ne[0]`).
    pub k: u32,
    /// Logical N (rows / output channels, GGUF `ne[1]`).
    pub n: u32,
    /// K padded to the alignment.
    pub k_pad: u32,
    /// N padded to the alignment.
    pub n_pad: u32,
    /// K alignment (also the granularity of segments).
    pub k_align: u32,
    /// N alignment = N tile size (granularity of the core split).
    pub n_align: u32,
    /// Length of every K segment but possibly the last.
    pub k_seg_len: u32,
    /// Number of K segments.
    pub k_segs: u32,
    /// Cores N is split across.
    pub cores: u32,
}

impl Geometry {
    /// Plans a tensor. `max_k_seg` must be a positive multiple of `k_align`; all arguments
    /// positive.
    pub const fn plan(
        k: u32,
        n: u32,
        k_align: u32,
        n_align: u32,
        max_k_seg: u32,
        cores: u32,
    ) -> Geometry {
        let k_pad = round_up(k, k_align);
        let n_pad = round_up(n, n_align);
        let segs0 = if k_pad == 0 { 1 } else { k_pad.div_ceil(max_k_seg) };
        let k_seg_len = if k_pad == 0 { k_align } else { round_up(k_pad.div_ceil(segs0), k_align) };
        let k_segs = if k_pad == 0 { 1 } else { k_pad.div_ceil(k_seg_len) };
        Geometry { k, n, k_pad, n_pad, k_align, n_align, k_seg_len, k_segs, cores }
    }

    /// K range `(k0, len)` of segment `s`.
    pub const fn seg_range(&self, s: u32) -> (u32, u32) {
        let k0 = s * self.k_seg_len;
        let end = if k0 + self.k_seg_len < self.k_pad { k0 + self.k_seg_len } else { self.k_pad };
        (k0, end - k0)
    }

    /// N range `(n0, len)` given to core `c` (len 0 if it gets no tile).
    pub const fn core_range(&self, c: u32) -> (u32, u32) {
        let tiles = self.n_pad / self.n_align;
        let base = tiles / self.cores;
        let rem = tiles % self.cores;
        let mine = base + if c < rem { 1 } else { 0 };
        let before = c * base + if c < rem { c } else { rem };
        (before * self.n_align, mine * self.n_align)
    }

    /// Number of non-empty (segment, core) shards.
    pub const fn shard_count(&self) -> u32 {
        let mut busy = 0;
        let mut c = 0;
        while c < self.cores {
            if self.core_range(c).1 > 0 {
                busy += 1;
            }
            c += 1;
        }
        busy * self.k_segs
    }

    fn consistent(&self) -> bool {
        self.k_align > 0
            && self.n_align > 0
            && self.cores > 0
            && self.k_seg_len > 0
            && self.k_seg_len.is_multiple_of(self.k_align)
            && self.k_pad >= self.k
            && self.k_pad.is_multiple_of(self.k_align)
            && self.k_pad - self.k < self.k_align
            && self.n_pad >= self.n
            && self.n_pad.is_multiple_of(self.n_align)
            && self.n_pad - self.n < self.n_align
            && self.k_segs >= 1
            && (self.k_segs - 1) * self.k_seg_len < self.k_pad.max(1)
            && self.k_segs as u64 * self.k_seg_len as u64 >= self.k_pad as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiled_offsets_by_hand() {
        // int8 (N/32, K/32, 32, 32), K = 64, N = 64: tile (n/32, k/32) is 1024 bytes, n-major
        // over k-tiles: (k=0,n=0) → 0; (k=31,n=0) → 31; (k=0,n=1) → 32; (k=32,n=0) → 1024;
        // (k=0,n=32) → 2·1024 = 2048; (k=33,n=33) → (1·2+1)·1024 + 1·32 + 1 = 3105.
        let l = Layout::Tiled { n_tile: 32, k_tile: 32, elem: ElemType::I8 };
        let at = |k, n| l.byte_offset(k, n, 64, 64);
        assert_eq!(
            [at(0, 0), at(31, 0), at(0, 1), at(32, 0), at(0, 32), at(33, 33)],
            [0, 31, 32, 1024, 2048, 3105]
        );
        // fp16 (N/16, K/32, 16, 32), K = 64, N = 32: 512 elements = 1024 bytes per tile.
        let l = Layout::Tiled { n_tile: 16, k_tile: 32, elem: ElemType::F16 };
        let at = |k, n| l.byte_offset(k, n, 64, 32);
        assert_eq!(
            [at(1, 0), at(0, 1), at(32, 0), at(0, 16), at(63, 31)],
            [2, 64, 1024, 2048, 4094]
        );
        // int4 (N/64, K/32, 64, 32), K = 64, N = 64: a 32-K run is 16 bytes, tile 1024 bytes;
        // k even → low nibble.
        let l = Layout::Tiled { n_tile: 64, k_tile: 32, elem: ElemType::I4 };
        let at = |k, n| (l.byte_offset(k, n, 64, 64), l.high_nibble(k, n, 64, 64));
        assert_eq!(
            [at(0, 0), at(1, 0), at(2, 0), at(0, 1), at(32, 0), at(33, 63)],
            [(0, false), (0, true), (1, false), (16, false), (1024, false), (1024 + 63 * 16, true)]
        );
        // RK356x fp16 (N/8, K/16, 8, 16), K = 32, N = 8: (k=16, n=0) → tile 1 → 128 elements.
        let l = Layout::Tiled { n_tile: 8, k_tile: 16, elem: ElemType::F16 };
        assert_eq!(l.byte_offset(16, 0, 32, 8), 256);
        assert_eq!(l.byte_offset(0, 1, 32, 8), 32);
        // Row-major [N][K].
        let l = Layout::RowMajor { elem: ElemType::I4 };
        assert_eq!((l.byte_offset(3, 2, 64, 4), l.high_nibble(3, 2, 64, 4)), (65, true));
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(Scheme::parse(s.name()), Some(s));
        }
        assert_eq!(Scheme::parse("q4_0"), None);
    }
}
