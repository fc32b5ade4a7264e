//! Symmetric quantization primitives, shared by the packer (weights) and the executors
//! (activations) so both round identically. Only IEEE-exact operations are used (`/`,
//! comparisons, integer casts, bit masks): no libm, so the bits are the same on every host.

/// |v| by clearing the sign bit (exact; `f32::abs` is not in `core` on every toolchain).
#[inline]
pub fn abs(v: f32) -> f32 {
    f32::from_bits(v.to_bits() & 0x7fff_ffff)
}

/// Rounds to the nearest integer, ties away from zero, without libm.
///
/// For |v| < 2²³: `t = trunc(|v|)` (exact integer cast), `|v| − t` is exact (Sterbenz: both
/// lie within a factor 2 of each other when t ≥ 1, and t = 0 otherwise), so comparing it to
/// 0.5 decides the tie rule exactly. (The tempting `(|v| + 0.5) as i32` is wrong for
/// 0.49999997, where the addition itself rounds up to 1.) Larger values are already integers;
/// NaN becomes 0.
#[inline]
pub fn round_half_away(v: f32) -> f32 {
    let a = abs(v);
    if a.is_nan() {
        return 0.0;
    }
    if a >= 8_388_608.0 {
        return v;
    }
    let t = (a as u32) as f32;
    let r = if a - t >= 0.5 { t + 1.0 } else { t };
    if v < 0.0 {
        -r
    } else {
        r
    }
}

/// Largest |v| of a slice (NaN ignored; 0 for an empty slice).
pub fn absmax(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, &x| {
        let a = abs(x);
        if a > m {
            a
        } else {
            m
        }
    })
}

/// Symmetric scale for a block whose largest magnitude is `amax`: `amax / qmax` (0 for an
/// all-zero block). One IEEE division, so packer and runtime agree to the bit.
#[inline]
pub fn scale_for(amax: f32, qmax: i32) -> f32 {
    amax / qmax as f32
}

/// Quantizes one value: `clamp(round_half_away(v / scale), -qmax, qmax)`; 0 when the scale is
/// 0. The quotient is rounded to f32 first, then to an integer.
#[inline]
pub fn quantize(v: f32, scale: f32, qmax: i32) -> i32 {
    if scale == 0.0 {
        return 0;
    }
    let q = round_half_away(v / scale);
    let qm = qmax as f32;
    let q = if q > qm {
        qm
    } else if q < -qm {
        -qm
    } else {
        q
    };
    q as i32
}

/// Rounds to fp16 and back (IEEE round to nearest even, via `half`).
#[inline]
pub fn to_f16_and_back(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_ties_away_and_edge_cases() {
        let cases: [(f32, f32); 12] = [
            (0.5, 1.0),
            (-0.5, -1.0),
            (1.5, 2.0),
            (2.5, 3.0),
            (-2.5, -3.0),
            (0.49999997, 0.0),
            (-0.49999997, -0.0),
            (126.49999, 126.0),
            (126.5, 127.0),
            (8_388_609.0, 8_388_609.0),
            (f32::NAN, 0.0),
            (0.0, 0.0),
        ];
        for (v, want) in cases {
            assert_eq!(round_half_away(v), want, "{v}");
        }
        // Agrees with std's IEEE round (same rule) on a sweep of awkward values.
        extern crate std;
        let mut x = -300.0f32;
        while x < 300.0 {
            assert_eq!(round_half_away(x), x.round(), "{x}");
            x += 0.0625 + 1e-4;
        }
    }

    #[test]
    fn quantize_saturates_and_handles_zero_scale() {
        assert_eq!(quantize(1000.0, 1.0, 127), 127);
        assert_eq!(quantize(-1000.0, 1.0, 7), -7);
        assert_eq!(quantize(3.0, 0.0, 7), 0);
        let s = scale_for(2.0, 7);
        assert_eq!(quantize(2.0, s, 7), 7);
        assert_eq!(quantize(-2.0, s, 7), -7);
    }
}
