//! How a matmul is cut into work for the pool and walked tile by tile over the packed layout.
//!
//! **No unpacking, no cache, no allocation per call.** The walks read each output channel's
//! weights where the packer put them: a channel of a shard is `n_runs` contiguous runs of
//! `k_run` elements (`Layout::k_run`: the K tile of RKNPU layouts, the whole segment in
//! row-major), a fixed stride apart ([`Walk`]).
//!
//! **Work items.** A block of prepared rows ([`Block`]) splits N the way the NPU splits it
//! across cores, in whole N tiles (`Geometry::n_align`): items of about 64 channels that the
//! threads claim from a shared counter. Every output value is computed by exactly one thread
//! with the same operations, so the result does not depend on the thread count or on who took
//! which item.
//!
//! **Walk order = memory order.** Decode streams every weight byte once, so the walks read the
//! blob front to back: inside a segment the channels go in spans of one N tile (row-major: one
//! run of rows) whose groups take turns over [`RUN_CHUNK`] K runs; partial sums stay in the
//! kernel set's vector form between turns and are reduced and scaled once per segment. Each
//! output sums its segment partials in ascending order, `(acc · s_a) · s_w`, as the reference.
//!
//! **int4 overflow.** The reference sums int4 products in i16. Codes are in [−7, 7]
//! (activations) and [−8, 7] (weights), so no i16 prefix can overflow when 56·K_seg ≤ 32 767,
//! or when 49·K_seg ≤ 32 767 and no weight is −8: then any order gives its value. Longer
//! segments, and groups the kernel reports holding a −8, run the reference's checked loop, so
//! results and overflow errors are identical. The packer's grid is [−7, 7] and it caps int4
//! segments at 640, so packed models never leave the SIMD path; hand-built blobs can.

use super::kernel::{
    F16Lanes, IntState, Kernels, Span, Walk, ACT_CHUNK, CHUNK_MAX, F16_CHUNK, F16_GROUP, INT_GROUP,
};
use super::portable;
use super::prepare::{Prepared, MAX_BLOCK_ROWS};
use crate::error::Error;
use crate::exec;
use crate::format::{Layout, Pipeline, TensorDesc};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// K runs (tiles of the native layouts) per turn when a segment has several: the groups of one
/// N tile take turns, so together they read `RUN_CHUNK` whole tiles in order (a tile per turn
/// reads as fast as a linear walk; docs/architecture.md has the measurements).
const RUN_CHUNK: usize = 1;

/// Prefetch distance of the x86 kernels, bytes: any distance covers every line (each turn's
/// loads tile a contiguous block).
const PREFETCH_AHEAD: usize = 4096;

/// Below this many multiply-adds a block stays on the calling thread (waking workers costs
/// more than it saves).
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// i16::MAX, as the bound of int4 partial sums.
const I16_MAX: usize = i16::MAX as usize;
/// Longest int8 segment whose sum cannot leave i32 in any order: |Σ| ≤ 127·128·K.
const I8_SAFE_K: usize = (i32::MAX / (127 * 128)) as usize;

/// Whether the layout's K runs are whole SIMD chunks for every segment (true for every
/// shipped target); otherwise the reference executor runs the tensor.
pub fn simd_friendly(desc: &TensorDesc<'_>, p: Pipeline) -> bool {
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

/// A raw output pointer shared by the threads of one matmul; each writes disjoint elements.
#[derive(Clone, Copy)]
pub struct Out {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: threads write disjoint indices (each output channel belongs to one thread), and
// the matmul does not return before they are done.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The output `y`; the caller keeps it borrowed until every block is done.
    pub fn new(y: &mut [f32]) -> Out {
        Out { ptr: y.as_mut_ptr(), len: y.len() }
    }

    #[inline]
    fn set(&self, i: usize, v: f32) {
        if i < self.len {
            // SAFETY: in bounds; disjoint per thread (see the type's docs).
            unsafe { self.ptr.add(i).write(v) }
        }
    }
}

/// Everything a thread needs for one block of rows.
pub struct Block<'a> {
    ks: &'static Kernels,
    desc: &'a TensorDesc<'a>,
    blob: &'a [u8],
    p: Pipeline,
    prep: Prepared<'a>,
    /// The first row's index in the matmul.
    row0: usize,
    y: Out,
    /// Smallest `row · k_segs + seg` that overflowed, `usize::MAX` if none.
    err: AtomicUsize,
    /// A walk left its shard (cannot happen after `TensorDesc::check`; kept as an error).
    bad: AtomicBool,
    /// Next work item to claim.
    next: AtomicUsize,
}

