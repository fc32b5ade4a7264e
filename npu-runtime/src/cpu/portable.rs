//! Portable kernels: plain Rust, every target. They define nothing new: each computes what
//! the reference executor computes (integer sums exactly; fp16 in the reference's 16-lane
//! order), and the SIMD files must agree with them bit for bit. Also the reference's checked
//! integer loops, which the driver runs for segments too long for any SIMD kernel.
//!
//! Accumulator form ([`IntState`]): a channel's sum is the wrapping sum of its eight lanes
//! (this set fills lane 0; the NEON sets use the same form).

use super::kernel::{
    i4_perm, F16Lanes, IntState, Kernels, Span, Walk, ACT_CHUNK, F16_GROUP, INT_GROUP,
};
use crate::exec::{quant, F16_LANES};

/// The portable kernel set.
pub static KERNELS: Kernels = Kernels {
    name: "cpu-portable",
    int_span,
    reduce_scale,
    f16_span,
    absmax: quant::absmax,
    quantize,
};

/// Walks the span group by group ([`Span::for_each`]), calling `kernel(bases, walk, a, state)`
/// for each turn of each group, and with `check` reports the groups holding a −8 int4 weight
/// ([`Kernels::int_span`]'s contract). The kernel sets without a fused span loop use it.
#[inline(always)]
pub fn int_groups(
    i4: bool,
    check: bool,
    w: &[u8],
    sp: &Span,
    a: &[i8],
    st: &mut [IntState],
    mut kernel: impl FnMut([usize; INT_GROUP], Walk, &[i8], &mut IntState),
) -> u32 {
    let mut failed = 0u32;
    sp.for_each::<INT_GROUP>(|g, base, walk, k| {
        if i4 && check && failed >> g & 1 == 0 && base.iter().any(|&b| i4_has_min(w, b, walk)) {
            failed |= 1 << g;
        }
        kernel(base, walk, &a[k..], &mut st[g]);
    });
    failed
}

/// [`Kernels::int_span`]: one channel at a time, its sum added to lane 0.
fn int_span(i4: bool, check: bool, w: &[u8], sp: &Span, a: &[i8], st: &mut [IntState]) -> u32 {
    int_groups(i4, check, w, sp, a, st, |base, walk, a, st| {
        for (s, b) in st.iter_mut().zip(base) {
            let v = if i4 { i4_dot(w, b, walk, a) } else { i8_dot(w, b, walk, a) };
            s[0] = s[0].wrapping_add(v);
        }
    })
}

/// [`Kernels::reduce_scale`] for the lane-sum form (module docs).
pub fn reduce_scale(st: &IntState, _i4: bool, s_a: f32, s_w: &[f32; INT_GROUP], v: &mut [f32]) {
    for (i, v) in v.iter_mut().enumerate() {
        let q = st[i].iter().fold(0i32, |s, &l| s.wrapping_add(l));
        *v += q as f32 * s_a * s_w[i];
    }
}

/// [`Kernels::f16_span`]: one channel at a time.
fn f16_span(w: &[u8], sp: &Span, a: &[f32], lanes: &mut [F16Lanes]) {
    sp.for_each::<F16_GROUP>(|g, base, walk, k| {
        for (b, l) in base.iter().zip(lanes[g].iter_mut()) {
            f16_lanes(w, *b, walk, &a[k..], l);
        }
    });
}

/// [`Kernels::quantize`]: the reference's own [`quant::quantize`], value by value.
pub fn quantize(v: &[f32], s: f32, qmax: i32, out: &mut [i8], i4: bool) -> i32 {
    let mut sum = 0i32;
    for (i, &x) in v.iter().enumerate() {
        let c = quant::quantize(x, s, qmax);
        sum += c;
        if let Some(o) = out.get_mut(if i4 { i4_perm(i) } else { i }) {
            *o = c as i8;
        }
    }
    sum
}

/// Byte `i` of `w` (the driver checked every walk against the shard's length).
#[inline(always)]
fn b(w: &[u8], i: usize) -> u8 {
    // In range by the driver's check; a wrong index would be a bug, and returning 0 keeps
    // the no-panic promise while tests (which compare with the reference) would catch it.
    w.get(i).copied().unwrap_or(0)
}

