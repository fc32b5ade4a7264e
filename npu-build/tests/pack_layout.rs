//! Pins each native layout on small matrices, by hand from the layout definitions
//! (rknn_matmul_api.h v2.3.2 B native layouts), through the real packer: the byte at a
//! hand-computed offset must hold the hand-computed code.

mod pack_common;
use npu_build::pack::{pack, MemSource, PackOptions};
use npu_runtime::format::Scheme;
use npu_runtime::target::Target;
use pack_common::one;

fn pack1(src: &MemSource, target: &str, scheme: Scheme) -> npu_build::pack::Packed {
    let opts = PackOptions { target: Target::by_name(target).unwrap(), scheme, threads: 1 };
    pack(src, &opts).unwrap()
}

/// Rows whose absmax is exactly `qmax`, so the scale is 1 and code == value.
fn grid(n: usize, k: usize, qmax: i32, f: impl Fn(usize, usize) -> i32) -> Vec<f32> {
    let mut v = Vec::new();
    for nn in 0..n {
        for kk in 0..k {
            v.push(if kk == 0 { qmax as f32 } else { f(nn, kk) as f32 });
        }
    }
    v
}

#[test]
fn rk3588_int8_native_layout() {
    // K = 64, N = 64: 2 N-tiles of 32 → core 0 gets n 0..32, core 1 n 32..64, core 2 none.
    let code = |n: usize, k: usize| ((n * 7 + k * 3) % 255) as i32 - 127;
    let src = one("blk.0.ffn_up.weight", 64, 64, grid(64, 64, 127, code));
    let p = pack1(&src, "rk3588", Scheme::Int8);
    let t = &p.tensors[0];
    assert_eq!(t.shards.len(), 2);
    assert_eq!((t.shards[0].data.offset, t.shards[0].data.len), (0, 2048));
    assert_eq!((t.shards[1].data.offset, t.shards[1].data.len), (2048, 2048));
    // (k=33, n=1): tile (n/32=0, k/32=1) → 1·1024, + n%32·32 + k%32 = 1024 + 32 + 1.
    assert_eq!(p.blob[1057] as i8 as i32, code(1, 33));
    // (k=5, n=40): shard 1, local n 8 → 2048 + 8·32 + 5.
    assert_eq!(p.blob[2048 + 261] as i8 as i32, code(40, 5));
    // (k=0, n=63): the forced absmax column.
    assert_eq!(p.blob[2048 + 31 * 32] as i8, 127);
    // Scales: [1][64] f32 of 1.0 after the shards.
    assert_eq!(t.scales.offset, 4096);
    assert_eq!(&p.blob[4096..4100], &1.0f32.to_le_bytes());
}

#[test]
fn rk3588_int4_native_layout_and_nibbles() {
    // K = 64, N = 64: one N-tile of 64 → only core 0 has a shard.
    let code = |n: usize, k: usize| ((n + 2 * k) % 15) as i32 - 7;
    let src = one("blk.0.attn_q.weight", 64, 64, grid(64, 64, 7, code));
    let p = pack1(&src, "rk3588", Scheme::Int4);
    let t = &p.tensors[0];
    assert_eq!(t.shards.len(), 1);
    assert_eq!(t.shards[0].data.len, 64 * 64 / 2);
    // (k=34, n=3) and (k=35, n=3): k-tile 1 → 1024 bytes (64·32/2), + n·16 + (k%32)/2;
    // even k in the low nibble.
    let b = p.blob[1024 + 3 * 16 + 1];
    assert_eq!(((b << 4) as i8 >> 4) as i32, code(3, 34));
    assert_eq!(((b as i8) >> 4) as i32, code(3, 35));
    // (k=0, n=0) = 7 (low), (k=1, n=0) (high).
    assert_eq!(p.blob[0], (7u8 & 0xf) | (((code(0, 1) as u8) & 0xf) << 4));
}

#[test]
fn rk3588_fp16_native_layout() {
    // K = 64, N = 32: 2 N-tiles of 16 → cores 0 and 1.
    let v: Vec<f32> = (0..32 * 64).map(|i| i as f32 * 0.25).collect();
    let src = one("blk.0.attn_k.weight", 32, 64, v.clone());
    let p = pack1(&src, "rk3588", Scheme::Fp16);
    let t = &p.tensors[0];
    assert_eq!(t.shards.len(), 2);
    assert_eq!(t.shards[1].data.offset, 2048);
    // (k=40, n=20): shard 1 (n0 = 16), local n 4: 2048 + (k-tile 1)·(16·32·2) + 4·64 + 8·2.
    let at = 2048 + 1024 + 256 + 16;
    let got = half::f16::from_le_bytes([p.blob[at], p.blob[at + 1]]).to_f32();
    assert_eq!(got, v[20 * 64 + 40]);
}

#[test]
fn rk3566_layouts() {
    // fp16 (N/8, K/16, 8, 16): K = 32, N = 8, (k=17, n=3): k-tile 1 → 8·16·2 = 256 bytes,
    // + 3·16·2 + 1·2.
    let v: Vec<f32> = (0..8 * 32).map(|i| i as f32).collect();
    let p = pack1(&one("blk.0.attn_v.weight", 8, 32, v.clone()), "rk3566", Scheme::Fp16);
    let at = 256 + 96 + 2;
    assert_eq!(half::f16::from_le_bytes([p.blob[at], p.blob[at + 1]]).to_f32(), v[3 * 32 + 17]);
    // int8 (N/16, K/32, 16, 32): K = 64, N = 16, (k=40, n=2): 512 + 2·32 + 8.
    let code = |n: usize, k: usize| ((n * 5 + k) % 200) as i32 - 100;
    let p =
        pack1(&one("blk.0.attn_v.weight", 16, 64, grid(16, 64, 127, code)), "rk3566", Scheme::Int8);
    assert_eq!(p.blob[512 + 64 + 8] as i8 as i32, code(2, 40));
}

#[test]
fn cpu_row_major_int4_and_k_padding() {
    // cpu int4: row-major [N][K_pad], K = 40 padded to 64: (k=5, n=1) → byte 32 + 2, high.
    let code = |n: usize, k: usize| ((3 * n + k) % 15) as i32 - 7;
    let p = pack1(&one("blk.0.ffn_gate.weight", 2, 40, grid(2, 40, 7, code)), "cpu", Scheme::Int4);
    assert_eq!(p.tensors[0].geom.k_pad, 64);
    assert_eq!(((p.blob[34] as i8) >> 4) as i32, code(1, 5));
    // Padding k = 40..64 of every row is zero.
    assert!(p.blob[20..32].iter().all(|&b| b == 0));
    assert!(p.blob[32 + 20..64].iter().all(|&b| b == 0));
    // rk3588 int8 with K = 40 → 64: (k=45, n=0) is padding.
    let p = pack1(
        &one("blk.0.ffn_gate.weight", 32, 40, grid(32, 40, 127, |_, _| 1)),
        "rk3588",
        Scheme::Int8,
    );
    assert_eq!(p.blob[1024 + 13], 0);
    assert_eq!(p.blob[1024 - 32 + 7] as i8, 1); // (k=7, n=31)
}
