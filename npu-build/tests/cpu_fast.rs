//! The fast CPU backend (`npu_runtime::cpu::CpuFast`) against the reference executor, bit for
//! bit (f32 bits compared), for every kernel set this machine runs (the portable one always),
//! every target × scheme the packer emits, odd M/N/K, K and N padding, several K segments,
//! rotation, rows in one block or several, and 1–3 threads. Plus the int4 accumulator's
//! overflow semantics on hand-built descriptors, and whole-model logits through a Session.

mod pack_common;
use npu_build::pack::{pack, MemSource, PackOptions, SeededRng};
use npu_runtime::backend::{Backend, CpuReference, PackedWeight};
use npu_runtime::cpu::{scratch_len_rows, CpuFast, Isa};
use npu_runtime::exec;
use npu_runtime::format::{
    ElemType, Geometry, Layout, Pipeline, Region, Scheme, Shard, TensorDesc, TensorKind,
};
use npu_runtime::target::Target;
use npu_runtime::Error;
use pack_common::{one, random_matrix};

fn isas() -> Vec<Isa> {
    let v: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.available()).collect();
    eprintln!("kernel sets tested here: {:?}", v);
    v
}

fn backends() -> Vec<(String, CpuFast)> {
    let mut v = Vec::new();
    for isa in isas() {
        for t in [1, 2, 3] {
            let b = CpuFast::with_isa(isa).unwrap().with_threads(t).unwrap();
            v.push((format!("{}x{t}", isa.name()), b));
        }
    }
    v
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Activations with the awkward cases: outliers, an all-zero row (scale 0), exact ties.
fn activations(seed: u64, m: usize, k: usize) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    let mut x: Vec<f32> =
        (0..m * k).map(|i| rng.normal() * if i % 61 == 0 { 8.0 } else { 1.0 }).collect();
    if m > 1 {
        x[k..2 * k].fill(0.0);
    }
    if m > 2 {
        for (i, v) in x[2 * k..3 * k].iter_mut().enumerate() {
            *v = (i % 7) as f32 - 3.0;
        }
    }
    x
}

fn compare(
    target: &str,
    scheme: Scheme,
    n: usize,
    k: usize,
    ms: &[usize],
    seed: u64,
    backends: &mut [(String, CpuFast)],
) {
    let w = random_matrix(seed, n, k);
    let src = one("blk.1.ffn_up.weight", n, k, w);
    let p =
        pack(&src, &PackOptions { target: Target::by_name(target).unwrap(), scheme, threads: 1 })
            .unwrap();
    let d = p.tensors[0].desc();
    let pw = PackedWeight::new(&d, &p.blob).unwrap();
    for &m in ms {
        let x = activations(seed ^ m as u64, m, k);
        let mut want = vec![0f32; m * n];
        let mut scratch = vec![0f32; exec::scratch_len(&d)];
        exec::matmul(&d, &p.blob, &x, m, &mut want, &mut scratch).unwrap();
        for (name, b) in backends.iter_mut() {
            // Minimal scratch (one row at a time) and enough for many rows per block.
            for rows in [1, 16] {
                let mut scratch = vec![0f32; scratch_len_rows(&d, rows)];
                let mut got = vec![f32::NAN; m * n];
                b.matmul(&pw, &x, m, &mut got, &mut scratch).unwrap();
                assert!(
                    bits(&got) == bits(&want),
                    "{target}/{} n={n} k={k} m={m} {name} rows/block {rows}: first difference at {:?}",
                    scheme.name(),
                    got.iter().zip(&want).position(|(a, b)| a.to_bits() != b.to_bits())
                );
            }
        }
    }
}

#[test]
fn every_target_scheme_and_kernel_matches_the_reference() {
    let mut bs = backends();
    for t in Target::all() {
        for s in Scheme::ALL {
            if t.scheme_spec(s).is_err() {
                continue;
            }
            // K: under one tile, odd, several segments on every target (cpu int4 128, int8
            // 256; RK int4 640); N: one channel, odd, several tiles and cores.
            for (i, &(n, k)) in
                [(1, 33), (7, 70), (70, 200), (130, 1500), (37, 577)].iter().enumerate()
            {
                compare(t.name, s, n, k, &[1, 3, 19], (i as u64 + 1) * 1000 + n as u64, &mut bs);
            }
        }
    }
}

#[test]
fn long_segments_match() {
    // RK3576 int8: K = 9000 → 3 segments of ≤ 4096; RK3588 fp16 with K > 8192.
    let mut bs = backends();
    compare("rk3576", Scheme::Int8Hadamard, 40, 9000, &[2], 9, &mut bs);
    compare("rk3588", Scheme::Fp16, 33, 8300, &[2], 10, &mut bs);
    // Qwen2.5's ffn_down on RK3588 int4: K = 4864 → 8 segments of 608 (> 585: the −8 check).
    compare("rk3588", Scheme::Int4Hadamard, 64, 4864, &[1, 2], 11, &mut bs);
}

