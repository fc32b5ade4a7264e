//! The fast CPU backend, [`CpuFast`]: SIMD kernels over the packed blob in its native layout,
//! bit-exact to the reference executors ([`crate::exec`]), optionally multithreaded.
//!
//! **What it computes.** Exactly [`crate::exec::matmul`]: the same activation preparation
//! (the reference's own rotate / round / quantize functions, row by row), integer dot
//! products that are exact in any order (so they are vectorized freely along K), the fp16
//! pipeline in the reference's 16-lane f32 order (`exec` module docs: the order is defined so
//! that 256-bit, 512-bit and 4×128-bit units compute it natively), `(acc · s_a) · s_w`
//! partials summed over K segments in ascending order. int4 keeps the reference's i16
//! semantics: a segment short enough that no prefix can leave i16 (`56·K_seg ≤ 32 767`, or
//! `49·K_seg` when the channel holds no −8 code) runs the SIMD kernel, anything else the
//! reference's checked scalar loop, so results and overflow errors are identical.
//!
//! **No unpacking, no cache, no allocation per call.** Kernels walk each output channel's
//! weights where the packer put them: a channel of a shard is `n_runs` contiguous runs of
//! `k_run` elements (`Layout::k_run`: the K tile of RKNPU layouts, the whole segment in
//! row-major), a fixed stride apart ([`Walk`]). Prepared activations (i8 codes and per-segment
//! scales, or f16-rounded f32) go into the caller's scratch
//! ([`crate::backend::Backend::scratch_len`]); with more scratch than one row needs, rows are
//! prepared in blocks and every weight block is read once per block of rows (prefill).
//!
//! **Walk order = memory order.** Decode streams every weight byte once, so the kernels read
//! the blob front to back. A kernel call takes a `Span`: the channels of one N tile (native
//! layouts, where the tile's channels interleave inside every K tile) or of a run of rows
//! (row-major), in groups of eight (int; one activation load feeds eight accumulators) or four
//! (fp16). The groups take turns over one K tile (`RUN_CHUNK`), so together they read each
//! K tile whole and in order; partial sums stay in vector form between turns (`IntState`,
//! fp16 lanes) and are reduced and scaled once per segment. The AVX2 file adds the two
//! common cases as straight loops: K tiles of 32 whose channels lie back to back (RKNPU int8
//! and int4, RK3588 fp16) and back-to-back row-major rows (the `cpu` target). Measured on
//! the development machine (Zen 4 VM, one thread, weights from DRAM): walking a tile group by
//! group over 8 K tiles read 35–60% slower than front to back; prefetching 4 KiB ahead added
//! 10–30%.
//!
//! **ISA dispatch.** [`Isa::detect`] picks, at run time, the best kernel set this CPU runs:
//! AVX2+F16C on x86/x86-64 (`is_x86_feature_detected!` with `std`; without `std`, CPUID and
//! XGETBV, so the OS saving of YMM state is checked too), NEON on aarch64 (always present
//! there), else the portable kernels. Any [`Isa`] the CPU supports can be forced
//! ([`CpuFast::with_isa`]) — the tests run every one against the reference. Layouts whose K
//! runs are not whole SIMD chunks (none of the shipped targets) go to the reference executor.
//!
//! **Threads** (`std` only): [`CpuFast::with_threads`] starts a persistent pool once. A matmul
//! splits N the way the NPU splits it across cores, in whole N tiles (`Geometry::n_align`):
//! work items of about 64 channels that the threads claim from a shared counter (so a thread
//! the OS did not schedule in time costs nothing on a busy machine). Every output value is
//! computed by exactly one thread with the same operations, so the result does not depend on
//! the thread count or on who took which item (tested). Without `std` it is single-threaded.
//!
//! Files: `portable.rs` (every target; also the checked fallbacks), `x86_avx2.rs`,
//! `aarch64_neon.rs`, `pool.rs`.

#[cfg(target_arch = "aarch64")]
mod aarch64_neon;
#[cfg(feature = "std")]
mod pool;
mod portable;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod x86_avx2;

use crate::backend::{Backend, PackedWeight};
use crate::error::Error;
use crate::exec::{self, quant, rotate};
use crate::format::{Layout, Pipeline, TensorDesc, TensorKind};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Elements per SIMD chunk of the integer kernels (and the unit of the int4 activation order).
pub const ACT_CHUNK: usize = 32;
/// Elements per chunk of the fp16 kernels (the reference's lane count).
pub const F16_CHUNK: usize = exec::F16_LANES;

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

/// A kernel set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, every CPU.
    Portable,
    /// x86 / x86-64 with AVX2 and F16C.
    Avx2,
    /// aarch64 Advanced SIMD.
    Neon,
    /// aarch64 Advanced SIMD with the dot-product extension (`sdot`; Armv8.2 optional, Armv8.4
    /// mandatory; the RK3588's Cortex-A76 and A55 have it).
    NeonDot,
}

impl Isa {
    /// Every kernel set, best last.
    pub const ALL: [Isa; 4] = [Isa::Portable, Isa::Avx2, Isa::Neon, Isa::NeonDot];

