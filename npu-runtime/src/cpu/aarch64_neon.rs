//! aarch64 Advanced SIMD kernels (the RK3588's Cortex-A76/A55), eight int or four fp16 output
//! channels per call.
//!
//! - int8: `smull`/`smull2` (i8·i8 → i16 is exact: |128·127| < 2^15) and `sadalp` into i32.
//! - int4: nibbles sign-extended with shifts (`shl #4` then `sshr #4` for even k, `sshr #4`
//!   for odd k, matching the [even | odd] activation order), `smull` + `smlal` (≤ 2·56) and
//!   `sadalp` into i32.
//! - fp16: `fcvtl`/`fcvtl2` (base Advanced SIMD, exact; issued through `asm!` because Rust's
//!   f16 vector types are not stable) into four 4-lane accumulators = the reference's 16
//!   lanes, separate `fmul` and `fadd`; the caller folds them ([`crate::exec::f16_fold`]).
//!
//! - With the dot-product extension (`*_dot`, [`super::Isa::NeonDot`]): `sdot` adds four
//!   i8·i8 products into each i32 lane, exact (|4·128·127| < 2^31), a quarter of the
//!   instructions per 16 bytes; int4 sign-extends the nibbles as above first. Issued through
//!   `asm!`: the intrinsics are not stable Rust yet.
//!
//! Accumulator form: [`IntState`] lane sums, as the portable set's (its `reduce_scale` is
//! shared); the groups walk a span through [`super::portable::int_groups`].
//!
//! Safety: as for the other kernel files: in-bounds walks, checked by the driver.

use super::kernel::{F16Lanes, IntState, Kernels, Span, Walk, F16_GROUP};
use super::portable;
use core::arch::aarch64::*;

/// Advanced SIMD (every aarch64 CPU).
pub static NEON: Kernels = NEON_SET;

/// Advanced SIMD with `sdot` for the integer sums.
pub static NEON_DOT: Kernels = Kernels { name: "cpu-neon-dot", int_span: int_span_dot, ..NEON_SET };

const NEON_SET: Kernels = Kernels {
    name: "cpu-neon",
    int_span,
    reduce_scale: portable::reduce_scale,
    f16_span,
    absmax: crate::exec::quant::absmax,
    quantize: portable::quantize,
};

/// [`Kernels::int_span`] with `smull`/`sadalp`.
///
/// # Safety
/// As [`Kernels`].
#[target_feature(enable = "neon")]
unsafe fn int_span(
    i4: bool,
    check: bool,
    w: &[u8],
    sp: &Span,
    a: &[i8],
    st: &mut [IntState],
) -> u32 {
    portable::int_groups(i4, check, w, sp, a, st, |base, walk, a, st| {
        // SAFETY: NEON is architectural on aarch64; walks checked by the driver.
        unsafe {
            if i4 {
                i4x8(w, base, walk, a, st)
            } else {
                i8x8(w, base, walk, a, st)
            }
        }
    })
}

/// [`Kernels::int_span`] with `sdot`.
///
/// # Safety
/// As [`Kernels`]; the CPU has the dot-product extension.
#[target_feature(enable = "neon,dotprod")]
unsafe fn int_span_dot(
    i4: bool,
    check: bool,
    w: &[u8],
    sp: &Span,
    a: &[i8],
    st: &mut [IntState],
) -> u32 {
    portable::int_groups(i4, check, w, sp, a, st, |base, walk, a, st| {
        // SAFETY: the table is only handed out when the CPU has `sdot`; walks checked.
        unsafe {
            if i4 {
                i4x8_dot(w, base, walk, a, st)
            } else {
                i8x8_dot(w, base, walk, a, st)
            }
        }
    })
}

/// [`Kernels::f16_span`], four channels per call.
///
/// # Safety
/// As [`Kernels`].
#[target_feature(enable = "neon")]
unsafe fn f16_span(w: &[u8], sp: &Span, a: &[f32], lanes: &mut [F16Lanes]) {
    sp.for_each::<F16_GROUP>(|g, base, walk, k| {
        // SAFETY: as above.
        unsafe { f16x4(w, base, walk, &a[k..], &mut lanes[g]) }
    });
}