#[test]
fn smollm2_shapes_match() {
    let mut bs = backends();
    for (target, s) in [
        ("cpu", Scheme::Int8),
        ("rk3588", Scheme::Int8Hadamard),
        ("cpu", Scheme::Fp16),
        ("rk3588", Scheme::Int4),
        ("cpu", Scheme::Int4Hadamard),
        ("rk3566", Scheme::Fp16),
    ] {
        compare(target, s, 576, 1536, &[1, 5], 12, &mut bs);
        compare(target, s, 1536, 576, &[1], 13, &mut bs);
    }
}

/// A one-shard int4 descriptor with a single K segment of `kl`, every byte `byte`.
fn int4_hand(kl: u32, byte: u8) -> (Vec<u8>, [Shard; 1], Geometry) {
    let geom = Geometry::plan(kl, 64, 32, 64, kl, 1);
    let len = kl as usize * 64 / 2;
    let shards = [Shard {
        k_seg: 0,
        core: 0,
        k0: 0,
        k_len: kl,
        n0: 0,
        n_len: 64,
        data: Region { offset: 0, len: len as u64 },
    }];
    let mut blob = vec![byte; len];
    for _ in 0..64 {
        blob.extend_from_slice(&1.0f32.to_le_bytes());
    }
    (blob, shards, geom)
}

#[test]
fn int4_overflow_semantics_match() {
    let mut bs = backends();
    // (segment length, weight byte): 704 > 668 with codes 7 (reference loop, overflows for
    // equal x); 608 with −8 codes (0x88: the −8 check sends it to the reference loop); 608
    // with codes 7 (SIMD: 49·608 fits); 576 with −8 (SIMD: 56·576 fits).
    for (kl, byte) in [(704u32, 0x77u8), (608, 0x88), (608, 0x77), (576, 0x88), (640, 0x8f)] {
        let (blob, shards, geom) = int4_hand(kl, byte);
        let d = TensorDesc {
            name: "hand",
            kind: TensorKind::Matmul,
            scheme: Some(Scheme::Int4),
            pipeline: Some(Pipeline::I4I4I16),
            layout: Layout::Tiled { n_tile: 64, k_tile: 32, elem: ElemType::I4 },
            geom,
            rotation: None,
            shards: &shards,
            scales: Region { offset: blob.len() as u64 - 256, len: 256 },
        };
        let pw = PackedWeight::new(&d, &blob).unwrap();
        let alt: Vec<f32> = (0..kl).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let ones = vec![1.0f32; kl as usize];
        // Two rows: the second overflows, then the first: errors must name the same segment.
        let mut two = alt.clone();
        two.extend_from_slice(&ones);
        for (x, m) in [(&ones, 1usize), (&alt, 1), (&two, 2)] {
            let mut want = vec![0f32; 64 * m];
            let mut scratch = vec![0f32; kl as usize];
            let r_ref = exec::matmul(&d, &blob, x, m, &mut want, &mut scratch);
            for (name, b) in bs.iter_mut() {
                let mut got = vec![0f32; 64 * m];
                let mut scratch = vec![0f32; scratch_len_rows(&d, m)];
                let r = b.matmul(&pw, x, m, &mut got, &mut scratch);
                assert_eq!(r, r_ref, "kl {kl} byte {byte:#x} {name}");
                if r.is_ok() {
                    assert_eq!(bits(&got), bits(&want), "kl {kl} byte {byte:#x} {name}");
                }
            }
        }
    }
    // The error names the segment: a 2-segment tensor whose second segment overflows.
    let geom = Geometry::plan(1408, 64, 32, 64, 704, 1);
    assert_eq!((geom.k_segs, geom.k_seg_len), (2, 704));
    let half = 704 * 64 / 2;
    let shards = [
        Shard {
            k_seg: 0,
            core: 0,
            k0: 0,
            k_len: 704,
            n0: 0,
            n_len: 64,
            data: Region { offset: 0, len: half as u64 },
        },
        Shard {
            k_seg: 1,
            core: 0,
            k0: 704,
            k_len: 704,
            n0: 0,
            n_len: 64,
            data: Region { offset: half as u64, len: half as u64 },
        },
    ];
    let mut blob = vec![0x11u8; half];
    blob.extend(vec![0x77u8; half]);
    blob.extend((0..128).flat_map(|_| 1.0f32.to_le_bytes()));
    let d = TensorDesc {
        name: "hand2",
        kind: TensorKind::Matmul,
        scheme: Some(Scheme::Int4),
        pipeline: Some(Pipeline::I4I4I16),
        layout: Layout::Tiled { n_tile: 64, k_tile: 32, elem: ElemType::I4 },
        geom,
        rotation: None,
        shards: &shards,
        scales: Region { offset: 2 * half as u64, len: 512 },
    };
    let pw = PackedWeight::new(&d, &blob).unwrap();
    let x = vec![1.0f32; 1408];
    let mut want = vec![0f32; 64];
    assert_eq!(
        exec::matmul(&d, &blob, &x, 1, &mut want, &mut vec![0f32; 1408]),
        Err(Error::AccumulatorOverflow { k_seg: 1 })
    );
    for (name, b) in bs.iter_mut() {
        let r = b.matmul(&pw, &x, 1, &mut want, &mut vec![0f32; scratch_len_rows(&d, 1)]);
        assert_eq!(r, Err(Error::AccumulatorOverflow { k_seg: 1 }), "{name}");
    }
}