    /// Short name.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::NeonDot => "neon-dot",
        }
    }

    /// Whether this CPU (and OS) runs it.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2 => x86_avx2_available(),
            Isa::Neon => cfg!(target_arch = "aarch64"),
            Isa::NeonDot => aarch64_dotprod_available(),
        }
    }

    /// The best kernel set available here.
    pub fn detect() -> Isa {
        [Isa::Avx2, Isa::NeonDot, Isa::Neon]
            .into_iter()
            .find(|i| i.available())
            .unwrap_or(Isa::Portable)
    }
}

/// With `std`, the OS's report (HWCAP on Linux); without, only what the build enables
/// (`-C target-feature=+dotprod`): reading the ID registers from user mode is not portable.
fn aarch64_dotprod_available() -> bool {
    #[cfg(all(target_arch = "aarch64", feature = "std"))]
    let on = std::arch::is_aarch64_feature_detected!("dotprod");
    #[cfg(not(all(target_arch = "aarch64", feature = "std")))]
    let on = cfg!(all(target_arch = "aarch64", target_feature = "dotprod"));
    on
}

#[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), feature = "std"))]
fn x86_avx2_available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
}

/// Without std: CPUID leaf 1 (OSXSAVE, AVX, F16C) and leaf 7 (AVX2), and XCR0 bits 1–2 (the OS
/// saves XMM and YMM state). Only on targets with hardware floating point (soft-float
/// kernels such as `x86_64-unknown-none` must not touch vector registers).
#[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), not(feature = "std")))]
fn x86_avx2_available() -> bool {
    #[cfg(target_feature = "sse2")]
    {
        #[cfg(target_arch = "x86")]
        use core::arch::x86::{__cpuid, __cpuid_count, _xgetbv};
        #[cfg(target_arch = "x86_64")]
        use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
        // SAFETY: CPUID exists on every x86-64 CPU (and every x86 with SSE2); XGETBV is only
        // executed after CPUID says the OS enabled it (OSXSAVE).
        unsafe {
            if __cpuid(0).eax < 7 {
                return false;
            }
            let l1 = __cpuid(1);
            let (osxsave, avx, f16c) =
                (l1.ecx >> 27 & 1 == 1, l1.ecx >> 28 & 1 == 1, l1.ecx >> 29 & 1 == 1);
            if !(osxsave && avx && f16c) {
                return false;
            }
            let xcr0 = xgetbv0();
            let avx2 = __cpuid_count(7, 0).ebx >> 5 & 1 == 1;
            return avx2 && xcr0 & 0b110 == 0b110;

            #[target_feature(enable = "xsave")]
            unsafe fn xgetbv0() -> u64 {
                _xgetbv(0)
            }
        }
    }
    #[allow(unreachable_code)]
    false
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn x86_avx2_available() -> bool {
    false
}

/// The fast CPU backend (see the module docs).
pub struct CpuFast {
    isa: Isa,
    #[cfg(feature = "std")]
    pool: Option<pool::Pool>,
}

impl core::fmt::Debug for CpuFast {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CpuFast").field("isa", &self.isa).field("threads", &self.threads()).finish()
    }
}

impl Default for CpuFast {
    fn default() -> Self {
        CpuFast::new()
    }
}

impl CpuFast {
    /// Single-threaded, with the best kernels this CPU runs ([`Isa::detect`]).
    pub fn new() -> CpuFast {
        CpuFast {
            isa: Isa::detect(),
            #[cfg(feature = "std")]
            pool: None,
        }
    }

    /// Single-threaded with the given kernel set; an error if this CPU cannot run it.
    pub fn with_isa(isa: Isa) -> Result<CpuFast, Error> {
        if !isa.available() {
            return Err(Error::Backend("instruction set not available on this CPU"));
        }
        let mut b = CpuFast::new();
        b.isa = isa;
        Ok(b)
    }

    /// The same backend running on `threads` threads in all (the caller's included), from a
    /// pool started now and kept for the backend's life. `threads ≤ 1` means no pool.
    #[cfg(feature = "std")]
    pub fn with_threads(mut self, threads: usize) -> std::io::Result<CpuFast> {
        self.pool = if threads > 1 { Some(pool::Pool::new(threads)?) } else { None };
        Ok(self)
    }

    /// The kernel set in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Threads a matmul may use.
    pub fn threads(&self) -> usize {
        #[cfg(feature = "std")]
        if let Some(p) = &self.pool {
            return p.threads();
        }
        1
    }

    /// Runs `job` on the pool's threads (each call shares out the job's work items), or once
    /// on this thread.
    fn run(&self, parallel: bool, job: &(dyn Fn() + Sync)) -> Result<(), Error> {
        #[cfg(feature = "std")]
        if let (true, Some(p)) = (parallel, &self.pool) {
            return if p.run(job) {
                Ok(())
            } else {
                Err(Error::Backend("a matmul worker thread panicked"))
            };
        }
        let _ = parallel;
        job();
        Ok(())
    }
}

