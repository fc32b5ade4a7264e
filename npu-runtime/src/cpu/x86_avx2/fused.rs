//! The AVX2 set's straight loops for the two common walks: K tiles of 32 whose channels lie
//! back to back (RKNPU int8 and int4 with k_tile 32, fp16 on RK3588), where every K tile of
//! the span is one contiguous block read front to back with each channel's partial sums in
//! memory (L1) between tiles; and back-to-back row-major rows (the `cpu` target). Same states
//! as the general walks of the parent module, so the same reductions apply.
//!
//! Safety: as the parent module's.

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

use crate::cpu::kernel::{F16Lanes, IntState, Span};

/// Asks for the line at `p` ahead of use (a hint: never faults, any address).
#[inline(always)]
pub(super) unsafe fn prefetch(p: *const u8) {
    _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
}

/// [`super::i8_span`] over contiguous 32-byte channel runs.
#[inline(always)]
pub(super) unsafe fn i8_tiles(w: &[u8], sp: &Span, a: &[i8], st: &mut [IntState]) {
    let ones = _mm256_set1_epi16(1);
    // Channel ci's state is st[ci / 8][ci % 8]: 32 bytes at `acc + ci`.
    let acc = st.as_mut_ptr() as *mut __m256i;
    let base = w.as_ptr().add(sp.first);
    for r in 0..sp.walk.n_runs {
        let av = _mm256_loadu_si256(a.as_ptr().add(r * 32) as *const __m256i);
        let tile = base.add(r * sp.walk.stride);
        for ci in 0..sp.cnt {
            let p = tile.add(ci * 32);
            if ci % 2 == 0 {
                prefetch(p.wrapping_add(sp.ahead));
            }
            let wv = _mm256_loadu_si256(p as *const __m256i);
            let q = _mm256_madd_epi16(
                _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(av, wv)),
                ones,
            );
            let s = acc.add(ci);
            _mm256_storeu_si256(s, _mm256_add_epi32(_mm256_loadu_si256(s), q));
        }
    }
}

/// [`super::i8_span`] over rows that lie back to back (row-major, one run per channel): the span is
/// one contiguous block, read front to back one channel at a time.
#[inline(always)]
pub(super) unsafe fn i8_rows(w: &[u8], sp: &Span, a: &[i8], st: &mut [IntState]) {
    let ones = _mm256_set1_epi16(1);
    let acc = st.as_mut_ptr() as *mut __m256i;
    let base = w.as_ptr().add(sp.first);
    let run = sp.walk.run;
    for ci in 0..sp.cnt {
        let p = base.add(ci * run);
        let s = acc.add(ci);
        let mut v = _mm256_loadu_si256(s);
        let mut j = 0;
        while j < run {
            if j % 64 == 0 {
                prefetch(p.wrapping_add(j + sp.ahead));
            }
            let wv = _mm256_loadu_si256(p.add(j) as *const __m256i);
            let av = _mm256_loadu_si256(a.as_ptr().add(j) as *const __m256i);
            v = _mm256_add_epi32(
                v,
                _mm256_madd_epi16(
                    _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(av, wv)),
                    ones,
                ),
            );
            j += 32;
        }
        _mm256_storeu_si256(s, v);
    }
}

