//! The kernel interface: what every kernel set (`portable.rs`, `x86_avx2.rs`, `aarch64_neon.rs`)
//! provides, as one table of function pointers ([`Kernels`]), and the shapes they share.
//!
//! A kernel call takes a [`Span`]: the channels of one N tile (native layouts, where the tile's
//! channels interleave inside every K tile) or of a run of rows (row-major), in groups of
//! [`INT_GROUP`] (int; one activation load feeds eight accumulators) or [`F16_GROUP`] (fp16).
//! The groups take turns over `rch` K runs, so together they read each K tile whole and in
//! order; partial sums stay in the kernel set's own vector form between turns ([`IntState`],
//! [`F16Lanes`]) and are reduced and scaled once per segment by the same set.
//!
//! Every entry is bit-exact to the reference executor ([`crate::exec`]): integer sums exactly
//! (the driver only sends segments where any order is exact), fp16 in the reference's
//! 16-lane order, activation quantization as [`crate::exec::quant`].

use crate::exec;

/// Elements per SIMD chunk of the integer kernels (and the unit of the int4 activation order).
pub const ACT_CHUNK: usize = 32;
/// Elements per chunk of the fp16 kernels (the reference's lane count).
pub const F16_CHUNK: usize = exec::F16_LANES;

/// Output channels per integer kernel group: eight accumulators share each activation load
/// (AVX2 has 16 vector registers, NEON 32). Divides every shipped N tile (8..64), so a group
/// never straddles a tile and its channels are a constant stride apart.
pub const INT_GROUP: usize = 8;
/// Output channels per fp16 kernel group.
pub const F16_GROUP: usize = 4;
/// Most channels in one span (and in one thread's range: their partial sums live on the
/// stack).
pub const CHUNK_MAX: usize = 64;
/// Most channel groups in one span.
#[cfg_attr(not(any(target_arch = "x86", target_arch = "x86_64")), allow(dead_code))]
pub const MAX_GROUPS: usize = CHUNK_MAX / F16_GROUP;

/// Partial integer sums of one [`INT_GROUP`] of channels in the form the kernel set keeps
/// them between turns (zeroed to start). Only the set's own `reduce_scale` reads it; integer
/// sums are exact in any order, so the set's lane split never changes a result.
pub type IntState = [[i32; 8]; INT_GROUP];
/// The reference's 16 fp16 partial-sum lanes of each channel of one [`F16_GROUP`]; the driver
/// folds them with [`crate::exec::f16_fold`].
pub type F16Lanes = [[f32; F16_CHUNK]; F16_GROUP];

/// Where one output channel's weights lie in a shard: `n_runs` runs of `run` contiguous
/// elements covering the segment's K in ascending order, run `r` starting `r · stride` bytes
/// after the channel's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// Elements per run.
    pub run: usize,
    /// Runs per channel.
    pub n_runs: usize,
    /// Bytes from one run's start to the next.
    pub stride: usize,
}

/// Channels `0..cnt` of one segment whose first bytes are `cs` apart (one N tile of a native
/// layout, or a run of row-major rows), walked in groups that take turns over `rch` K runs.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    /// Byte offset of channel 0 in the shard.
    pub first: usize,
    /// Bytes from one channel to the next.
    pub cs: usize,
    /// Channels in the span (1..=[`CHUNK_MAX`]).
    pub cnt: usize,
    /// Each channel's walk over the segment.
    pub walk: Walk,
    /// K runs per turn.
    pub rch: usize,
    /// Prefetch distance in bytes (a hint; the aarch64 kernels rely on the hardware's).
    #[cfg_attr(not(any(target_arch = "x86", target_arch = "x86_64")), allow(dead_code))]
    pub ahead: usize,
}

impl Span {
    /// First byte of channel `i`; channels past the span repeat the last one (full groups).
    #[inline(always)]
    pub fn base(&self, i: usize) -> usize {
        self.first + i.min(self.cnt - 1) * self.cs
    }

    /// The bases of group `g` of `N` channels, moved on by `r0` runs.
    #[inline(always)]
    pub fn group<const N: usize>(&self, g: usize, r0: usize) -> [usize; N] {
        core::array::from_fn(|c| self.base(g * N + c) + r0 * self.walk.stride)
    }

    /// Calls `f(group, bases, walk of the turn, first K element of the turn)` in walk order:
    /// run chunks outer, groups inner (the kernel sets without a fused loop use this).
    #[inline(always)]
    pub fn for_each<const N: usize>(&self, mut f: impl FnMut(usize, [usize; N], Walk, usize)) {
        let w = self.walk;
        let mut r0 = 0;
        while r0 < w.n_runs {
            let nr = self.rch.min(w.n_runs - r0);
            for g in 0..self.cnt.div_ceil(N) {
                f(g, self.group::<N>(g, r0), Walk { n_runs: nr, ..w }, r0 * w.run);
            }
            r0 += nr;
        }
    }
}

/// Index of element `k` in the int4 activation order: per 32-element chunk the 16 even k
/// first, then the 16 odd k (what a nibble split of 16 packed bytes yields).
#[inline(always)]
pub fn i4_perm(k: usize) -> usize {
    let (c, j) = (k / ACT_CHUNK, k % ACT_CHUNK);
    c * ACT_CHUNK + (j % 2) * (ACT_CHUNK / 2) + j / 2
}

/// [`Kernels::int_span`]'s signature.
pub type IntSpanFn =
    unsafe fn(i4: bool, check: bool, w: &[u8], sp: &Span, a: &[i8], st: &mut [IntState]) -> u32;

/// One kernel set. Every entry is `unsafe` to call: the CPU must run the set (tables are only
/// handed out for an available [`super::Isa`]), and every walk of a span must lie inside `w`
/// with the activation at least `n_runs · run` long (the driver checks both).
pub struct Kernels {
    /// The backend's name with this set (`cpu-…`).
    pub name: &'static str,
    /// Adds every channel's exact integer sum over the span to `st` (one [`IntState`] per
    /// group; `a`: the segment's codes, int4 in [`i4_perm`] order). With `check` (int4, a
    /// segment of 586..=668), returns the mask of groups holding a −8 weight code, whose
    /// states are then unspecified: only the reference's checked loop knows whether its i16
    /// sum overflowed. Otherwise returns 0.
    pub int_span: IntSpanFn,
    /// Adds a group's channels to `v` (≤ [`INT_GROUP`]) as the reference does, elementwise:
    /// `v += (Σ as f32 · s_a) · s_w`, the sums read from a state `int_span` filled.
    pub reduce_scale:
        unsafe fn(st: &IntState, i4: bool, s_a: f32, s_w: &[f32; INT_GROUP], v: &mut [f32]),
    /// Every channel's fp16 dot over the span in the reference's 16-lane order, continuing
    /// `lanes` (one entry per group).
    pub f16_span: unsafe fn(w: &[u8], sp: &Span, a: &[f32], lanes: &mut [F16Lanes]),
    /// [`crate::exec::quant::absmax`] exactly.
    pub absmax: unsafe fn(v: &[f32]) -> f32,
    /// Codes of `v` for a scale `s > 0` ([`crate::exec::quant::quantize`] exactly), code `i`
    /// written to `out[i]` (int4: `out[i4_perm(i)]`) when in range; returns the codes' sum.
    pub quantize: unsafe fn(v: &[f32], s: f32, qmax: i32, out: &mut [i8], i4: bool) -> i32,
}
