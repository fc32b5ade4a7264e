//! The randomized Hadamard rotation of the `*_hadamard` schemes (QuaRot, arXiv 2404.00456).
//!
//! **What.** `R = H_B · D / √B` applied block-diagonally along K: D is a diagonal of ±1 signs,
//! H_B the Sylvester Hadamard matrix of size B, B the largest power of two dividing the padded
//! K. R is orthogonal, so `W x = (W Rᵀ)(R x)`: the packer rotates every weight row, the
//! runtime rotates every activation row, and the matmul is unchanged in exact arithmetic,
//! while outliers in either operand are spread over B coordinates before quantization.
//!
//! **Block-diagonal, not padded.** K is often not a power of two (SmolLM2 576 = 9·64,
//! 1536 = 3·512; Qwen2.5 896 = 7·128, 4864 = 19·256). Padding to the next power of two (what
//! rk-llama.cpp does) inflates the stored weight and every matmul by up to 2× (576 → 1024:
//! +78 %; 4864 → 8192: +68 %) for all rotated tensors. A block-diagonal transform costs
//! nothing in memory or NPU time; its price is that an outlier is spread over B (≥ 64 for
//! these models) coordinates instead of all of K, i.e. its peak shrinks by √B instead of
//! √K_pow2 (8× instead of 32× for K = 576). Per-channel scales cover the whole row anyway, so
//! the remaining peak is what sets the step size; at B ≥ 64 the measured gain over `int8`/
//! `int4` is kept (see the packer's report). The block does not have to align with K
//! segments: rotation happens on the whole row before it is segmented.
//!
//! **Normalisation.** The stored transform is unnormalised (`±1` butterflies, exact in
//! structure and cheap); the packer multiplies the rotated weights by `1/B` — a power of two,
//! so exact — and the runtime rotates activations without any scaling. Then
//! `(H D w / B)·(H D x) = wᵀ D Hᵀ H D x / B = w·x`, no factor appears at dequantization, and
//! no irrational `1/√B` is ever rounded.
//!
//! **Where the runtime applies it.** Online, per activation row, on the CPU, right before the
//! activation is quantized (in [`super::matmul`]; a future RKNPU2 backend does the same on the
//! host before writing the A buffer). Cost O(K log B) per row against O(K·N) for the matmul.
//! It is not folded into the preceding RMSNorm: signs are per tensor (seeded by the tensor
//! name), so q/k/v or gate/up each get their own rotation of the same input. Folding would be
//! exact only with one rotation shared by the whole residual stream (QuaRot: fold the RMSNorm
//! gain γ into the next linear layer's columns first, `W diag(γ)`; then RMSNorm without gain
//! commutes with an orthogonal R because ‖Rx‖ = ‖x‖; then R is absorbed into the embedding and
//! every writer of the residual stream). That is a model-wide transform, a possible later step.
//!
//! **Signs.** `sign(i)` = bit `i mod 64` of `splitmix64(seed + (⌊i/64⌋ + 1)·γ)` with
//! `seed = fnv1a64(name)`: counter-based, so any index is computed directly, on any host.

use crate::format::Rotation;

/// FNV-1a, 64-bit: the stable hash seeding a tensor's signs.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// The splitmix64 output function (Steele, Lea, Flood 2014).
pub const fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The rotation of tensor `name` for padded K `k_pad` (> 0).
pub fn rotation_for(name: &str, k_pad: u32) -> Rotation {
    Rotation { block: 1 << k_pad.trailing_zeros(), seed: fnv1a64(name.as_bytes()) }
}

/// 64 signs starting at index `64·word` (bit set = −1).
#[inline]
fn sign_word(seed: u64, word: usize) -> u64 {
    splitmix64(seed.wrapping_add((word as u64 + 1).wrapping_mul(GOLDEN)))
}

/// True when D's sign at index `i` is −1.
pub fn sign_negative(seed: u64, i: usize) -> bool {
    (sign_word(seed, i / 64) >> (i % 64)) & 1 == 1
}

/// Applies `H_B · D` (unnormalised) in place to a padded row; `v.len()` must be a multiple of
/// `rot.block` (the executors guarantee it). Butterflies over strides 1, 2, 4, … in a fixed
/// order, so the result is bit-identical everywhere.
pub fn rotate(rot: Rotation, v: &mut [f32]) {
    for (w, chunk) in v.chunks_mut(64).enumerate() {
        let bits = sign_word(rot.seed, w);
        for (j, x) in chunk.iter_mut().enumerate() {
            if (bits >> j) & 1 == 1 {
                *x = -*x;
            }
        }
    }
    walsh_hadamard(rot.block as usize, v);
}

/// The unnormalised fast Walsh–Hadamard transform of each `b`-long block of `v` (a no-op for
/// `b < 2`): butterflies `(x, y) → (x + y, x − y)` over strides 1, 2, 4, … in a fixed order.
fn walsh_hadamard(b: usize, v: &mut [f32]) {
    if b < 2 {
        return;
    }
    for block in v.chunks_exact_mut(b) {
        let mut h = 1;
        while h < b {
            for i in (0..b).step_by(2 * h) {
                for j in i..i + h {
                    let x = block[j];
                    let y = block[j + h];
                    block[j] = x + y;
                    block[j + h] = x - y;
                }
            }
            h *= 2;
        }
    }
}

/// Undoes [`rotate`] followed by the packer's `1/B` scaling: since `H·H = B·I`,
/// `D · H · (H D w / B) = w`. Used by the packer's quality checks.
pub fn unrotate_scaled(rot: Rotation, v: &mut [f32]) {
    walsh_hadamard(rot.block as usize, v);
    for (i, x) in v.iter_mut().enumerate() {
        if sign_negative(rot.seed, i) {
            *x = -*x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_signs_are_pinned() {
        // FNV-1a 64 reference values: "" and "a".
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        // splitmix64 of the first state from seed 0 (the well-known first output).
        assert_eq!(splitmix64(GOLDEN), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn rotation_is_an_exact_transform_on_small_input() {
        // B = 4, signs forced positive by picking a seed whose first word has low 4 bits 0.
        let mut seed = 0u64;
        while sign_word(seed, 0) & 0xf != 0 {
            seed += 1;
        }
        let rot = Rotation { block: 4, seed };
        let mut v = [1.0f32, 2.0, 3.0, 4.0];
        rotate(rot, &mut v);
        // H_4 · [1,2,3,4] by hand: [10, -2, -4, 0].
        assert_eq!(v, [10.0, -2.0, -4.0, 0.0]);
        for x in v.iter_mut() {
            *x /= 4.0;
        }
        unrotate_scaled(rot, &mut v);
        assert_eq!(v, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn block_is_largest_power_of_two_dividing_k() {
        assert_eq!(rotation_for("x", 576).block, 64);
        assert_eq!(rotation_for("x", 1536).block, 512);
        assert_eq!(rotation_for("x", 896).block, 128);
        assert_eq!(rotation_for("x", 4864).block, 256);
    }
}