/// Adds `Σ a·w` of eight int8 channels to `st` (lanes 0..3 of each channel).
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "neon")]
unsafe fn i8x8(w: &[u8], base: [usize; 8], walk: Walk, a: &[i8], st: &mut IntState) {
    let wp = w.as_ptr() as *const i8;
    let ap = a.as_ptr();
    let mut acc: [int32x4_t; 8] = core::array::from_fn(|c| vld1q_s32(st[c].as_ptr()));
    for r in 0..walk.n_runs {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let a0 = vld1q_s8(ap.add(k0 + j));
            let a1 = vld1q_s8(ap.add(k0 + j + 16));
            for c in 0..8 {
                let p = wp.add(base[c] + off + j);
                let w0 = vld1q_s8(p);
                let w1 = vld1q_s8(p.add(16));
                acc[c] = vpadalq_s16(acc[c], vmull_s8(vget_low_s8(a0), vget_low_s8(w0)));
                acc[c] = vpadalq_s16(acc[c], vmull_high_s8(a0, w0));
                acc[c] = vpadalq_s16(acc[c], vmull_s8(vget_low_s8(a1), vget_low_s8(w1)));
                acc[c] = vpadalq_s16(acc[c], vmull_high_s8(a1, w1));
            }
            j += 32;
        }
    }
    for c in 0..8 {
        vst1q_s32(st[c].as_mut_ptr(), acc[c]);
    }
}

/// `acc + Σ` of four groups of four products `a·b` per lane.
#[inline(always)]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut r = acc;
    core::arch::asm!(
        "sdot {r:v}.4s, {a:v}.16b, {b:v}.16b",
        r = inout(vreg) r,
        a = in(vreg) a,
        b = in(vreg) b,
        options(pure, nomem, nostack, preserves_flags),
    );
    r
}

/// [`i8x8`] with `sdot`.
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "neon,dotprod")]
unsafe fn i8x8_dot(w: &[u8], base: [usize; 8], walk: Walk, a: &[i8], st: &mut IntState) {
    let wp = w.as_ptr() as *const i8;
    let ap = a.as_ptr();
    let mut acc: [int32x4_t; 8] = core::array::from_fn(|c| vld1q_s32(st[c].as_ptr()));
    for r in 0..walk.n_runs {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let a0 = vld1q_s8(ap.add(k0 + j));
            let a1 = vld1q_s8(ap.add(k0 + j + 16));
            for c in 0..8 {
                let p = wp.add(base[c] + off + j);
                acc[c] = sdot(acc[c], vld1q_s8(p), a0);
                acc[c] = sdot(acc[c], vld1q_s8(p.add(16)), a1);
            }
            j += 32;
        }
    }
    for c in 0..8 {
        vst1q_s32(st[c].as_mut_ptr(), acc[c]);
    }
}

/// [`i4x8`] with `sdot`.
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "neon,dotprod")]
unsafe fn i4x8_dot(w: &[u8], base: [usize; 8], walk: Walk, a: &[i8], st: &mut IntState) {
    let wp = w.as_ptr() as *const i8;
    let ap = a.as_ptr();
    let mut acc: [int32x4_t; 8] = core::array::from_fn(|c| vld1q_s32(st[c].as_ptr()));
    for r in 0..walk.n_runs {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let ae = vld1q_s8(ap.add(k0 + j));
            let ao = vld1q_s8(ap.add(k0 + j + 16));
            for c in 0..8 {
                let b = vld1q_s8(wp.add(base[c] + off + j / 2));
                let lo = vshrq_n_s8::<4>(vshlq_n_s8::<4>(b));
                let hi = vshrq_n_s8::<4>(b);
                acc[c] = sdot(sdot(acc[c], lo, ae), hi, ao);
            }
            j += 32;
        }
    }
    for c in 0..8 {
        vst1q_s32(st[c].as_mut_ptr(), acc[c]);
    }
}