/// f32 scratch elements one prepared activation row of `desc` takes, and the fixed part.
fn scratch_parts(desc: &TensorDesc<'_>) -> (usize, usize) {
    let g = desc.geom;
    let kp = g.k_pad as usize;
    match desc.pipeline {
        Some(Pipeline::F16F16F32) => (kp, 0),
        // codes (k_pad bytes) + one scale per segment; plus one f32 work row.
        _ => (kp.div_ceil(4) + g.k_segs as usize, kp),
    }
}

/// f32 scratch elements [`CpuFast`] needs to prepare `rows` activation rows at once for
/// `desc` (it works with any amount ≥ one row; more lets prefill read weights fewer times).
pub fn scratch_len_rows(desc: &TensorDesc<'_>, rows: usize) -> usize {
    let (per, fixed) = scratch_parts(desc);
    // The reference fallback needs one padded row; never ask for less.
    (fixed + per * rows.max(1)).max(exec::scratch_len(desc))
}

/// Whether the layout's K runs are whole SIMD chunks for every segment (true for every
/// shipped target); otherwise the reference executor runs the tensor.
fn simd_friendly(desc: &TensorDesc<'_>, p: Pipeline) -> bool {
    let g = desc.geom;
    let chunk = if p == Pipeline::F16F16F32 { F16_CHUNK } else { ACT_CHUNK };
    let layout_ok = match desc.layout {
        Layout::Tiled { k_tile, .. } => (k_tile as usize).is_multiple_of(chunk),
        Layout::RowMajor { .. } => true,
    };
    layout_ok
        && (g.k_align as usize).is_multiple_of(chunk)
        && (g.k_seg_len as usize).is_multiple_of(chunk)
}

/// Views f32 scratch as bytes for i8 codes.
fn as_i8(v: &mut [f32]) -> &mut [i8] {
    // SAFETY: i8 has alignment 1 and every bit pattern is a valid i8 and a valid f32; the
    // length covers exactly the same bytes; the borrow is carried over.
    unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut i8, v.len() * 4) }
}

/// The activation side of one block of rows, prepared.
struct Prepared<'p> {
    /// fp16: `[rows][k_pad]` rounded values.
    f: &'p [f32],
    /// int: `[rows][row_bytes]` codes (int4: in [`portable::i4_perm`] order per chunk).
    q: &'p [i8],
    /// Bytes per row of `q`.
    row_bytes: usize,
    /// int: `[rows][k_segs]` activation scales.
    s_a: &'p [f32],
}

/// A raw output pointer shared by the threads of one matmul; each writes disjoint elements.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: threads write disjoint indices (each output channel belongs to one thread), and
// the matmul does not return before they are done.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    #[inline]
    fn set(&self, i: usize, v: f32) {
        if i < self.len {
            // SAFETY: in bounds; disjoint per thread (see the type's docs).
            unsafe { self.ptr.add(i).write(v) }
        }
    }
}

/// Most activation rows prepared and run against one weight block at once.
pub const MAX_BLOCK_ROWS: usize = 16;

/// Most output channels one thread accumulates at a time (its partial sums live on the stack).
const CHUNK_MAX: usize = 64;

/// Output channels per integer kernel call: eight accumulators share each activation load
/// (AVX2 has 16 vector registers, NEON 32). Divides every shipped N tile (8..64), so a group
/// never straddles a tile and its channels are a constant stride apart.
const INT_GROUP: usize = 8;
/// Partial integer sums of one [`INT_GROUP`] of channels, in the form the kernel set keeps
/// them between turns (zeroed to start): channel `c`'s sum is the wrapping sum of `st[c]`'s
/// eight lanes, except for the AVX2 int4 kernel, which keeps its registers as they are
/// (`x86_avx2::i4_span`). [`reduce_scale`] knows both. Integer sums are exact in any order, so the
/// lane split never changes a result.
pub(crate) type IntState = [[i32; 8]; INT_GROUP];

/// Output channels per fp16 kernel call (two 8-lane accumulators each).
const F16_GROUP: usize = 4;
/// K runs (tiles of the native layouts) per turn when a segment has several: the groups of one
/// N tile take turns, so together they read `RUN_CHUNK` whole tiles in order. One: a
/// strided walk of 8 tiles per group read 35–60% slower from DRAM than a linear one on the
/// development machine (Zen 4), one tile per turn as fast as linear.
const RUN_CHUNK: usize = 1;

/// Prefetch distance of the x86 kernels, bytes: any distance covers every line (each turn's
/// loads tile a contiguous block); 4 KiB was among the best on the development machine.
const PREFETCH_AHEAD: usize = 4096;

/// Most channel groups in one span.
#[cfg_attr(not(any(target_arch = "x86", target_arch = "x86_64")), allow(dead_code))]
pub(crate) const MAX_GROUPS: usize = CHUNK_MAX / F16_GROUP;

