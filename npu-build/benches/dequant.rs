//! Dequantization throughput per type, single thread, in GB/s of f32 output.
//!
//! `cargo bench -p npu-build --bench dequant` prints a Markdown table. Each type dequantizes
//! 64 MiB of f32 output (16 Mi values) from random blocks with finite f16 scales, several
//! times; the best run counts (least disturbed by other processes on a shared machine).
//! Optional argument: MiB of output per type (e.g. `-- 16` for a quicker run).

use npu_build::dequant::{dequantize, SUPPORTED};
use npu_build::gguf::GgmlType;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Deterministic xorshift bytes.
fn noise(len: usize, mut s: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    for _ in 0..len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.push((s >> 24) as u8);
    }
    v
}

/// Byte offsets of f16 scale fields in a block (ggml-common.h), to keep scales finite so
/// the timing is of ordinary numbers, not NaN/inf arithmetic.
fn f16_scale_offsets(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 | IQ4_NL | IQ4_XS => &[0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        Q2_K => &[80, 82],
        Q3_K => &[108],
        Q6_K => &[208],
        F16 => &[0],
        _ => &[],
    }
}

fn blocks(ty: GgmlType, n_values: usize) -> Vec<u8> {
    let bb = ty.block_bytes() as usize;
    let n_blocks = n_values / ty.block_len() as usize;
    let mut src = noise(n_blocks * bb, 0x9e37_79b9_7f4a_7c15 ^ ty.id() as u64);
    for (i, b) in src.chunks_exact_mut(bb).enumerate() {
        for &o in f16_scale_offsets(ty) {
            // Scales in [2^-15, 2^0): exponent 0..15, random mantissa and sign.
            let h = ((i as u16).wrapping_mul(0x2b5) & 0x83ff) | (((i % 15) as u16) << 10);
            b[o..o + 2].copy_from_slice(&h.to_le_bytes());
        }
        match ty {
            GgmlType::Q8_K => b[..4].copy_from_slice(&(1.0f32 / (1 + i % 97) as f32).to_le_bytes()),
            GgmlType::F32 => b.copy_from_slice(&(i as f32 * 0.001).to_le_bytes()),
            GgmlType::BF16 => b[1] &= 0x3f, // finite
            _ => {}
        }
    }
    src
}

fn main() {
    let mib: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(64);
    let n_values = mib << 18; // MiB of f32
    let mut dst = vec![0f32; n_values];
    println!("Dequantization throughput, single thread, {mib} MiB of f32 output per type (best of runs).\n");
    println!("| type | bytes/value | input MiB | GB/s f32 out | Gvalues/s |");
    println!("|---|---:|---:|---:|---:|");
    for &ty in SUPPORTED {
        let src = blocks(ty, n_values);
        dequantize(ty, &src, &mut dst).unwrap(); // warm up: fault in the pages
        let mut best = Duration::MAX;
        let start = Instant::now();
        let mut runs = 0;
        while runs < 3 || (start.elapsed() < Duration::from_secs(2) && runs < 20) {
            let t = Instant::now();
            dequantize(ty, black_box(&src), black_box(&mut dst)).unwrap();
            best = best.min(t.elapsed());
            runs += 1;
        }
        black_box(&dst);
        let secs = best.as_secs_f64();
        println!(
            "| {} | {:.4} | {:.1} | {:.2} | {:.2} |",
            ty,
            ty.block_bytes() as f64 / ty.block_len() as f64,
            src.len() as f64 / (1 << 20) as f64,
            (n_values * 4) as f64 / secs / 1e9,
            n_values as f64 / secs / 1e9,
        );
    }
}
