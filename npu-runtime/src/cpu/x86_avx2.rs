//! AVX2 (+F16C) kernels: eight int or four fp16 output channels per call sharing each
//! activation load.
//!
//! - int8: `vpmaddubsw(|w|, sign(a, w))` is exact: |w| ≤ 128 and |a| ≤ 127, so a pair sum
//!   is at most 2·128·127 = 32 512 and never saturates; `vpmaddwd` by ones widens to i32.
//!   (The cheaper `(w + 128)·a` trick would saturate `vpmaddubsw`.)
//! - int4: the nibbles of 16 bytes split into [even k | odd k] (the activation is stored in
//!   that order, [`i4_perm`]) as unsigned `u = nibble ^ 8 = w + 8 ∈ [0, 15]`;
//!   `vpmaddubsw(u, a)` cannot saturate (2·15·7) and `Σ u·a − 8·Σ a = Σ w·a`, with `Σ a`
//!   computed once per activation segment. Two channels' 16-byte runs fill one register.
//! - fp16: `vcvtph2ps` is exact; lanes 0..7 and 8..15 of the reference's 16-lane order are two
//!   ymm accumulators, multiply and add are separate instructions (no FMA); the lanes go back
//!   to the caller, which folds them with the reference's own [`crate::exec::f16_fold`].
//! - Every kernel prefetches the line `ahead` bytes past each weight it loads: the driver
//!   picks the distance so that the hint lands on what the next call will read.
//!
//! - The straight loops for the two common walks are in `fused.rs`.
//!
//! Accumulator form ([`IntState`]): int8 as lane sums, int4 in [`i4_span`]'s pair form (with
//! the activation's Σa), both read by this set's [`reduce_scale`].
//!
//! Safety: every function requires AVX2 and F16C (this set's table is only handed out when the
//! CPU runs them) and in-bounds walks: `base[c] + (n_runs − 1)·stride + run bytes ≤ w.len()` and the activation at least
//! `n_runs · run` long, which the driver checks before calling.

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

mod fused;

use super::kernel::{i4_perm, F16Lanes, IntState, Kernels, Span, INT_GROUP, MAX_GROUPS};
use fused::{f16_rows, f16_tiles, i4_rows, i4_tiles, i8_rows, i8_tiles, prefetch};

/// The AVX2 + F16C kernel set.
pub static KERNELS: Kernels =
    Kernels { name: "cpu-avx2", int_span, reduce_scale, f16_span, absmax, quantize: quantize_as };

/// [`Kernels::int_span`]: int8 sums as lane sums, int4 in [`i4_span`]'s pair form.
///
/// # Safety
/// As [`Kernels`].
#[target_feature(enable = "avx2")]
unsafe fn int_span(
    i4: bool,
    check: bool,
    w: &[u8],
    sp: &Span,
    a: &[i8],
    st: &mut [IntState],
) -> u32 {
    match (i4, check) {
        (false, _) => {
            i8_span(w, sp, a, st);
            0
        }
        (true, false) => i4_span::<false>(w, sp, a, st),
        (true, true) => i4_span::<true>(w, sp, a, st),
    }
}

/// [`Kernels::quantize`] through [`quantize`].
///
/// # Safety
/// The CPU runs AVX2.
#[target_feature(enable = "avx2")]
unsafe fn quantize_as(v: &[f32], s: f32, qmax: i32, out: &mut [i8], i4: bool) -> i32 {
    if i4 {
        quantize(v, s, qmax, out, i4_perm)
    } else {
        quantize(v, s, qmax, out, |i| i)
    }
}

