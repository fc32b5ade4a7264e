//! Every block layout this crate dequantizes, as a plain `#[repr(C)]` struct.
//!
//! The layouts are ggml's `block_*` structs from `ggml/src/ggml-common.h` (with `QK_K = 256`).
//! Every field is a byte array, so each struct has alignment 1 and no padding, any bit pattern
//! is a valid block, and a block is read from the file's bytes by copying (no `unsafe`, no
//! alignment requirement on the memory map). Multi-byte fields are little-endian, as ggml
//! writes them on every platform it supports. The byte size of each struct is asserted at
//! compile time against [`GgmlType::block_bytes`], so the layout and the type table cannot
//! drift apart.
//!
//! Field names follow ggml's so the formulas in the dequantizers read like ggml's reference.

use super::GgmlType;
use core::mem::{align_of, size_of};

/// Defines one block struct, its `from_bytes` reader and its compile-time size checks.
macro_rules! block {
    (
        $(#[$meta:meta])*
        $name:ident = $ty:ident {
            $( $(#[$fmeta:meta])* $field:ident : [u8; $n:expr] ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: [u8; $n], )+
        }

        impl $name {
            /// The ggml type whose blocks have this layout.
            pub const TYPE: GgmlType = GgmlType::$ty;
            /// Bytes in one block.
            pub const BYTES: usize = size_of::<$name>();

            /// Reads a block from its bytes, fields in declaration order.
            #[inline(always)]
            #[allow(unused_assignments)] // the offset after the last field is not needed
            pub fn from_bytes(b: &[u8; size_of::<$name>()]) -> Self {
                let mut at = 0usize;
                $(
                    let mut $field = [0u8; $n];
                    $field.copy_from_slice(&b[at..at + $n]);
                    at += $n;
                )+
                Self { $($field),+ }
            }
        }

        const _: () = assert!(
            size_of::<$name>() as u64 == GgmlType::$ty.block_bytes(),
            concat!(stringify!($name), " size differs from GgmlType::", stringify!($ty), ".block_bytes()")
        );
        const _: () = assert!(align_of::<$name>() == 1, concat!(stringify!($name), " must have alignment 1"));
    };
}

block! {
    /// `Q4_0`: 32 weights, 4.5 bits each. `y = d * (q - 8)` with `q` a 4-bit code.
    ///
    /// Element `j < 16` is the low nibble of `qs[j]`, element `j + 16` its high nibble.
    BlockQ4_0 = Q4_0 {
        /// Scale, f16.
        d: [u8; 2],
        /// Codes, two per byte.
        qs: [u8; 16],
    }
}

block! {
    /// `Q4_1`: 32 weights, 5 bits each. `y = d * q + m`, nibbles as in [`BlockQ4_0`].
    BlockQ4_1 = Q4_1 {
        /// Scale, f16.
        d: [u8; 2],
        /// Offset (the block minimum), f16.
        m: [u8; 2],
        /// Codes, two per byte.
        qs: [u8; 16],
    }
}

block! {
    /// `Q5_0`: 32 weights, 5.5 bits each. `y = d * (q - 16)` with `q` a 5-bit code: its low 4
    /// bits are nibbles as in [`BlockQ4_0`], its fifth bit for element `j` is bit `j` of the
    /// little-endian `u32` `qh`.
    BlockQ5_0 = Q5_0 {
        /// Scale, f16.
        d: [u8; 2],
        /// Fifth bits, one per element, little-endian u32.
        qh: [u8; 4],
        /// Low 4 bits, two per byte.
        qs: [u8; 16],
    }
}

block! {
    /// `Q5_1`: 32 weights, 6 bits each. `y = d * q + m`, `q` as in [`BlockQ5_0`].
    BlockQ5_1 = Q5_1 {
        /// Scale, f16.
        d: [u8; 2],
        /// Offset (the block minimum), f16.
        m: [u8; 2],
        /// Fifth bits, one per element, little-endian u32.
        qh: [u8; 4],
        /// Low 4 bits, two per byte.
        qs: [u8; 16],
    }
}

block! {
    /// `Q8_0`: 32 weights, 8.5 bits each. `y = d * q` with `q` a signed byte.
    BlockQ8_0 = Q8_0 {
        /// Scale, f16.
        d: [u8; 2],
        /// Codes, i8.
        qs: [u8; 32],
    }
}

block! {
    /// `Q2_K`: 256 weights in 16 sub-blocks of 16, 2.625 bits each.
    /// `y = (d * sc) * q - dmin * m`, where sub-block `s` has `sc = scales[s] & 15` and
    /// `m = scales[s] >> 4`.
    ///
    /// Codes: element `e` (`h = e / 128`, `k = e % 128 / 32`, `l = e % 32`) is bits `2k..2k+2`
    /// of `qs[32h + l]`.
    BlockQ2_K = Q2_K {
        /// 4-bit scale (low) and 4-bit min (high) per sub-block.
        scales: [u8; 16],
        /// 2-bit codes, four per byte.
        qs: [u8; 64],
        /// Super-block scale for the scales, f16.
        d: [u8; 2],
        /// Super-block scale for the mins, f16.
        dmin: [u8; 2],
    }
}

block! {
    /// `Q3_K`: 256 weights in 16 sub-blocks of 16, 3.4375 bits each. `y = (d * (sc - 32)) * q`.
    ///
    /// Codes: element `e` (`h`, `k`, `l` as in [`BlockQ2_K`]) takes 2 low bits from
    /// `qs[32h + l] >> 2k` and subtracts 4 unless bit `e / 32` of `hmask[l]` is set, giving
    /// `q` in `-4..=3`. Scales: 6 bits each; sub-block `s` has low 4 bits
    /// `scales[s % 8] >> (4 * (s / 8))` and high 2 bits `scales[8 + s % 4] >> (2 * (s / 4))`.
    BlockQ3_K = Q3_K {
        /// High bit of each code, inverted (set means "no -4").
        hmask: [u8; 32],
        /// Low 2 bits of each code, four per byte.
        qs: [u8; 64],
        /// 6-bit sub-block scales, packed.
        scales: [u8; 12],
        /// Super-block scale, f16.
        d: [u8; 2],
    }
}

block! {
    /// `Q4_K`: 256 weights in 8 sub-blocks of 32, 4.5 bits each.
    /// `y = (d * sc) * q - dmin * m`, with 6-bit `sc` and `m` per sub-block.
    ///
    /// Codes: sub-block `j` is the low (`j` even) or high (`j` odd) nibbles of
    /// `qs[32 * (j / 2)..][..32]`. Scales and mins (ggml's `get_scale_min_k4`): for `j < 4`,
    /// `sc = scales[j] & 63`, `m = scales[j + 4] & 63`; for `j >= 4`,
    /// `sc = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4` and
    /// `m = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4`.
    BlockQ4_K = Q4_K {
        /// Super-block scale for the scales, f16.
        d: [u8; 2],
        /// Super-block scale for the mins, f16.
        dmin: [u8; 2],
        /// 6-bit scales and mins, packed.
        scales: [u8; 12],
        /// 4-bit codes, two per byte.
        qs: [u8; 128],
    }
}

block! {
    /// `Q5_K`: 256 weights in 8 sub-blocks of 32, 5.5 bits each. As [`BlockQ4_K`], with a
    /// fifth code bit: element `l` of sub-block `j` takes bit `j` of `qh[l]` as bit 4.
    BlockQ5_K = Q5_K {
        /// Super-block scale for the scales, f16.
        d: [u8; 2],
        /// Super-block scale for the mins, f16.
        dmin: [u8; 2],
        /// 6-bit scales and mins, packed as in [`BlockQ4_K`].
        scales: [u8; 12],
        /// Fifth bits.
        qh: [u8; 32],
        /// Low 4 bits, two per byte.
        qs: [u8; 128],
    }
}

block! {
    /// `Q6_K`: 256 weights in 16 sub-blocks of 16, 6.5625 bits each.
    /// `y = (d * scales[e / 16]) * (q - 32)` with signed 8-bit scales.
    ///
    /// Codes: element `e` (`h = e / 128`, `k = e % 128 / 32`, `l = e % 32`) takes its low 4
    /// bits from nibble `k / 2` of `ql[64h + 32 * (k % 2) + l]` and its high 2 bits from
    /// bits `2k..2k+2` of `qh[32h + l]`.
    BlockQ6_K = Q6_K {
        /// Low 4 bits, two per byte.
        ql: [u8; 128],
        /// High 2 bits, four per byte.
        qh: [u8; 64],
        /// Sub-block scales, i8.
        scales: [u8; 16],
        /// Super-block scale, f16.
        d: [u8; 2],
    }
}

block! {
    /// `Q8_K`: 256 weights, 9.125 bits each (ggml's intermediate format for K-quant dot
    /// products). `y = d * q` with an f32 scale and signed byte codes; `bsums` (sums of each
    /// 16 codes) are redundant and ignored when dequantizing.
    BlockQ8_K = Q8_K {
        /// Scale, f32.
        d: [u8; 4],
        /// Codes, i8.
        qs: [u8; 256],
        /// Sums of groups of 16 codes, i16; unused here.
        bsums: [u8; 32],
    }
}

block! {
    /// `IQ4_NL`: 32 weights, 4.5 bits each, non-linear. `y = d * KVALUES_IQ4NL[q]`, nibbles as
    /// in [`BlockQ4_0`].
    BlockIQ4_NL = IQ4_NL {
        /// Scale, f16.
        d: [u8; 2],
        /// Codes (indices into the value table), two per byte.
        qs: [u8; 16],
    }
}

block! {
    /// `IQ4_XS`: 256 weights in 8 sub-blocks of 32, 4.25 bits each, non-linear.
    /// `y = (d * (ls - 32)) * KVALUES_IQ4NL[q]`.
    ///
    /// Sub-block `j` has 6-bit scale `ls` with low 4 bits nibble `j % 2` of `scales_l[j / 2]`
    /// and high 2 bits `scales_h >> 2j`; its element `l < 16` is the low nibble of
    /// `qs[16j + l]`, element `l + 16` the high nibble.
    BlockIQ4_XS = IQ4_XS {
        /// Scale, f16.
        d: [u8; 2],
        /// High 2 bits of the 8 sub-block scales, little-endian u16.
        scales_h: [u8; 2],
        /// Low 4 bits of the sub-block scales, two per byte.
        scales_l: [u8; 4],
        /// Codes, two per byte.
        qs: [u8; 128],
    }
}

/// ggml's `kvalues_iq4nl`: the 16 non-linear levels of `IQ4_NL` and `IQ4_XS`.
pub const KVALUES_IQ4NL: [i8; 16] =
    [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_bytes_keeps_field_order() {
        let mut b = [0u8; BlockQ4_K::BYTES];
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        let blk = BlockQ4_K::from_bytes(&b);
        assert_eq!(blk.d, [0, 1]);
        assert_eq!(blk.dmin, [2, 3]);
        assert_eq!(blk.scales[0], 4);
        assert_eq!(blk.qs[0], 16);
        assert_eq!(blk.qs[127], 143);
        assert_eq!(BlockQ4_K::TYPE, GgmlType::Q4_K);
    }
}