/// Adds `Σ a·w` of eight int4 channels (activation in [even | odd] order per 32-chunk) to
/// `st` (lanes 0..3 of each channel).
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "neon")]
unsafe fn i4x8(w: &[u8], base: [usize; 8], walk: Walk, a: &[i8], st: &mut IntState) {
    let wp = w.as_ptr() as *const i8;
    let ap = a.as_ptr();
    let mut acc: [int32x4_t; 8] = core::array::from_fn(|c| vld1q_s32(st[c].as_ptr()));
    for r in 0..walk.n_runs {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let ae = vld1q_s8(ap.add(k0 + j));
            let ao = vld1q_s8(ap.add(k0 + j + 16));
            for c in 0..8 {
                let b = vld1q_s8(wp.add(base[c] + off + j / 2));
                let lo = vshrq_n_s8::<4>(vshlq_n_s8::<4>(b));
                let hi = vshrq_n_s8::<4>(b);
                let s0 = vmlal_s8(
                    vmull_s8(vget_low_s8(ae), vget_low_s8(lo)),
                    vget_low_s8(ao),
                    vget_low_s8(hi),
                );
                let s1 = vmlal_high_s8(vmull_high_s8(ae, lo), ao, hi);
                acc[c] = vpadalq_s16(acc[c], s0);
                acc[c] = vpadalq_s16(acc[c], s1);
            }
            j += 32;
        }
    }
    for c in 0..8 {
        vst1q_s32(st[c].as_mut_ptr(), acc[c]);
    }
}

/// Eight f16 (little-endian bytes at `p`) → two f32x4, exactly.
#[inline(always)]
unsafe fn cvt8(p: *const u8) -> (float32x4_t, float32x4_t) {
    let h = vld1q_u16(p as *const u16);
    let lo: float32x4_t;
    let hi: float32x4_t;
    core::arch::asm!(
        "fcvtl {lo:v}.4s, {h:v}.4h",
        "fcvtl2 {hi:v}.4s, {h:v}.8h",
        h = in(vreg) h,
        lo = out(vreg) lo,
        hi = out(vreg) hi,
        options(pure, nomem, nostack, preserves_flags),
    );
    (lo, hi)
}

/// Four fp16 channels in the reference's 16-lane order, continuing from and returning to
/// `lanes` (see the AVX2 kernel); the caller folds.
///
/// # Safety
/// The CPU runs the enabled features; every walk is in bounds (module docs).
#[target_feature(enable = "neon")]
unsafe fn f16x4(w: &[u8], base: [usize; 4], walk: Walk, a: &[f32], lanes: &mut [[f32; 16]; 4]) {
    let wp = w.as_ptr();
    let ap = a.as_ptr();
    let mut acc: [[float32x4_t; 4]; 4] =
        core::array::from_fn(|c| core::array::from_fn(|q| vld1q_f32(lanes[c].as_ptr().add(4 * q))));
    for r in 0..walk.n_runs {
        let off = r * walk.stride;
        let k0 = r * walk.run;
        let mut j = 0;
        while j < walk.run {
            let av = [
                vld1q_f32(ap.add(k0 + j)),
                vld1q_f32(ap.add(k0 + j + 4)),
                vld1q_f32(ap.add(k0 + j + 8)),
                vld1q_f32(ap.add(k0 + j + 12)),
            ];
            for c in 0..4 {
                let p = wp.add(base[c] + off + 2 * j);
                let (w0, w1) = cvt8(p);
                let (w2, w3) = cvt8(p.add(16));
                let wv = [w0, w1, w2, w3];
                for q in 0..4 {
                    acc[c][q] = vaddq_f32(acc[c][q], vmulq_f32(av[q], wv[q]));
                }
            }
            j += 16;
        }
    }
    for (l, acc) in lanes.iter_mut().zip(&acc) {
        for (q, &v) in acc.iter().enumerate() {
            vst1q_f32(l.as_mut_ptr().add(4 * q), v);
        }
    }
}