/// Lane `i` of the result is the sum of the eight lanes of `v[i]` (wrapping, i.e. exact
/// when the caller ruled out overflow): two rounds of `vphaddd` and one cross-lane add.
#[inline(always)]
unsafe fn hsum8(v: &[__m256i; 8]) -> __m256i {
    let s01 = _mm256_hadd_epi32(v[0], v[1]);
    let s23 = _mm256_hadd_epi32(v[2], v[3]);
    let s45 = _mm256_hadd_epi32(v[4], v[5]);
    let s67 = _mm256_hadd_epi32(v[6], v[7]);
    // Per 128-bit half: [Σv0, Σv1, Σv2, Σv3] over that half's lanes.
    let t0 = _mm256_hadd_epi32(s01, s23);
    let t1 = _mm256_hadd_epi32(s45, s67);
    let lo = _mm256_permute2x128_si256::<0x20>(t0, t1);
    let hi = _mm256_permute2x128_si256::<0x31>(t0, t1);
    _mm256_add_epi32(lo, hi)
}

/// Loads the eight partial-sum vectors of an [`IntState`].
#[inline(always)]
unsafe fn load_state(st: &IntState) -> [__m256i; 8] {
    core::array::from_fn(|c| _mm256_loadu_si256(st[c].as_ptr() as *const __m256i))
}

#[inline(always)]
unsafe fn store_state(st: &mut IntState, acc: &[__m256i; 8]) {
    for c in 0..8 {
        _mm256_storeu_si256(st[c].as_mut_ptr() as *mut __m256i, acc[c]);
    }
}

/// Adds a group's channels to `v` (≤ 8 outputs): the sums of `st` (lane sums, or the int4
/// kernel's own form), converted and scaled as the reference does, elementwise:
/// `v += (Σ as f32 · s_a) · s_w` (`vcvtdq2ps` rounds to nearest like `as f32`; separate
/// multiplies and add).
///
/// # Safety
/// The CPU runs AVX2.
#[target_feature(enable = "avx2")]
unsafe fn reduce_scale(st: &IntState, i4: bool, s_a: f32, s_w: &[f32; INT_GROUP], v: &mut [f32]) {
    let sums = if i4 { i4_sums(st) } else { hsum8(&load_state(st)) };
    let t = _mm256_mul_ps(
        _mm256_mul_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(s_a)),
        _mm256_loadu_ps(s_w.as_ptr()),
    );
    if v.len() == 8 {
        _mm256_storeu_ps(v.as_mut_ptr(), _mm256_add_ps(_mm256_loadu_ps(v.as_ptr()), t));
    } else {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), t);
        for (v, t) in v.iter_mut().zip(lanes) {
            *v += t;
        }
    }
}

/// Byte offsets of every group's eight channels (channels past the span repeat its last).
#[inline(always)]
fn group_bases<const N: usize>(sp: &Span) -> [[usize; N]; MAX_GROUPS] {
    let mut b = [[0; N]; MAX_GROUPS];
    for (g, b) in b.iter_mut().enumerate().take(sp.cnt.div_ceil(N)) {
        *b = sp.group::<N>(g, 0);
    }
    b
}

/// Adds every channel's `Σ a·w` over the span to `st` (one state per group of eight; one
/// activation load feeds a group). `a`: the segment's activation codes.
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "avx2")]
unsafe fn i8_span(w: &[u8], sp: &Span, a: &[i8], st: &mut [IntState]) {
    if sp.walk.run == 32 && sp.cs == 32 && sp.rch == 1 {
        return i8_tiles(w, sp, a, st);
    }
    if sp.walk.n_runs == 1 && sp.cs == sp.walk.run {
        return i8_rows(w, sp, a, st);
    }
    let ones = _mm256_set1_epi16(1);
    let walk = sp.walk;
    let bases = group_bases::<8>(sp);
    let mut r0 = 0;
    while r0 < walk.n_runs {
        let nr = sp.rch.min(walk.n_runs - r0);
        let ap = a.as_ptr().add(r0 * walk.run);
        let off0 = r0 * walk.stride;
        for (st, bs) in st.iter_mut().zip(&bases).take(sp.cnt.div_ceil(8)) {
            let p = bs.map(|b| w.as_ptr().add(b + off0));
            let mut acc = load_state(st);
            for r in 0..nr {
                let off = r * walk.stride;
                let k0 = r * walk.run;
                let mut j = 0;
                while j < walk.run {
                    let av = _mm256_loadu_si256(ap.add(k0 + j) as *const __m256i);
                    for c in 0..8 {
                        prefetch(p[c].wrapping_add(off + j + sp.ahead));
                        let wv = _mm256_loadu_si256(p[c].add(off + j) as *const __m256i);
                        let q = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(av, wv));
                        acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(q, ones));
                    }
                    j += 32;
                }
            }
            store_state(st, &acc);
        }
        r0 += nr;
    }
}