/// [`super::i4_span`] over contiguous 16-byte channel runs: one load is a channel pair. A span of odd
/// length reads its last channel twice (never past the span).
#[inline(always)]
pub(super) unsafe fn i4_tiles<const CHECK: bool>(
    w: &[u8],
    sp: &Span,
    a: &[i8],
    st: &mut [IntState],
) -> u32 {
    let ones = _mm256_set1_epi16(1);
    let ones8 = _mm256_set1_epi8(1);
    let low = _mm256_set1_epi8(0x0f);
    let eight = _mm256_set1_epi8(0x08);
    // Pair pi (channels 2pi, 2pi+1) accumulates in st[pi / 4][pi % 4].
    let acc = st.as_mut_ptr() as *mut __m256i;
    let slot = |pi: usize| (pi / 4) * 8 + pi % 4;
    let base = w.as_ptr().add(sp.first);
    let pairs = sp.cnt.div_ceil(2);
    let mut asum = _mm256_setzero_si256();
    let mut umin = _mm256_set1_epi8(-1);
    for r in 0..sp.walk.n_runs {
        let ae =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(a.as_ptr().add(r * 32) as *const __m128i));
        let ao = _mm256_broadcastsi128_si256(_mm_loadu_si128(
            a.as_ptr().add(r * 32 + 16) as *const __m128i
        ));
        let both = _mm256_permute2x128_si256::<0x20>(ae, ao);
        asum = _mm256_add_epi32(asum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, both), ones));
        let tile = base.add(r * sp.walk.stride);
        for pi in 0..pairs {
            let p0 = tile.add(pi * 32);
            let p1 = if 2 * pi + 1 < sp.cnt { p0.add(16) } else { p0 };
            prefetch(p0.wrapping_add(sp.ahead));
            let b = _mm256_loadu2_m128i(p1 as *const __m128i, p0 as *const __m128i);
            let ue = _mm256_xor_si256(_mm256_and_si256(b, low), eight);
            let uo = _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(b), low), eight);
            if CHECK {
                umin = _mm256_min_epu8(umin, _mm256_min_epu8(ue, uo));
            }
            let q = _mm256_add_epi16(_mm256_maddubs_epi16(ue, ae), _mm256_maddubs_epi16(uo, ao));
            let s = acc.add(slot(pi));
            _mm256_storeu_si256(
                s,
                _mm256_add_epi32(_mm256_loadu_si256(s), _mm256_madd_epi16(q, ones)),
            );
        }
    }
    let groups = sp.cnt.div_ceil(8);
    for st in st.iter_mut().take(groups) {
        let s = st[4].as_mut_ptr() as *mut __m256i;
        _mm256_storeu_si256(s, _mm256_add_epi32(_mm256_loadu_si256(s), asum));
    }
    if CHECK && _mm256_movemask_epi8(_mm256_cmpeq_epi8(umin, _mm256_setzero_si256())) != 0 {
        // Which group holds the −8 is not tracked here: all go to the checked loop.
        return if groups >= 32 { u32::MAX } else { (1u32 << groups) - 1 };
    }
    0
}

/// [`super::i4_span`] over rows that lie back to back (row-major, one run per channel), one channel
/// at a time (128-bit: one 32-element chunk = 16 bytes), front to back.
#[inline(always)]
pub(super) unsafe fn i4_rows<const CHECK: bool>(
    w: &[u8],
    sp: &Span,
    a: &[i8],
    st: &mut [IntState],
) -> u32 {
    let ones = _mm_set1_epi16(1);
    let low = _mm_set1_epi8(0x0f);
    let eight = _mm_set1_epi8(0x08);
    let run = sp.walk.run;
    // Σa of the segment, once.
    let mut asum = _mm256_setzero_si256();
    let mut j = 0;
    while j < run {
        let av = _mm256_loadu_si256(a.as_ptr().add(j) as *const __m256i);
        asum = _mm256_add_epi32(
            asum,
            _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), av), _mm256_set1_epi16(1)),
        );
        j += 32;
    }
    let base = w.as_ptr().add(sp.first);
    let mut umin = _mm_set1_epi8(-1);
    for ci in 0..sp.cnt {
        let p = base.add(ci * run / 2);
        let mut v = _mm_setzero_si128();
        let mut j = 0;
        while j < run {
            let q = p.add(j / 2);
            if j % 128 == 0 {
                prefetch(q.wrapping_add(sp.ahead));
            }
            let b = _mm_loadu_si128(q as *const __m128i);
            let ue = _mm_xor_si128(_mm_and_si128(b, low), eight);
            let uo = _mm_xor_si128(_mm_and_si128(_mm_srli_epi16::<4>(b), low), eight);
            if CHECK {
                umin = _mm_min_epu8(umin, _mm_min_epu8(ue, uo));
            }
            let ae = _mm_loadu_si128(a.as_ptr().add(j) as *const __m128i);
            let ao = _mm_loadu_si128(a.as_ptr().add(j + 16) as *const __m128i);
            let s = _mm_add_epi16(_mm_maddubs_epi16(ue, ae), _mm_maddubs_epi16(uo, ao));
            v = _mm_add_epi32(v, _mm_madd_epi16(s, ones));
            j += 32;
        }
        // The pair form of i4_span: channel ci in half ci % 2 of slot (ci / 2) % 4 of group ci / 8.
        let dst = (st[ci / 8][(ci / 2) % 4].as_mut_ptr() as *mut __m128i).add(ci % 2);
        _mm_storeu_si128(dst, _mm_add_epi32(_mm_loadu_si128(dst), v));
    }
    let groups = sp.cnt.div_ceil(8);
    for st in st.iter_mut().take(groups) {
        let s = st[4].as_mut_ptr() as *mut __m256i;
        _mm256_storeu_si256(s, _mm256_add_epi32(_mm256_loadu_si256(s), asum));
    }
    if CHECK && _mm_movemask_epi8(_mm_cmpeq_epi8(umin, _mm_setzero_si128())) != 0 {
        return if groups >= 32 { u32::MAX } else { (1u32 << groups) - 1 };
    }
    0
}