/// `Σ a_k · w_k` of one int8 channel (exact; the caller ensured no i32 overflow).
fn i8_dot(w: &[u8], base: usize, walk: Walk, a: &[i8]) -> i32 {
    let mut acc = 0i32;
    for r in 0..walk.n_runs {
        let off = base + r * walk.stride;
        let (Some(ws), Some(ar)) =
            (w.get(off..off + walk.run), a.get(r * walk.run..(r + 1) * walk.run))
        else {
            return 0;
        };
        acc = acc.wrapping_add(
            ws.iter()
                .zip(ar)
                .map(|(&x, &y)| x as i8 as i32 * y as i32)
                .fold(0i32, i32::wrapping_add),
        );
    }
    acc
}

/// `Σ a_k · w_k` of one int4 channel, activations in [`i4_perm`] order (exact in i32).
fn i4_dot(w: &[u8], base: usize, walk: Walk, a: &[i8]) -> i32 {
    let mut acc = 0i32;
    let half = ACT_CHUNK / 2;
    for r in 0..walk.n_runs {
        let off = base + r * walk.stride;
        let k0 = r * walk.run;
        for c in 0..walk.run / ACT_CHUNK {
            let ws = off + c * half;
            let at = k0 + c * ACT_CHUNK;
            let Some(ac) = a.get(at..at + ACT_CHUNK) else {
                return 0;
            };
            let mut s = 0i32;
            for j in 0..half {
                let (lo, hi) = crate::exec::nibbles(b(w, ws + j));
                s += lo as i32 * ac[j] as i32 + hi as i32 * ac[half + j] as i32;
            }
            acc = acc.wrapping_add(s);
        }
    }
    acc
}

/// The reference's int8 dot with its checked i32 adds in ascending k: `None` exactly when
/// [`crate::exec::matmul`] reports an overflow.
pub fn i8_checked(w: &[u8], base: usize, walk: Walk, a: &[i8]) -> Option<i32> {
    let mut acc = 0i32;
    for r in 0..walk.n_runs {
        let off = base + r * walk.stride;
        for j in 0..walk.run {
            let av = *a.get(r * walk.run + j)? as i32;
            acc = acc.checked_add(av * b(w, off + j) as i8 as i32)?;
        }
    }
    Some(acc)
}

/// The reference's int4 dot with its checked i16 adds (low nibble, then high, ascending k),
/// activations in [`i4_perm`] order.
pub fn i4_checked(w: &[u8], base: usize, walk: Walk, a: &[i8]) -> Option<i16> {
    let mut acc = 0i16;
    for r in 0..walk.n_runs {
        let off = base + r * walk.stride;
        let k0 = r * walk.run;
        for j in 0..walk.run / 2 {
            let (lo, hi) = crate::exec::nibbles(b(w, off + j));
            let k = k0 + 2 * j;
            acc = acc.checked_add(*a.get(i4_perm(k))? as i16 * lo as i16)?;
            acc = acc.checked_add(*a.get(i4_perm(k + 1))? as i16 * hi as i16)?;
        }
    }
    Some(acc)
}

/// True when a channel of int4 weights holds the code −8 (never written by the packer, whose
/// grid is [−7, 7], but a blob is input): only then can a 586..668-long segment overflow i16.
fn i4_has_min(w: &[u8], base: usize, walk: Walk) -> bool {
    (0..walk.n_runs).any(|r| {
        let off = base + r * walk.stride;
        w.get(off..off + walk.run / 2)
            .is_none_or(|s| s.iter().any(|&x| x & 0x0f == 8 || x >> 4 == 8))
    })
}

/// One fp16 channel in the reference's 16-lane order, continuing the partial sums `lanes`
/// (the run length is a multiple of 16, so lane `k % 16` is the same in any sub-walk).
fn f16_lanes(w: &[u8], base: usize, walk: Walk, a: &[f32], lanes: &mut [f32; F16_LANES]) {
    for r in 0..walk.n_runs {
        let off = base + r * walk.stride;
        let k0 = r * walk.run;
        for j in 0..walk.run {
            let k = k0 + j;
            let h = half::f16::from_bits(u16::from_le_bytes([
                b(w, off + 2 * j),
                b(w, off + 2 * j + 1),
            ]));
            lanes[k % F16_LANES] += a.get(k).copied().unwrap_or(0.0) * h.to_f32();
        }
    }
}