/// Adds every channel's `Σ a·w` over the span to `st` (one state per group of eight, in this
/// kernel's own form: `st[c]` for c < 4 holds channels 2c (low half) and 2c+1 (high half),
/// `st[4]` the activation's Σa lanes; [`i4_sums`] turns it into sums). Two channels share a
/// register (16 bytes = 32 nibbles each) against the activation's [even | odd] halves
/// broadcast to both; `vpmaddubsw` by ones sums the codes for the `−8·Σ a` correction,
/// exactly. With `CHECK`, returns the mask of groups holding a −8 weight code (their states
/// are then unspecified): only the reference's checked loop knows whether its i16 sum
/// overflowed (driver docs).
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "avx2")]
unsafe fn i4_span<const CHECK: bool>(w: &[u8], sp: &Span, a: &[i8], st: &mut [IntState]) -> u32 {
    if sp.walk.run == 32 && sp.cs == 16 && sp.rch == 1 {
        return i4_tiles::<CHECK>(w, sp, a, st);
    }
    if sp.walk.n_runs == 1 && 2 * sp.cs == sp.walk.run {
        return i4_rows::<CHECK>(w, sp, a, st);
    }
    let walk = sp.walk;
    let bases = group_bases::<8>(sp);
    let mut failed = 0u32;
    let mut r0 = 0;
    while r0 < walk.n_runs {
        let nr = sp.rch.min(walk.n_runs - r0);
        let ap = a.as_ptr().add(r0 * walk.run);
        let off0 = r0 * walk.stride;
        for (g, (st, bs)) in st.iter_mut().zip(&bases).enumerate().take(sp.cnt.div_ceil(8)) {
            let p = bs.map(|b| w.as_ptr().add(b + off0));
            if i4_group::<CHECK>(p, nr, sp, ap, st) {
                failed |= 1 << g;
            }
        }
        r0 += nr;
    }
    failed
}