/// [`super::f16_span`] over contiguous 64-byte channel runs (32 f16): lanes 0..7 take k and k + 16,
/// lanes 8..15 take k + 8 and k + 24, in that order, as the reference's 16-lane order.
#[inline(always)]
pub(super) unsafe fn f16_tiles(w: &[u8], sp: &Span, a: &[f32], lanes: &mut [F16Lanes]) {
    // Channel ci's lanes are lanes[ci / 4][ci % 4]: 16 floats at `l + 16·ci`.
    let l = lanes.as_mut_ptr() as *mut f32;
    let base = w.as_ptr().add(sp.first);
    for r in 0..sp.walk.n_runs {
        let ap = a.as_ptr().add(r * 32);
        let av = [
            _mm256_loadu_ps(ap),
            _mm256_loadu_ps(ap.add(8)),
            _mm256_loadu_ps(ap.add(16)),
            _mm256_loadu_ps(ap.add(24)),
        ];
        let tile = base.add(r * sp.walk.stride);
        for ci in 0..sp.cnt {
            let p = tile.add(ci * 64);
            prefetch(p.wrapping_add(sp.ahead));
            let lc = l.add(16 * ci);
            let mut lo = _mm256_loadu_ps(lc);
            let mut hi = _mm256_loadu_ps(lc.add(8));
            for (h, a) in av.iter().enumerate() {
                let wv = _mm256_cvtph_ps(_mm_loadu_si128(p.add(16 * h) as *const __m128i));
                if h % 2 == 0 {
                    lo = _mm256_add_ps(lo, _mm256_mul_ps(*a, wv));
                } else {
                    hi = _mm256_add_ps(hi, _mm256_mul_ps(*a, wv));
                }
            }
            _mm256_storeu_ps(lc, lo);
            _mm256_storeu_ps(lc.add(8), hi);
        }
    }
}

/// [`super::f16_span`] over rows that lie back to back (row-major, one run per channel), one
/// channel at a time, front to back.
#[inline(always)]
pub(super) unsafe fn f16_rows(w: &[u8], sp: &Span, a: &[f32], lanes: &mut [F16Lanes]) {
    let l = lanes.as_mut_ptr() as *mut f32;
    let base = w.as_ptr().add(sp.first);
    let run = sp.walk.run;
    for ci in 0..sp.cnt {
        let p = base.add(ci * 2 * run);
        let lc = l.add(16 * ci);
        let mut lo = _mm256_loadu_ps(lc);
        let mut hi = _mm256_loadu_ps(lc.add(8));
        let mut j = 0;
        while j < run {
            let q = p.add(2 * j);
            if j % 32 == 0 {
                prefetch(q.wrapping_add(sp.ahead));
            }
            let w0 = _mm256_cvtph_ps(_mm_loadu_si128(q as *const __m128i));
            let w1 = _mm256_cvtph_ps(_mm_loadu_si128(q.add(16) as *const __m128i));
            lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(a.as_ptr().add(j)), w0));
            hi = _mm256_add_ps(hi, _mm256_mul_ps(_mm256_loadu_ps(a.as_ptr().add(j + 8)), w1));
            j += 16;
        }
        _mm256_storeu_ps(lc, lo);
        _mm256_storeu_ps(lc.add(8), hi);
    }
}