#[test]
fn misuse_is_an_error() {
    let src = one("blk.0.attn_q.weight", 8, 64, random_matrix(1, 8, 64));
    let p = pack(
        &src,
        &PackOptions { target: Target::by_name("cpu").unwrap(), scheme: Scheme::Int8, threads: 1 },
    )
    .unwrap();
    let d = p.tensors[0].desc();
    let pw = PackedWeight::new(&d, &p.blob).unwrap();
    let mut b = CpuFast::new();
    let need = b.scratch_len(&pw);
    assert_eq!(
        b.matmul(&pw, &[0.0; 63], 1, &mut [0.0; 8], &mut vec![0.0; need]),
        Err(Error::Length { what: "x", need: 64, got: 63 })
    );
    assert_eq!(
        b.matmul(&pw, &[0.0; 64], 1, &mut [0.0; 7], &mut vec![0.0; need]),
        Err(Error::Length { what: "y", need: 8, got: 7 })
    );
    assert!(matches!(
        b.matmul(&pw, &[0.0; 64], 1, &mut [0.0; 8], &mut vec![0.0; need - 1]),
        Err(Error::Length { what: "scratch", .. })
    ));
    // Every kernel set this CPU lacks is refused, not run.
    for isa in Isa::ALL {
        assert_eq!(CpuFast::with_isa(isa).is_ok(), isa.available());
    }
}

#[test]
fn whole_model_logits_match_the_reference() {
    // A small llama model through Session, prefill (batched rows) then steps.
    use npu_build::model::OwnedModel;
    use npu_build::tokenizer::OwnedTokenizerTables;
    use npu_runtime::model::{arena_bytes, Arch, ModelConfig, Session};
    let (d, ff, vocab) = (64u64, 96u64, 80u64);
    let mut rng = SeededRng::new(3);
    let mut src = MemSource::default();
    let mut mat = |src: &mut MemSource, name: &str, k: u64, n: u64| {
        let v = (0..k * n).map(|_| rng.normal() * 0.15).collect();
        src.push(name, &[k, n], v);
    };
    mat(&mut src, "token_embd.weight", d, vocab);
    for l in 0..2 {
        src.push(&format!("blk.{l}.attn_norm.weight"), &[d], vec![1.0; d as usize]);
        mat(&mut src, &format!("blk.{l}.attn_q.weight"), d, d);
        mat(&mut src, &format!("blk.{l}.attn_k.weight"), d, 32);
        mat(&mut src, &format!("blk.{l}.attn_v.weight"), d, 32);
        mat(&mut src, &format!("blk.{l}.attn_output.weight"), d, d);
        src.push(&format!("blk.{l}.ffn_norm.weight"), &[d], vec![1.0; d as usize]);
        mat(&mut src, &format!("blk.{l}.ffn_gate.weight"), d, ff);
        mat(&mut src, &format!("blk.{l}.ffn_up.weight"), d, ff);
        mat(&mut src, &format!("blk.{l}.ffn_down.weight"), ff, d);
    }
    src.push("output_norm.weight", &[d], vec![1.0; d as usize]);
    let c = ModelConfig::new(Arch::Llama, 2, 64, 4, 2, 16, 96, 80, 10000.0, 1e-5, true, 64, 2);
    let prompt: Vec<u32> = (0..20).map(|i| (i * 7 + 3) % 80).collect();
    for (target, scheme) in [
        ("cpu", Scheme::Fp16),
        ("rk3588", Scheme::Int8Hadamard),
        ("cpu", Scheme::Int4),
        ("rk3588", Scheme::Int4Hadamard),
    ] {
        let p = pack(
            &src,
            &PackOptions { target: Target::by_name(target).unwrap(), scheme, threads: 1 },
        )
        .unwrap();
        let owned = OwnedModel::new(c, p, OwnedTokenizerTables::empty());
        let view = owned.view();
        let model = view.model();
        let run = |b: &mut dyn FnMut(&mut Vec<u8>) -> Vec<Vec<u32>>| {
            let mut arena = vec![0u8; arena_bytes(&c, 64)];
            b(&mut arena)
        };
        let logits_with = |backend_ref: bool, threads: usize| {
            run(&mut |arena: &mut Vec<u8>| {
                let mut out = Vec::new();
                if backend_ref {
                    let mut s = Session::new(model, CpuReference, arena).unwrap();
                    out.push(bits(s.prefill(&prompt).unwrap()));
                    out.push(bits(s.step(5).unwrap()));
                } else {
                    let b = CpuFast::new().with_threads(threads).unwrap();
                    let mut s = Session::new(model, b, arena).unwrap();
                    out.push(bits(s.prefill(&prompt).unwrap()));
                    out.push(bits(s.step(5).unwrap()));
                }
                out
            })
        };
        let want = logits_with(true, 1);
        for t in [1, 2] {
            assert_eq!(logits_with(false, t), want, "{target}/{}: {t} threads", scheme.name());
        }
    }
}