/// One turn of [`i4_span`] for one group: `nr` runs from the channels' pointers `p` and the
/// activation at `ap`, continuing the group's state. With `CHECK`, whether a weight code is −8.
#[inline(always)]
unsafe fn i4_group<const CHECK: bool>(
    p: [*const u8; 8],
    nr: usize,
    sp: &Span,
    ap: *const i8,
    st: &mut IntState,
) -> bool {
    let ones = _mm256_set1_epi16(1);
    let ones8 = _mm256_set1_epi8(1);
    let low = _mm256_set1_epi8(0x0f);
    let eight = _mm256_set1_epi8(0x08);
    let walk = sp.walk;
    let mut acc: [__m256i; 4] =
        core::array::from_fn(|c| _mm256_loadu_si256(st[c].as_ptr() as *const __m256i));
    let mut asum = _mm256_loadu_si256(st[4].as_ptr() as *const __m256i);
    let mut umin = _mm256_set1_epi8(-1);
    for r in 0..nr {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let ae = _mm256_broadcastsi128_si256(_mm_loadu_si128(ap.add(k0 + j) as *const __m128i));
            let ao =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(ap.add(k0 + j + 16) as *const __m128i));
            // [even | odd] of one 32-chunk: each code once.
            let both = _mm256_permute2x128_si256::<0x20>(ae, ao);
            asum =
                _mm256_add_epi32(asum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, both), ones));
            for c in 0..4 {
                let (q0, q1) = (p[2 * c].add(off + j / 2), p[2 * c + 1].add(off + j / 2));
                prefetch(q0.wrapping_add(sp.ahead));
                prefetch(q1.wrapping_add(sp.ahead));
                let b = _mm256_loadu2_m128i(q1 as *const __m128i, q0 as *const __m128i);
                // u = nibble ^ 8 = w + 8 ∈ [0, 15]; a pair of products is at most 2·15·7, so
                // the even and odd sums add in i16 without saturating.
                let ue = _mm256_xor_si256(_mm256_and_si256(b, low), eight);
                let uo = _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(b), low), eight);
                if CHECK {
                    umin = _mm256_min_epu8(umin, _mm256_min_epu8(ue, uo));
                }
                let s =
                    _mm256_add_epi16(_mm256_maddubs_epi16(ue, ae), _mm256_maddubs_epi16(uo, ao));
                acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(s, ones));
            }
            j += 32;
        }
    }
    for c in 0..4 {
        _mm256_storeu_si256(st[c].as_mut_ptr() as *mut __m256i, acc[c]);
    }
    _mm256_storeu_si256(st[4].as_mut_ptr() as *mut __m256i, asum);
    CHECK && _mm256_movemask_epi8(_mm256_cmpeq_epi8(umin, _mm256_setzero_si256())) != 0
}

/// Channel sums of an [`i4_span`] state: two rounds of `vphaddd` give
/// [Σ0, Σ2, Σ4, Σ6 | Σ1, Σ3, Σ5, Σ7], interleaved back into channel order, less 8·Σa.
#[inline(always)]
unsafe fn i4_sums(st: &IntState) -> __m256i {
    let v = load_state(st);
    let t = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    let t = _mm256_permutevar8x32_epi32(t, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    let asum = hsum8(&[v[4]; 8]);
    _mm256_sub_epi32(t, _mm256_slli_epi32::<3>(asum))
}

/// Every channel's fp16 dot over the span in the reference's 16-lane order, continuing from
/// and returning to `lanes` (per group of four, each channel's 16 partial sums: lanes 0..7
/// and 8..15 are its two accumulators); the caller folds ([`crate::exec::f16_fold`]).
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "avx2,f16c")]
unsafe fn f16_span(w: &[u8], sp: &Span, a: &[f32], lanes: &mut [F16Lanes]) {
    if sp.walk.run == 32 && sp.cs == 64 && sp.rch == 1 {
        return f16_tiles(w, sp, a, lanes);
    }
    if sp.walk.n_runs == 1 && sp.cs == 2 * sp.walk.run {
        return f16_rows(w, sp, a, lanes);
    }
    let walk = sp.walk;
    let bases = group_bases::<4>(sp);
    let mut r0 = 0;
    while r0 < walk.n_runs {
        let nr = sp.rch.min(walk.n_runs - r0);
        let ap = a.as_ptr().add(r0 * walk.run);
        let off0 = r0 * walk.stride;
        for (lanes, bs) in lanes.iter_mut().zip(&bases).take(sp.cnt.div_ceil(4)) {
            let p = bs.map(|b| w.as_ptr().add(b + off0));
            let mut lo = [_mm256_setzero_ps(); 4];
            let mut hi = [_mm256_setzero_ps(); 4];
            for c in 0..4 {
                lo[c] = _mm256_loadu_ps(lanes[c].as_ptr());
                hi[c] = _mm256_loadu_ps(lanes[c].as_ptr().add(8));
            }
            for r in 0..nr {
                let off = r * walk.stride;
                let k0 = r * walk.run;
                let mut j = 0;
                while j < walk.run {
                    let a0 = _mm256_loadu_ps(ap.add(k0 + j));
                    let a1 = _mm256_loadu_ps(ap.add(k0 + j + 8));
                    for c in 0..4 {
                        let q = p[c].add(off + 2 * j);
                        prefetch(q.wrapping_add(sp.ahead));
                        let w0 = _mm256_cvtph_ps(_mm_loadu_si128(q as *const __m128i));
                        let w1 = _mm256_cvtph_ps(_mm_loadu_si128(q.add(16) as *const __m128i));
                        lo[c] = _mm256_add_ps(lo[c], _mm256_mul_ps(a0, w0));
                        hi[c] = _mm256_add_ps(hi[c], _mm256_mul_ps(a1, w1));
                    }
                    j += 16;
                }
            }
            for c in 0..4 {
                _mm256_storeu_ps(lanes[c].as_mut_ptr(), lo[c]);
                _mm256_storeu_ps(lanes[c].as_mut_ptr().add(8), hi[c]);
            }
        }
        r0 += nr;
    }
}

