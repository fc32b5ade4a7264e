//! Hand-worked blocks with known values, and the error and no-panic contracts of
//! `npu_build::dequant::dequantize`. Bit-exact agreement with gguf-py on random and extreme
//! blocks and on real models is tested in `tests/oracle/`.

use npu_build::dequant::{dequantize, supported, DequantError, SUPPORTED};
use npu_build::gguf::GgmlType;

fn deq(ty: GgmlType, src: &[u8]) -> Vec<f32> {
    let n = src.len() / ty.block_bytes() as usize * ty.block_len() as usize;
    let mut out = vec![f32::NAN; n];
    dequantize(ty, src, &mut out).unwrap();
    out
}

const F16_ONE: [u8; 2] = [0x00, 0x3c];
const F16_HALF: [u8; 2] = [0x00, 0x38];

#[test]
fn q4_0_block() {
    // d = 0.5; byte j holds code j (low) and 15 - j (high).
    let mut b = F16_HALF.to_vec();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = deq(GgmlType::Q4_0, &b);
    for j in 0..16 {
        assert_eq!(y[j], 0.5 * (j as f32 - 8.0));
        assert_eq!(y[j + 16], 0.5 * (7.0 - j as f32));
    }
}

#[test]
fn q4_1_block() {
    // d = 0.25, m = -1: code 10 -> 1.5, code 5 -> 0.25.
    let mut b = vec![0x00, 0x34, 0x00, 0xbc];
    b.extend([0x5a; 16]);
    let y = deq(GgmlType::Q4_1, &b);
    assert_eq!(y[0], 1.5);
    assert_eq!(y[16], 0.25);
}

#[test]
fn q5_0_block() {
    // d = 1; fifth bits set for elements 0 and 31 only.
    let mut b = F16_ONE.to_vec();
    b.extend(0x8000_0001u32.to_le_bytes());
    let mut qs = [0u8; 16];
    qs[0] = 0x03;
    qs[15] = 0xf0;
    b.extend(qs);
    let y = deq(GgmlType::Q5_0, &b);
    assert_eq!(y[0], 3.0); // 19 - 16
    assert_eq!(y[1], -16.0);
    assert_eq!(y[15], -16.0);
    assert_eq!(y[31], 15.0); // 31 - 16
}

#[test]
fn q8_0_block() {
    let mut b = vec![0x00, 0x40]; // d = 2
    b.extend([0x80, 0x7f]);
    b.extend([0u8; 30]);
    let y = deq(GgmlType::Q8_0, &b);
    assert_eq!(&y[..3], &[-256.0, 254.0, 0.0]);
}

#[test]
fn q2_k_block() {
    let mut b = vec![0u8; 84];
    b[0] = 0x23; // sub-block 0: scale 3, min 2
    b[6] = 0x51; // sub-block 6 (elements 96..112): scale 1, min 5
    b[16] = 0b0100_0011; // qs[0]: element 0 code 3 (bits 0-1), element 96 code 1 (bits 6-7)
    b[80..82].copy_from_slice(&F16_ONE);
    b[82..84].copy_from_slice(&F16_HALF); // dmin = 0.5
    let y = deq(GgmlType::Q2_K, &b);
    assert_eq!(y[0], 8.0); // 3 * 3 - 0.5 * 2
    assert_eq!(y[1], -1.0); // 3 * 0 - 0.5 * 2
    assert_eq!(y[32], 0.0); // sub-block 2: all zero
    assert_eq!(y[96], -1.5); // 1 * 1 - 0.5 * 5
}

#[test]
fn q3_k_block() {
    let mut b = vec![0u8; 110];
    b[0] = 0b01; // hmask[0]: element 0 has its high bit (no -4); element 1 does not
    b[32] = 0b11; // qs[0]: element 0 low bits 3
    b[96] = 0x02; // scales[0]: low 4 bits of sub-block 0's scale = 2
    b[96 + 8] = 0x02; // scales[8]: high 2 bits of sub-block 0's scale = 2 -> 34 - 32 = 2
    b[108..110].copy_from_slice(&F16_ONE);
    let y = deq(GgmlType::Q3_K, &b);
    assert_eq!(y[0], 6.0); // 2 * 3
    assert_eq!(y[1], -8.0); // 2 * (0 - 4)
    assert_eq!(y[16], 128.0); // sub-block 1: scale 0 - 32 = -32, code 0 - 4
}