/// Everything a thread needs for one block of rows.
struct Block<'a> {
    isa: Isa,
    desc: &'a TensorDesc<'a>,
    blob: &'a [u8],
    p: Pipeline,
    prep: Prepared<'a>,
    /// Rows in this block (≤ [`MAX_BLOCK_ROWS`]), and the first row's index in the matmul.
    rows: usize,
    row0: usize,
    y: Out,
    /// Smallest `row · k_segs + seg` that overflowed, `usize::MAX` if none.
    err: &'a AtomicUsize,
    /// A walk left its shard (cannot happen after `TensorDesc::check`; kept as an error).
    bad: &'a AtomicBool,
    /// Next chunk to claim.
    next: AtomicUsize,
}

impl Block<'_> {
    /// Work items: runs of whole N tiles (the NPU's unit of the core split), about 64 output
    /// channels each.
    fn chunk_tiles(&self) -> usize {
        64usize.div_ceil(self.desc.geom.n_align as usize).max(1)
    }

    fn chunks(&self) -> usize {
        let g = self.desc.geom;
        ((g.n_pad / g.n_align) as usize).div_ceil(self.chunk_tiles())
    }

    /// Claims chunks until none are left. Whichever thread takes a chunk computes its
    /// channels with the same operations.
    fn run(&self) {
        let g = self.desc.geom;
        let na = g.n_align as usize;
        let busy = (0..g.cores).filter(|&c| g.core_range(c).1 > 0).count();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.chunks() {
                return;
            }
            let c0 = (i * self.chunk_tiles() * na).min(g.n as usize);
            let c1 = ((i + 1) * self.chunk_tiles() * na).min(g.n as usize);
            for core in 0..busy {
                let (n0, nl) = g.core_range(core as u32);
                let (mut a, b) = (c0.max(n0 as usize), c1.min((n0 + nl) as usize));
                while a < b {
                    let e = b.min(a + CHUNK_MAX);
                    // Stack arrays sized for the case at hand (decode: one row; integer or fp16
                    // partial sums): zeroing bigger ones for every range showed up in profiles.
                    const IG: usize = CHUNK_MAX / INT_GROUP;
                    const FG: usize = CHUNK_MAX / F16_GROUP;
                    let (n0, f16) = (n0 as usize, self.p == Pipeline::F16F16F32);
                    match (self.rows == 1, f16) {
                        (true, false) => self.channels::<1, IG, 0>(core, busy, n0, a, e),
                        (true, true) => self.channels::<1, 0, FG>(core, busy, n0, a, e),
                        (false, false) => {
                            self.channels::<MAX_BLOCK_ROWS, IG, 0>(core, busy, n0, a, e)
                        }
                        (false, true) => {
                            self.channels::<MAX_BLOCK_ROWS, 0, FG>(core, busy, n0, a, e)
                        }
                    }
                    a = e;
                }
            }
        }
    }

    /// Channels `c0..c1` (≤ [`CHUNK_MAX`], all in core `core`'s shards) for every row of the
    /// block (`R`: most rows). Segments outer (shard, walk, bounds and scales set up once per
    /// segment). Inside a segment the channels go in spans of one N tile (row-major: one
    /// group), and the span's groups of [`INT_GROUP`] / [`F16_GROUP`] channels take turns
    /// over [`RUN_CHUNK`] K runs: in the native layouts a tile's channels interleave within
    /// every K tile, so this reads each tile front to back instead of in one strided pass per
    /// group. Each output sums its segment partials in ascending order.
    /// `IG` / `FG`: integer / fp16 group slots (the other is 0).
    fn channels<const R: usize, const IG: usize, const FG: usize>(
        &self,
        core: usize,
        busy: usize,
        n0: usize,
        c0: usize,
        c1: usize,
    ) {
        let g = self.desc.geom;
        let n = g.n as usize;
        let segs = g.k_segs as usize;
        let rows = self.rows.min(R);
        let width = c1 - c0;
        // [row][channel] partial sums of this range.
        let mut vals = [[0f32; CHUNK_MAX]; R];
        // Per span: int partial sums [row][group]; fp16 lanes [group][channel] of one row.
        let mut acc = [[[[0i32; 8]; INT_GROUP]; IG]; R];
        let mut lanes = [[[0f32; F16_CHUNK]; F16_GROUP]; FG];
        let layout = self.desc.layout;
        let int = self.p != Pipeline::F16F16F32;
        let i4 = self.p == Pipeline::I4I4I16;
        let group = if int { INT_GROUP } else { F16_GROUP };
        for seg in 0..segs {
            let sh = self.desc.shards.get(seg * busy + core);
            let Some((sh, bytes)) =
                sh.and_then(|sh| Some((sh, self.desc.shard_bytes(self.blob, sh).ok()?)))
            else {
                self.bad.store(true, Ordering::Relaxed);
                return;
            };
            let (kl, n_len) = (sh.k_len as usize, sh.n_len as usize);
            let k0 = sh.k0 as usize;
            let run = layout.k_run(kl).max(1);
            let n_runs = kl / run;
            let stride = if n_runs > 1 {
                layout.byte_offset(run, c0 - n0, kl, n_len)
                    - layout.byte_offset(0, c0 - n0, kl, n_len)
            } else {
                0
            };
            let walk = Walk { run, n_runs, stride };
            let last = (n_runs.max(1) - 1) * stride + run * layout.elem().bits() / 8;
            // Channel offsets grow with n in every layout: the last channel bounds them all.
            let end = layout.byte_offset(0, c1 - 1 - n0, kl, n_len) + last;
            if n_runs * run != kl || end > bytes.len() {
                self.bad.store(true, Ordering::Relaxed);
                return;
            }
            // This segment's scales for the range, read once.
            let scales = if int {
                let at = self.desc.scales.offset as usize + 4 * (seg * g.n_pad as usize + c0);
                match self.blob.get(at..at + 4 * width) {
                    Some(b) => b,
                    None => {
                        self.bad.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            } else {
                &[]
            };
            // Bytes from one channel's first byte to the next one's inside an N tile (the
            // whole layout for row-major).
            let cs = layout.byte_offset(0, 1, kl, n_len.max(2))
                - layout.byte_offset(0, 0, kl, n_len.max(2));
            let (tile, rch) = match layout {
                Layout::Tiled { n_tile, .. } if n_runs > 1 => ((n_tile as usize).max(1), RUN_CHUNK),
                _ => (CHUNK_MAX, n_runs.max(1)),
            };
            let ahead = PREFETCH_AHEAD;
            let mut c = c0;
            while c < c1 {
                let mut span_end = (n0 + ((c - n0) / tile + 1) * tile).min(c1);
                let first = layout.byte_offset(0, c - n0, kl, n_len);
                // Offsets grow by at least `cs` per channel, so first-to-last equal to
                // (cnt − 1)·cs means every step is `cs` (true of every shipped layout inside
                // a tile); otherwise, one channel at a time.
                if layout.byte_offset(0, span_end - 1 - n0, kl, n_len) - first
                    != (span_end - 1 - c) * cs
                {
                    span_end = c + 1;
                }
                let sp = Span { first, cs, cnt: span_end - c, walk, rch, ahead };
                let ngroups = sp.cnt.div_ceil(group);
                let col0 = c - c0;
                if int {
                    let checked_all = if i4 { 49 * kl > I16_MAX } else { kl > I8_SAFE_K };
                    let check = i4 && 56 * kl > I16_MAX;
                    let rb = self.prep.row_bytes;
                    let mut failed = if checked_all { u32::MAX } else { 0 };
                    for (r, acc) in acc.iter_mut().enumerate().take(rows) {
                        let Some(st) = acc.get_mut(..ngroups) else {
                            self.bad.store(true, Ordering::Relaxed);
                            return;
                        };
                        st.fill([[0; 8]; INT_GROUP]);
                        if !checked_all {
                            let a = &self.prep.q[r * rb + k0..r * rb + k0 + kl];
                            failed |= int_span(self.isa, i4, check, bytes, &sp, a, st);
                        }
                    }
                    #[allow(clippy::needless_range_loop)]
                    // gi indexes acc[r], scales and the failure mask alike
                    for gi in 0..ngroups {
                        let col = col0 + gi * group;
                        let cnt = (sp.cnt - gi * group).min(group);
                        let bad = failed >> gi & 1 == 1;
                        let mut s_w = [0f32; INT_GROUP];
                        for (i, s) in s_w.iter_mut().enumerate().take(cnt) {
                            let b = &scales[4 * (col + i)..4 * (col + i) + 4];
                            *s = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        }
                        for r in 0..rows {
                            let s_a = self.prep.s_a[r * segs + seg];
                            let v = &mut vals[r][col..col + cnt];
                            if !bad {
                                reduce_scale(self.isa, i4, &acc[r][gi], s_a, &s_w, v);
                                continue;
                            }
                            let a = &self.prep.q[r * rb + k0..r * rb + k0 + kl];
                            for (i, v) in v.iter_mut().enumerate() {
                                match int_checked(i4, bytes, sp.base(gi * group + i), walk, a) {
                                    // Elementwise as the reference: `y += (acc · s_a) · s_w`.
                                    Some(q) => *v += q as f32 * s_a * s_w[i],
                                    None => {
                                        self.err.fetch_min(
                                            (self.row0 + r) * segs + seg,
                                            Ordering::Relaxed,
                                        );
                                    }
                                }
                            }
                        }
                    }
                } else {
                    let kp = g.k_pad as usize;
                    for (r, vals) in vals.iter_mut().enumerate().take(rows) {
                        let Some(lanes) = lanes.get_mut(..ngroups) else {
                            self.bad.store(true, Ordering::Relaxed);
                            return;
                        };
                        lanes.fill([[0.0; F16_CHUNK]; F16_GROUP]);
                        f16_span(
                            self.isa,
                            bytes,
                            &sp,
                            &self.prep.f[r * kp + k0..r * kp + k0 + kl],
                            lanes,
                        );
                        for (i, v) in vals[col0..col0 + sp.cnt].iter_mut().enumerate() {
                            *v += exec::f16_fold(lanes[i / F16_GROUP][i % F16_GROUP]);
                        }
                    }
                }
                c = span_end;
            }
        }
        for (r, vals) in vals.iter().enumerate().take(rows) {
            for (i, &v) in vals[..width].iter().enumerate() {
                self.y.set((self.row0 + r) * n + c0 + i, v);
            }
        }
    }
}

/// i16::MAX, as the bound of int4 partial sums.
const I16_MAX: usize = i16::MAX as usize;
/// Longest int8 segment whose sum cannot leave i32 in any order: |Σ| ≤ 127·128·K.
const I8_SAFE_K: usize = (i32::MAX / (127 * 128)) as usize;

/// One channel's integer sum by the reference's own checked loop (`None` where it reports
/// an overflow): segments too long for the exactness arguments of the SIMD kernels.
fn int_checked(i4: bool, w: &[u8], base: usize, walk: Walk, a: &[i8]) -> Option<i32> {
    if i4 {
        portable::i4_checked(w, base, walk, a).map(i32::from)
    } else {
        portable::i8_checked(w, base, walk, a)
    }
}

/// Adds the channels of an [`IntState`] that [`int_span`] filled to `v` (≤ [`INT_GROUP`]) as
/// the reference does, elementwise: `v += (Σ as f32 · s_a) · s_w`.
#[inline]
fn reduce_scale(
    isa: Isa,
    i4: bool,
    st: &IntState,
    s_a: f32,
    s_w: &[f32; INT_GROUP],
    v: &mut [f32],
) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if isa == Isa::Avx2 {
        // SAFETY: Isa::Avx2 is only constructed when available.
        return unsafe { x86_avx2::reduce_scale(st, i4, s_a, s_w, v) };
    }
    let _ = (isa, i4);
    for (i, v) in v.iter_mut().enumerate() {
        let q = st[i].iter().fold(0i32, |s, &l| s.wrapping_add(l));
        *v += q as f32 * s_a * s_w[i];
    }
}