/// One segment of one core's shard as the walks see it, for channels `c0..c1`.
struct Seg<'a> {
    /// The segment's index and its K range.
    seg: usize,
    k0: usize,
    kl: usize,
    /// The shard's bytes (every walk checked inside) and its channel count.
    bytes: &'a [u8],
    n_len: usize,
    walk: Walk,
    /// The range's weight scales, little-endian f32 (int pipelines).
    scales: &'a [u8],
    /// Bytes between neighbouring channels inside an N tile.
    cs: usize,
    /// Channels per span, and K runs per turn.
    tile: usize,
    rch: usize,
}

impl<'a> Block<'a> {
    /// Block of `prep.rows` rows starting at `row0`, computed with kernel set `ks` into `y`.
    pub fn new(
        ks: &'static Kernels,
        desc: &'a TensorDesc<'a>,
        blob: &'a [u8],
        p: Pipeline,
        prep: Prepared<'a>,
        row0: usize,
        y: Out,
    ) -> Block<'a> {
        let (err, bad, next) = (AtomicUsize::new(usize::MAX), AtomicBool::new(false), 0.into());
        Block { ks, desc, blob, p, prep, row0, y, err, bad, next }
    }

    /// Whether the block is worth sharing out across threads.
    pub fn parallel(&self) -> bool {
        let g = self.desc.geom;
        self.prep.rows * g.n as usize * g.k_pad as usize >= PARALLEL_MIN_MACS
    }

    /// After every [`Block::run`] returned: the reference's error, if it would report one (it
    /// stops at the first overflow in (row, segment) order).
    pub fn result(&self) -> Result<(), Error> {
        if self.bad.load(Ordering::Relaxed) {
            return Err(Error::BadDescriptor("weight walk outside its shard"));
        }
        match self.err.load(Ordering::Relaxed) {
            usize::MAX => Ok(()),
            e => Err(Error::AccumulatorOverflow {
                k_seg: (e % self.desc.geom.k_segs as usize) as u32,
            }),
        }
    }

    /// Work items: runs of whole N tiles (the NPU's unit of the core split), about 64 output
    /// channels each.
    fn chunk_tiles(&self) -> usize {
        64usize.div_ceil(self.desc.geom.n_align as usize).max(1)
    }

    fn chunks(&self) -> usize {
        let g = self.desc.geom;
        ((g.n_pad / g.n_align) as usize).div_ceil(self.chunk_tiles())
    }

    /// Claims work items until none are left (the pool's job: every thread calls it).
    /// Whichever thread takes an item computes its channels with the same operations.
    pub fn run(&self) {
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
                    self.range(core, busy, n0 as usize, a, e);
                    a = e;
                }
            }
        }
    }

    /// [`Block::channels`] with stack arrays sized for the case at hand (decode: one row;
    /// integer or fp16 partial sums): zeroing bigger ones for every range showed in profiles.
    fn range(&self, core: usize, busy: usize, n0: usize, c0: usize, c1: usize) {
        const IG: usize = CHUNK_MAX / INT_GROUP;
        const FG: usize = CHUNK_MAX / F16_GROUP;
        let done = match (self.prep.rows == 1, self.p == Pipeline::F16F16F32) {
            (true, false) => self.channels::<1, IG, 0>(core, busy, n0, c0, c1),
            (true, true) => self.channels::<1, 0, FG>(core, busy, n0, c0, c1),
            (false, false) => self.channels::<MAX_BLOCK_ROWS, IG, 0>(core, busy, n0, c0, c1),
            (false, true) => self.channels::<MAX_BLOCK_ROWS, 0, FG>(core, busy, n0, c0, c1),
        };
        if done.is_none() {
            self.bad.store(true, Ordering::Relaxed);
        }
    }

    /// Channels `c0..c1` (≤ [`CHUNK_MAX`], all in core `core`'s shards, which start at channel
    /// `n0`) for every row of the block (`R`: most rows). Segments outer (shard, walk, bounds
    /// and scales set up once per segment), spans of one N tile inner. `IG` / `FG`: integer /
    /// fp16 group slots (the other is 0). `None`: a walk would leave its shard.
    fn channels<const R: usize, const IG: usize, const FG: usize>(
        &self,
        core: usize,
        busy: usize,
        n0: usize,
        c0: usize,
        c1: usize,
    ) -> Option<()> {
        let int = self.p != Pipeline::F16F16F32;
        // [row][channel] partial sums of this range.
        let mut vals = [[0f32; CHUNK_MAX]; R];
        // Per span: int partial sums [row][group]; fp16 lanes [group][channel] of one row.
        let mut acc = [[[[0i32; 8]; INT_GROUP]; IG]; R];
        let mut lanes = [[[0f32; F16_CHUNK]; F16_GROUP]; FG];
        for seg in 0..self.desc.geom.k_segs as usize {
            let s = self.segment(seg, core, busy, n0, c0, c1)?;
            let mut c = c0;
            while c < c1 {
                let sp = self.span(&s, n0, c, c1);
                if int {
                    self.int_span::<R, IG>(&s, &sp, c - c0, &mut acc, &mut vals)?;
                } else {
                    self.f16_span::<R>(&s, &sp, c - c0, &mut lanes, &mut vals)?;
                }
                c += sp.cnt;
            }
        }
        let n = self.desc.geom.n as usize;
        for (r, vals) in vals.iter().enumerate().take(self.prep.rows.min(R)) {
            for (i, &v) in vals[..c1 - c0].iter().enumerate() {
                self.y.set((self.row0 + r) * n + c0 + i, v);
            }
        }
        Some(())
    }

    /// Segment `seg` of core `core`'s shard for channels `c0..c1`: its walk, checked to stay
    /// inside the shard for every channel of the range, and the range's scales.
    fn segment(
        &self,
        seg: usize,
        core: usize,
        busy: usize,
        n0: usize,
        c0: usize,
        c1: usize,
    ) -> Option<Seg<'a>> {
        let layout = self.desc.layout;
        let sh = self.desc.shards.get(seg * busy + core)?;
        let bytes = self.desc.shard_bytes(self.blob, sh).ok()?;
        let (k0, kl, n_len) = (sh.k0 as usize, sh.k_len as usize, sh.n_len as usize);
        let run = layout.k_run(kl).max(1);
        let n_runs = kl / run;
        let stride = if n_runs > 1 {
            layout.byte_offset(run, c0 - n0, kl, n_len) - layout.byte_offset(0, c0 - n0, kl, n_len)
        } else {
            0
        };
        let last = (n_runs.max(1) - 1) * stride + run * layout.elem().bits() / 8;
        // Channel offsets grow with n in every layout: the last channel bounds them all.
        let end = layout.byte_offset(0, c1 - 1 - n0, kl, n_len) + last;
        if n_runs * run != kl || end > bytes.len() {
            return None;
        }
        let scales = if self.p != Pipeline::F16F16F32 {
            let at =
                self.desc.scales.offset as usize + 4 * (seg * self.desc.geom.n_pad as usize + c0);
            self.blob.get(at..at + 4 * (c1 - c0))?
        } else {
            &[]
        };
        // Bytes from one channel's first byte to the next one's inside an N tile (the whole
        // layout for row-major).
        let cs =
            layout.byte_offset(0, 1, kl, n_len.max(2)) - layout.byte_offset(0, 0, kl, n_len.max(2));
        let (tile, rch) = match layout {
            Layout::Tiled { n_tile, .. } if n_runs > 1 => ((n_tile as usize).max(1), RUN_CHUNK),
            _ => (CHUNK_MAX, n_runs.max(1)),
        };
        let walk = Walk { run, n_runs, stride };
        Some(Seg { seg, k0, kl, bytes, n_len, walk, scales, cs, tile, rch })
    }

    /// The span starting at channel `c`: to the end of its N tile (or of the range), or one
    /// channel when the tile's channels are not evenly `cs` apart.
    fn span(&self, s: &Seg<'_>, n0: usize, c: usize, c1: usize) -> Span {
        let layout = self.desc.layout;
        let mut end = (n0 + ((c - n0) / s.tile + 1) * s.tile).min(c1);
        let first = layout.byte_offset(0, c - n0, s.kl, s.n_len);
        // Offsets grow by at least `cs` per channel, so first-to-last equal to (cnt − 1)·cs
        // means every step is `cs` (true of every shipped layout inside a tile).
        if layout.byte_offset(0, end - 1 - n0, s.kl, s.n_len) - first != (end - 1 - c) * s.cs {
            end = c + 1;
        }
        Span { first, cs: s.cs, cnt: end - c, walk: s.walk, rch: s.rch, ahead: PREFETCH_AHEAD }
    }

    /// Row `r`'s codes for segment `s`.
    fn codes(&self, r: usize, s: &Seg<'_>) -> &[i8] {
        let at = r * self.prep.row_bytes + s.k0;
        &self.prep.q[at..at + s.kl]
    }

    /// One integer span for every row: the kernel's sums (unless the segment is too long for
    /// any exactness argument), then per group scaled into `vals` or redone by the reference's
    /// checked loop. `col0`: the span's first channel within the range.
    fn int_span<const R: usize, const IG: usize>(
        &self,
        s: &Seg<'_>,
        sp: &Span,
        col0: usize,
        acc: &mut [[IntState; IG]; R],
        vals: &mut [[f32; CHUNK_MAX]; R],
    ) -> Option<()> {
        let i4 = self.p == Pipeline::I4I4I16;
        let checked_all = if i4 { 49 * s.kl > I16_MAX } else { s.kl > I8_SAFE_K };
        let check = i4 && 56 * s.kl > I16_MAX;
        let ngroups = sp.cnt.div_ceil(INT_GROUP);
        let mut failed = if checked_all { u32::MAX } else { 0 };
        for (r, acc) in acc.iter_mut().enumerate().take(self.prep.rows.min(R)) {
            let st = acc.get_mut(..ngroups)?;
            st.fill([[0; 8]; INT_GROUP]);
            if !checked_all {
                // SAFETY: the table matches this CPU (`CpuFast` holds only available sets);
                // `segment` checked every walk of the range against the shard, and the codes
                // cover the segment.
                failed |=
                    unsafe { (self.ks.int_span)(i4, check, s.bytes, sp, self.codes(r, s), st) };
            }
        }
        for gi in 0..ngroups {
            self.int_group(s, sp, col0, gi, failed >> gi & 1 == 1, acc, vals);
        }
        Some(())
    }

    /// Group `gi` of an integer span into `vals`, every row: `(Σ · s_a) · s_w` from the
    /// kernel's state, or (`checked`) from the reference's checked loop, whose overflow is
    /// recorded as the reference reports it.
    #[allow(clippy::too_many_arguments)]
    fn int_group<const R: usize, const IG: usize>(
        &self,
        s: &Seg<'_>,
        sp: &Span,
        col0: usize,
        gi: usize,
        checked: bool,
        acc: &[[IntState; IG]; R],
        vals: &mut [[f32; CHUNK_MAX]; R],
    ) {
        let i4 = self.p == Pipeline::I4I4I16;
        let segs = self.desc.geom.k_segs as usize;
        let col = col0 + gi * INT_GROUP;
        let cnt = (sp.cnt - gi * INT_GROUP).min(INT_GROUP);
        let mut s_w = [0f32; INT_GROUP];
        for (i, w) in s_w.iter_mut().enumerate().take(cnt) {
            let b = &s.scales[4 * (col + i)..4 * (col + i) + 4];
            *w = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        for (r, vals) in vals.iter_mut().enumerate().take(self.prep.rows.min(R)) {
            let s_a = self.prep.s_a[r * segs + s.seg];
            let v = &mut vals[col..col + cnt];
            if !checked {
                // SAFETY: the table matches this CPU; `acc[r][gi]` was filled by its int_span.
                unsafe { (self.ks.reduce_scale)(&acc[r][gi], i4, s_a, &s_w, v) };
                continue;
            }
            for (i, v) in v.iter_mut().enumerate() {
                let base = sp.base(gi * INT_GROUP + i);
                match int_checked(i4, s.bytes, base, s.walk, self.codes(r, s)) {
                    // Elementwise as the reference: `y += (acc · s_a) · s_w`.
                    Some(q) => *v += q as f32 * s_a * s_w[i],
                    None => {
                        self.err.fetch_min((self.row0 + r) * segs + s.seg, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// One fp16 span for every row: the kernel's 16 lanes per channel, folded by the
    /// reference's [`exec::f16_fold`] and added to `vals`.
    fn f16_span<const R: usize>(
        &self,
        s: &Seg<'_>,
        sp: &Span,
        col0: usize,
        lanes: &mut [F16Lanes],
        vals: &mut [[f32; CHUNK_MAX]; R],
    ) -> Option<()> {
        let kp = self.desc.geom.k_pad as usize;
        let lanes = lanes.get_mut(..sp.cnt.div_ceil(F16_GROUP))?;
        for (r, vals) in vals.iter_mut().enumerate().take(self.prep.rows.min(R)) {
            lanes.fill([[0.0; F16_CHUNK]; F16_GROUP]);
            let a = &self.prep.f[r * kp + s.k0..r * kp + s.k0 + s.kl];
            // SAFETY: as in `int_span`.
            unsafe { (self.ks.f16_span)(s.bytes, sp, a, lanes) };
            for (i, v) in vals[col0..col0 + sp.cnt].iter_mut().enumerate() {
                *v += exec::f16_fold(lanes[i / F16_GROUP][i % F16_GROUP]);
            }
        }
        Some(())
    }
}

/// One channel's integer sum by the reference's own checked loop (`None` where it reports
/// an overflow): segments too long for the exactness arguments of the SIMD kernels.
fn int_checked(i4: bool, w: &[u8], base: usize, walk: Walk, a: &[i8]) -> Option<i32> {
    if i4 {
        portable::i4_checked(w, base, walk, a).map(i32::from)
    } else {
        portable::i8_checked(w, base, walk, a)
    }
}