#[test]
fn q4_k_block() {
    let mut b = vec![0u8; 144];
    b[0..2].copy_from_slice(&F16_ONE); // d
    b[2..4].copy_from_slice(&F16_HALF); // dmin
    let s = &mut b[4..16];
    s[0] = 2 | (1 << 6); // sub-block 0 scale 2; top bits feed sub-block 4's scale
    s[4] = 4; // sub-block 0 min 4
    s[8] = 0x31; // sub-block 4: scale low 1 (+ 16 from s[0]) = 17, min low 3
    b[16] = 0x07; // qs[0]: sub-block 0 code 7, sub-block 1 code 0
    b[16 + 64] = 0x05; // qs[64]: sub-block 4 code 5
    let y = deq(GgmlType::Q4_K, &b);
    assert_eq!(y[0], 12.0); // 2 * 7 - 0.5 * 4
    assert_eq!(y[32], 0.0);
    assert_eq!(y[128], 83.5); // 17 * 5 - 0.5 * 3
}

#[test]
fn q5_k_block() {
    let mut b = vec![0u8; 176];
    b[0..2].copy_from_slice(&F16_ONE);
    b[4] = 1; // sub-block 0 scale 1, min 0
    b[5] = 2; // sub-block 1 scale 2, min 0
    b[16] = 0b10; // qh[0]: bit 1 -> fifth bit of element 0 of sub-block 1
    b[48] = 0x3f; // qs[0]: sub-block 0 code 15, sub-block 1 code 3 (+16)
    let y = deq(GgmlType::Q5_K, &b);
    assert_eq!(y[0], 15.0);
    assert_eq!(y[32], 38.0); // 2 * 19
}

#[test]
fn q6_k_block() {
    let mut b = vec![0u8; 210];
    b[0] = 0x01; // ql[0] low: element 0 low bits 1
    b[32] = 0x90; // ql[32] high: element 96 low bits 9
    b[128] = 0b1100_0010; // qh[0]: element 0 high bits 2, element 96 high bits 3
    b[192] = (-2i8) as u8; // scales[0]
    b[192 + 6] = 3; // scales[6] (elements 96..112)
    b[208..210].copy_from_slice(&F16_ONE);
    let y = deq(GgmlType::Q6_K, &b);
    assert_eq!(y[0], -2.0); // -2 * (33 - 32)
    assert_eq!(y[96], 75.0); // 3 * (57 - 32)
    assert_eq!(y[1], 64.0); // -2 * (0 - 32)
}

#[test]
fn q8_k_block() {
    let mut b = vec![0u8; 292];
    b[0..4].copy_from_slice(&0.25f32.to_le_bytes());
    b[4 + 5] = (-4i8) as u8;
    b[260..].fill(0xff); // bsums do not affect the values
    let y = deq(GgmlType::Q8_K, &b);
    assert_eq!(y[5], -1.0);
    assert_eq!(y[0].to_bits(), 0);
}

#[test]
fn iq4_nl_and_xs_blocks() {
    let mut b = F16_ONE.to_vec();
    b.push(0xf0);
    b.extend([0x88; 15]);
    let y = deq(GgmlType::IQ4_NL, &b);
    assert_eq!((y[0], y[16], y[1]), (-127.0, 113.0, 1.0));

    let mut b = vec![0u8; 136];
    b[0..2].copy_from_slice(&F16_HALF);
    b[2..4].copy_from_slice(&0b10u16.to_le_bytes()); // sub-block 0 scale high bits 2
    b[4] = 0x01; // sub-block 0 scale low bits 1 -> 33 - 32 = 1
    b[8] = 0x8f;
    let y = deq(GgmlType::IQ4_XS, &b);
    assert_eq!(y[0], 56.5); // 0.5 * 113
    assert_eq!(y[16], 0.5); // 0.5 * 1
    assert_eq!(y[32], 0.5 * -32.0 * -127.0); // sub-block 1: scale -32, code 0
}

