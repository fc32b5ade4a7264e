//! AVX2 (+F16C) kernels, four output channels per call sharing one activation load.
//!
//! - int8: `vpmaddubsw(|w|, sign(a, w))` is exact: |w| ≤ 128 and |a| ≤ 127, so a pair sum
//!   is at most 2·128·127 = 32 512 and never saturates; `vpmaddwd` by ones widens to i32.
//!   (The cheaper `(w + 128)·a` trick would saturate `vpmaddubsw`.)
//! - int4: the nibbles of 16 bytes split into [even k | odd k] (the activation is stored in
//!   that order, [`super::portable::i4_perm`]) as unsigned `u = nibble ^ 8 = w + 8 ∈ [0, 15]`;
//!   `vpmaddubsw(u, a)` cannot saturate (2·15·7) and `Σ u·a − 8·Σ a = Σ w·a`, with `Σ a`
//!   computed once per activation segment.
//! - fp16: `vcvtph2ps` is exact; lanes 0..7 and 8..15 of the reference's 16-lane order are two
//!   ymm accumulators, multiply and add are separate instructions (no FMA), and the fold
//!   (`lo + hi`, then 128-bit halves, then 64, then 32) is the reference's [`crate::exec::f16_fold`].
//!
//! Safety: every function requires AVX2 and F16C (checked by the dispatcher) and in-bounds
//! walks: `base[c] + (n_runs − 1)·stride + run bytes ≤ w.len()` and the activation at least
//! `n_runs · run` long, which the driver checks before calling.

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

use super::Walk;

#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// `Σ a·w` of four int8 channels.
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "avx2")]
pub unsafe fn i8x4(w: &[u8], base: [usize; 4], walk: Walk, a: &[i8]) -> [i32; 4] {
    let wp = w.as_ptr();
    let ap = a.as_ptr();
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_si256(); 4];
    for r in 0..walk.n_runs {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let av = _mm256_loadu_si256(ap.add(k0 + j) as *const __m256i);
            for c in 0..4 {
                let wv = _mm256_loadu_si256(wp.add(base[c] + off + j) as *const __m256i);
                let p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(av, wv));
                acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(p, ones));
            }
            j += 32;
        }
    }
    [hsum_i32(acc[0]), hsum_i32(acc[1]), hsum_i32(acc[2]), hsum_i32(acc[3])]
}

/// `Σ a·w` of four int4 channels; `asum = Σ a` over the same activation.
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "avx2")]
pub unsafe fn i4x4(w: &[u8], base: [usize; 4], walk: Walk, a: &[i8], asum: i32) -> [i32; 4] {
    let wp = w.as_ptr();
    let ap = a.as_ptr();
    let ones = _mm256_set1_epi16(1);
    let low = _mm256_set1_epi8(0x0f);
    let eight = _mm256_set1_epi8(0x08);
    let mut acc = [_mm256_setzero_si256(); 4];
    for r in 0..walk.n_runs {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let av = _mm256_loadu_si256(ap.add(k0 + j) as *const __m256i);
            for c in 0..4 {
                let b = _mm_loadu_si128(wp.add(base[c] + off + j / 2) as *const __m128i);
                let v = _mm256_set_m128i(_mm_srli_epi16::<4>(b), b);
                let u = _mm256_xor_si256(_mm256_and_si256(v, low), eight);
                let p = _mm256_maddubs_epi16(u, av);
                acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(p, ones));
            }
            j += 32;
        }
    }
    let corr = 8 * asum;
    [hsum_i32(acc[0]) - corr, hsum_i32(acc[1]) - corr, hsum_i32(acc[2]) - corr, hsum_i32(acc[3]) - corr]
}

#[inline(always)]
unsafe fn fold(lo: __m256, hi: __m256) -> f32 {
    let t = _mm256_add_ps(lo, hi); // l_j + l_{j+8}
    let u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps::<1>(t)); // + l_{j+4}
    let v = _mm_add_ps(u, _mm_movehl_ps(u, u)); // + l_{j+2}
    let s = _mm_add_ss(v, _mm_shuffle_ps::<0b01_01_01_01>(v, v)); // + l_{j+1}
    _mm_cvtss_f32(s)
}

/// Four fp16 channels in the reference's 16-lane order.
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn f16x4(w: &[u8], base: [usize; 4], walk: Walk, a: &[f32]) -> [f32; 4] {
    let wp = w.as_ptr();
    let ap = a.as_ptr();
    let mut lo = [_mm256_setzero_ps(); 4];
    let mut hi = [_mm256_setzero_ps(); 4];
    for r in 0..walk.n_runs {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let a0 = _mm256_loadu_ps(ap.add(k0 + j));
            let a1 = _mm256_loadu_ps(ap.add(k0 + j + 8));
            for c in 0..4 {
                let p = wp.add(base[c] + off + 2 * j);
                let w0 = _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
                let w1 = _mm256_cvtph_ps(_mm_loadu_si128(p.add(16) as *const __m128i));
                lo[c] = _mm256_add_ps(lo[c], _mm256_mul_ps(a0, w0));
                hi[c] = _mm256_add_ps(hi[c], _mm256_mul_ps(a1, w1));
            }
            j += 16;
        }
    }
    [fold(lo[0], hi[0]), fold(lo[1], hi[1]), fold(lo[2], hi[2]), fold(lo[3], hi[3])]
}

/// Largest |v| of a slice, NaN ignored: [`crate::exec::quant::absmax`] exactly (`max` of
/// non-negative values is order-free; `vmaxps(a, m)` keeps `m` when `a` is NaN).
///
/// # Safety
/// The CPU runs AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn absmax(v: &[f32]) -> f32 {
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
pub unsafe fn quantize(v: &[f32], s: f32, qmax: i32, out: &mut [i8], perm: impl Fn(usize) -> usize) -> i32 {
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
        let q = _mm256_cvttps_epi32(_mm256_blendv_ps(r, _mm256_sub_ps(_mm256_setzero_ps(), r), neg));
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