/// Channels `0..cnt` of one segment whose first bytes are `cs` apart (one N tile of a native
/// layout, or a run of row-major rows), walked in groups that take turns over `rch` K runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    /// Byte offset of channel 0 in the shard.
    pub first: usize,
    /// Bytes from one channel to the next.
    pub cs: usize,
    /// Channels in the span (≥ 1).
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
    fn for_each<const N: usize>(&self, mut f: impl FnMut(usize, [usize; N], Walk, usize)) {
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

/// Adds every channel's exact integer sum over the span to `st` (one [`IntState`] per group
/// of [`INT_GROUP`]). Returns a bit mask of the groups whose sums may not be the reference's
/// and must be redone by its checked loop.
///
/// int8: the caller ruled out i32 overflow (`K ≤` [`I8_SAFE_K`]), so any order is exact.
/// int4: codes are in [−7, 7] (activations) and [−8, 7] (weights), so no i16 prefix of the
/// reference's sum can overflow when 56·K ≤ 32 767, or when 49·K ≤ 32 767 and no weight is −8:
/// then any order gives its value. The caller sends longer segments to the checked loop; with
/// `check` (K in 586..=668) a group holding a −8 weight is reported (found inside the kernel,
/// no extra pass). The packer's grid is [−7, 7] and it caps int4 segments at 640, so packed
/// models never leave the SIMD path; hand-built blobs can.
fn int_span(
    isa: Isa,
    i4: bool,
    check: bool,
    w: &[u8],
    sp: &Span,
    a: &[i8],
    st: &mut [IntState],
) -> u32 {
    match isa {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        // SAFETY: Isa::Avx2 is only constructed when available; the caller checked every walk
        // of the span against the shard and `a` is the segment's activation.
        Isa::Avx2 => unsafe {
            match (i4, check) {
                (false, _) => {
                    x86_avx2::i8_span(w, sp, a, st);
                    0
                }
                (true, false) => x86_avx2::i4_span::<false>(w, sp, a, st),
                (true, true) => x86_avx2::i4_span::<true>(w, sp, a, st),
            }
        },
        _ => {
            let mut failed = 0u32;
            sp.for_each::<INT_GROUP>(|g, base, walk, k| {
                let a = &a[k..];
                let st = &mut st[g];
                if i4
                    && check
                    && failed >> g & 1 == 0
                    && base.iter().any(|&b| portable::i4_has_min(w, b, walk))
                {
                    failed |= 1 << g;
                }
                match isa {
                    #[cfg(target_arch = "aarch64")]
                    // SAFETY: NEON is architectural on aarch64; walks checked by the caller.
                    Isa::Neon => unsafe {
                        if i4 {
                            aarch64_neon::i4x8(w, base, walk, a, st)
                        } else {
                            aarch64_neon::i8x8(w, base, walk, a, st)
                        }
                    },
                    #[cfg(target_arch = "aarch64")]
                    // SAFETY: Isa::NeonDot is only constructed when the CPU has `sdot`.
                    Isa::NeonDot => unsafe {
                        if i4 {
                            aarch64_neon::i4x8_dot(w, base, walk, a, st)
                        } else {
                            aarch64_neon::i8x8_dot(w, base, walk, a, st)
                        }
                    },
                    _ => {
                        for (s, b) in st.iter_mut().zip(base) {
                            let v = if i4 {
                                portable::i4_dot(w, b, walk, a)
                            } else {
                                portable::i8_dot(w, b, walk, a)
                            };
                            s[0] = s[0].wrapping_add(v);
                        }
                    }
                }
            });
            failed
        }
    }
}

/// Every channel's fp16 dot over the span, continuing its 16 lanes in `lanes` (one entry per
/// group of [`F16_GROUP`]).
fn f16_span(isa: Isa, w: &[u8], sp: &Span, a: &[f32], lanes: &mut [[[f32; F16_CHUNK]; F16_GROUP]]) {
    match isa {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        // SAFETY: as in int_span.
        Isa::Avx2 => unsafe { x86_avx2::f16_span(w, sp, a, lanes) },
        _ => sp.for_each::<F16_GROUP>(|g, base, walk, k| {
            let a = &a[k..];
            match isa {
                #[cfg(target_arch = "aarch64")]
                // SAFETY: as in int_span.
                Isa::Neon | Isa::NeonDot => unsafe {
                    aarch64_neon::f16x4(w, base, walk, a, &mut lanes[g])
                },
                _ => {
                    for (b, l) in base.iter().zip(lanes[g].iter_mut()) {
                        portable::f16_lanes(w, *b, walk, a, l);
                    }
                }
            }
        }),
    }
}

/// One activation segment's scale and codes (into `dst`, int4 in [`portable::i4_perm`] order)
/// exactly as [`exec::matmul`] computes them; returns the scale and the codes' sum.
fn quantize_segment(isa: Isa, a: &[f32], qmax: i32, dst: &mut [i8], i4: bool) -> (f32, i32) {
    let perm = |i: usize| if i4 { portable::i4_perm(i) } else { i };
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if isa == Isa::Avx2 {
        // SAFETY: Isa::Avx2 is only constructed when the CPU runs AVX2.
        let s = quant::scale_for(unsafe { x86_avx2::absmax(a) }, qmax);
        if s == 0.0 {
            dst.fill(0);
            return (s, 0);
        }
        // SAFETY: as above.
        return (s, unsafe { x86_avx2::quantize(a, s, qmax, dst, perm) });
    }
    let _ = isa;
    let s = quant::scale_for(quant::absmax(a), qmax);
    let mut sum = 0i32;
    for (i, &v) in a.iter().enumerate() {
        let c = quant::quantize(v, s, qmax);
        sum += c;
        if let Some(o) = dst.get_mut(perm(i)) {
            *o = c as i8;
        }
    }
    (s, sum)
}

/// Prepares rows `x` (`[rows][K]`) into `prep` as [`exec::matmul`] prepares them.
fn prepare<'s>(
    isa: Isa,
    desc: &TensorDesc<'_>,
    p: Pipeline,
    x: &[f32],
    rows: usize,
    scratch: &'s mut [f32],
) -> Prepared<'s> {
    let g = desc.geom;
    let (k, kp, segs) = (g.k as usize, g.k_pad as usize, g.k_segs as usize);
    if p == Pipeline::F16F16F32 {
        let f = &mut scratch[..rows * kp];
        for (row, buf) in f.chunks_exact_mut(kp).enumerate() {
            buf[..k].copy_from_slice(&x[row * k..(row + 1) * k]);
            buf[k..].fill(0.0);
            if let Some(rot) = desc.rotation {
                rotate::rotate(rot, buf);
            }
            buf.iter_mut().for_each(|v| *v = quant::to_f16_and_back(*v));
        }
        return Prepared { f, q: &[], row_bytes: 0, s_a: &[] };
    }
    let qmax = p.qmax();
    let cpr = kp.div_ceil(4);
    let (qf, rest) = scratch.split_at_mut(rows * cpr);
    let (s_a, rest) = rest.split_at_mut(rows * segs);
    let work = &mut rest[..kp];
    let q = as_i8(qf);
    let row_bytes = cpr * 4;
    for row in 0..rows {
        work[..k].copy_from_slice(&x[row * k..(row + 1) * k]);
        work[k..].fill(0.0);
        if let Some(rot) = desc.rotation {
            rotate::rotate(rot, work);
        }
        let qrow = &mut q[row * row_bytes..row * row_bytes + kp];
        for seg in 0..segs {
            let (k0, kl) = g.seg_range(seg as u32);
            let (k0, kl) = (k0 as usize, kl as usize);
            let a = &work[k0..k0 + kl];
            let dst = &mut qrow[k0..k0 + kl];
            let i4 = p == Pipeline::I4I4I16;
            s_a[row * segs + seg] = quantize_segment(isa, a, qmax, dst, i4).0;
        }
    }
    Prepared { f: &[], q, row_bytes, s_a }
}