#[test]
fn float_types() {
    assert_eq!(deq(GgmlType::F32, &(-1.5f32).to_le_bytes()), [-1.5]);
    assert_eq!(deq(GgmlType::F16, &[0x00, 0xc0, 0x01, 0x00]), [-2.0, 2f32.powi(-24)]);
    assert_eq!(deq(GgmlType::BF16, &[0x80, 0x3f]), [1.0]);
    // A signaling NaN keeps its payload and stays signaling, as in numpy.
    assert_eq!(deq(GgmlType::F16, &[0x01, 0x7c])[0].to_bits(), 0x7f80_2000);
}

#[test]
fn unsupported_type_is_an_error_naming_it() {
    let err = dequantize(GgmlType::IQ2_XXS, &[0; 66], &mut [0.0; 256]).unwrap_err();
    assert_eq!(err, DequantError::Unsupported(GgmlType::IQ2_XXS));
    let msg = err.to_string();
    assert!(msg.contains("IQ2_XXS") && msg.contains("Q4_K"), "{msg}");
    for ty in GgmlType::ALL {
        assert_eq!(supported(ty), SUPPORTED.contains(&ty));
    }
    assert_eq!(SUPPORTED.len(), 16);
}

#[test]
fn length_mismatch_is_an_error() {
    let cases: [(GgmlType, usize, usize); 5] = [
        (GgmlType::Q4_0, 17, 32), // short source
        (GgmlType::Q4_0, 19, 32), // long source
        (GgmlType::Q4_0, 18, 33), // not whole blocks
        (GgmlType::Q4_K, 144, 32),
        (GgmlType::F32, 5, 1),
    ];
    for (ty, src, dst) in cases {
        let mut out = vec![0.0; dst];
        let err = dequantize(ty, &vec![0; src], &mut out).unwrap_err();
        assert_eq!(err, DequantError::LengthMismatch { ty, src_bytes: src, dst_len: dst });
        assert!(err.to_string().contains(ty.name()));
        assert!(out.iter().all(|&v| v == 0.0), "nothing written on error");
    }
    // Empty input is zero whole blocks.
    assert_eq!(dequantize(GgmlType::Q6_K, &[], &mut []), Ok(()));
}

/// Deterministic xorshift bytes.
fn noise(len: usize, mut s: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

#[test]
fn any_bytes_any_length_never_panic() {
    for (k, &ty) in SUPPORTED.iter().enumerate() {
        let (bl, bb) = (ty.block_len() as usize, ty.block_bytes() as usize);
        for blocks in 0..4 {
            for src_len in [(blocks * bb).saturating_sub(1), blocks * bb, blocks * bb + 1] {
                let src = &noise(src_len, k as u64 + 7)[..];
                for dst_len in [blocks * bl, blocks * bl + 1, (blocks * bl).saturating_sub(1)] {
                    let mut out = vec![0.0; dst_len];
                    let ok = ty.bytes_for(dst_len as u64) == Some(src.len() as u64);
                    assert_eq!(
                        dequantize(ty, src, &mut out).is_ok(),
                        ok,
                        "{ty} {} {dst_len}",
                        src.len()
                    );
                }
            }
        }
        // All-0xFF blocks: NaN scales for f16-scaled types, still no panic.
        let mut out = vec![0.0; 3 * bl];
        dequantize(ty, &vec![0xff; 3 * bb], &mut out).unwrap();
    }
}

#[test]
fn row_chunks_equal_whole_tensor() {
    for (k, &ty) in SUPPORTED.iter().enumerate() {
        let (bl, bb) = (ty.block_len() as usize, ty.block_bytes() as usize);
        // Finite scales are not needed here: the comparison is of bit patterns.
        let src = noise(12 * bb, 99 + k as u64);
        let mut whole = vec![0.0f32; 12 * bl];
        dequantize(ty, &src, &mut whole).unwrap();
        let mut parts = vec![0.0f32; 12 * bl];
        for (s, d) in src.chunks(5 * bb).zip(parts.chunks_mut(5 * bl)) {
            dequantize(ty, s, d).unwrap();
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&whole), bits(&parts), "{ty}");
    }
}
