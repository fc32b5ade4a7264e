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

use crate::error::Error;

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