/// Below this many multiply-adds a matmul stays on the calling thread (waking workers costs
/// more than it saves).
const PARALLEL_MIN_MACS: usize = 1 << 16;

impl Backend for CpuFast {
    fn name(&self) -> &'static str {
        match self.isa {
            Isa::Portable => "cpu-portable",
            Isa::Avx2 => "cpu-avx2",
            Isa::Neon => "cpu-neon",
            Isa::NeonDot => "cpu-neon-dot",
        }
    }

    fn scratch_len(&self, w: &PackedWeight<'_>) -> usize {
        scratch_len_rows(w.desc(), 1)
    }

    fn matmul(
        &mut self,
        w: &PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let desc = w.desc();
        let blob = w.blob();
        let p = match (desc.kind, desc.pipeline) {
            (TensorKind::Matmul, Some(p)) => p,
            _ => return Err(Error::WrongKind),
        };
        if !simd_friendly(desc, p) {
            return exec::matmul(desc, blob, x, m, y, scratch);
        }
        let g = desc.geom;
        let (k, n) = (g.k as usize, g.n as usize);
        if x.len() != m * k {
            return Err(Error::Length { what: "x", need: m * k, got: x.len() });
        }
        if y.len() != m * n {
            return Err(Error::Length { what: "y", need: m * n, got: y.len() });
        }
        let need = scratch_len_rows(desc, 1);
        if scratch.len() < need {
            return Err(Error::Length { what: "scratch", need, got: scratch.len() });
        }
        let (per, fixed) = scratch_parts(desc);
        let block_rows =
            ((scratch.len() - fixed) / per.max(1)).clamp(1, m.clamp(1, MAX_BLOCK_ROWS));
        let err = AtomicUsize::new(usize::MAX);
        let bad = AtomicBool::new(false);
        let y = Out { ptr: y.as_mut_ptr(), len: y.len() };
        let mut row0 = 0;
        while row0 < m {
            let rows = block_rows.min(m - row0);
            let prep = prepare(self.isa, desc, p, &x[row0 * k..(row0 + rows) * k], rows, scratch);
            let blk = Block {
                isa: self.isa,
                desc,
                blob,
                p,
                prep,
                rows,
                row0,
                y,
                err: &err,
                bad: &bad,
                next: AtomicUsize::new(0),
            };
            let parallel = rows * n * g.k_pad as usize >= PARALLEL_MIN_MACS;
            self.run(parallel, &|| blk.run())?;
            if bad.load(Ordering::Relaxed) {
                return Err(Error::BadDescriptor("weight walk outside its shard"));
            }
            // The reference stops at the first overflow in (row, segment) order.
            let e = err.load(Ordering::Relaxed);
            if e != usize::MAX {
                return Err(Error::AccumulatorOverflow { k_seg: (e % g.k_segs as usize) as u32 });
            }
            row0 += rows;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel set's activation quantization against the reference's, on awkward values:
    /// exact ties at every code (power-of-two scales), values one ulp either side, zeros of
    /// both signs, NaN, ±∞ (in some segments), huge and subnormal scales, both code orders.
    #[test]
    fn quantize_segment_is_the_reference() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rnd = || {
            seed = rotate::splitmix64(seed);
            seed
        };
        let ulp = |x: f32, d: i32| f32::from_bits((x.to_bits() as i32 + d) as u32);
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            for (qmax, len) in [(127, 256), (7, 128), (127, 37), (7, 64)] {
                for case in 0..40 {
                    let unit = [1.0f32, 0.125, 2f32.powi(100), 2f32.powi(-140)][case % 4];
                    let with_inf = case % 5 == 4;
                    let v: [f32; 256] = core::array::from_fn(|i| {
                        if i == 0 {
                            return qmax as f32 * unit; // absmax: the scale is exactly `unit`
                        }
                        let r = rnd();
                        let code = ((r >> 8) % (2 * qmax as u64)) as f32 - qmax as f32;
                        match r % 10 {
                            0..=2 => (code + 0.5) * unit,
                            3 => ulp((code + 0.5) * unit, 1),
                            4 => ulp((code + 0.5) * unit, -1),
                            5 => -0.0,
                            6 => f32::NAN,
                            7 if with_inf => {
                                if r & 256 == 0 {
                                    f32::INFINITY
                                } else {
                                    f32::NEG_INFINITY
                                }
                            }
                            _ => {
                                ((r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
                                    * qmax as f32
                                    * unit
                            }
                        }
                    });
                    let v = &v[..len];
                    let (mut got, mut want) = ([0i8; 256], [0i8; 256]);
                    for i4 in [false, true] {
                        if i4 && len % ACT_CHUNK != 0 {
                            continue;
                        }
                        let (gs, gsum) = quantize_segment(isa, v, qmax, &mut got[..len], i4);
                        let ws = quant::scale_for(quant::absmax(v), qmax);
                        let mut wsum = 0;
                        for (i, &x) in v.iter().enumerate() {
                            let c = quant::quantize(x, ws, qmax);
                            wsum += c;
                            want[if i4 { portable::i4_perm(i) } else { i }] = c as i8;
                        }
                        assert_eq!(
                            (gs.to_bits(), gsum),
                            (ws.to_bits(), wsum),
                            "{isa:?} qmax {qmax} case {case}"
                        );
                        assert_eq!(
                            got[..len],
                            want[..len],
                            "{isa:?} qmax {qmax} case {case} i4 {i4}"
                        );
                    }
                }
            }
        }
    }
}