/// Largest |v| of a slice, NaN ignored: [`crate::exec::quant::absmax`] exactly (`max` of
/// non-negative values is order-free; `vmaxps(a, m)` keeps `m` when `a` is NaN).
///
/// # Safety
/// The CPU runs AVX2.
#[target_feature(enable = "avx2")]
unsafe fn absmax(v: &[f32]) -> f32 {
    let mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut m = _mm256_setzero_ps();
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(c.as_ptr()), mask), m);
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), m);
    let head = lanes.iter().fold(0f32, |a, &b| if b > a { b } else { a });
    crate::exec::quant::absmax(tail).max(head)
}

/// Codes of `v` for scale `s > 0` and `qmax`: [`crate::exec::quant::quantize`] exactly, 8 at a
/// time (IEEE division; truncation, the exact `|x| − trunc|x| ≥ 0.5` test and the clamp
/// on the magnitude; NaN → 0, ±∞ → ±qmax). Writes code `i` to `out[perm(i)]` (the caller
/// guarantees `perm(i) < out.len()`) and returns the codes' sum.
///
/// # Safety
/// The CPU runs AVX2.
#[target_feature(enable = "avx2")]
unsafe fn quantize(
    v: &[f32],
    s: f32,
    qmax: i32,
    out: &mut [i8],
    perm: impl Fn(usize) -> usize,
) -> i32 {
    let sign = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
    let sv = _mm256_set1_ps(s);
    let half = _mm256_set1_ps(0.5);
    let one = _mm256_set1_ps(1.0);
    let qm = _mm256_set1_ps(qmax as f32);
    let mut sum = 0i32;
    let mut codes = [0i32; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for (ci, c) in chunks.enumerate() {
        let x = _mm256_div_ps(_mm256_loadu_ps(c.as_ptr()), sv);
        let a = _mm256_andnot_ps(sign, x);
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(a);
        let up = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_sub_ps(a, t), half), one);
        let r = _mm256_min_ps(_mm256_add_ps(t, up), qm); // NaN → qm here, masked below
        let ordered = _mm256_cmp_ps::<_CMP_ORD_Q>(x, x);
        let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
        let r = _mm256_and_ps(r, ordered);
        let q =
            _mm256_cvttps_epi32(_mm256_blendv_ps(r, _mm256_sub_ps(_mm256_setzero_ps(), r), neg));
        _mm256_storeu_si256(codes.as_mut_ptr() as *mut __m256i, q);
        for (j, &q) in codes.iter().enumerate() {
            sum += q;
            if let Some(o) = out.get_mut(perm(ci * 8 + j)) {
                *o = q as i8;
            }
        }
    }
    let base = v.len() - tail.len();
    for (j, &x) in tail.iter().enumerate() {
        let q = crate::exec::quant::quantize(x, s, qmax);
        sum += q;
        if let Some(o) = out.get_mut(perm(base + j)) {
            *o = q as i8;
        }
    }
    sum
}
