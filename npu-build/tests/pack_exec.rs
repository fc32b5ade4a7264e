//! pack → reference-execute equals the f32 matmul of the source within each scheme's derived
//! error bound (`npu_build::pack::error_bound`), on random matrices over every target and
//! scheme, including several K segments, K/N padding and uneven core splits. Plus the int4
//! overflow guarantees.

mod pack_common;
use npu_build::pack::{error_bound, pack, unpack_original, PackOptions, SeededRng};
use npu_runtime::exec;
use npu_runtime::format::{
    ElemType, Geometry, Layout, Pipeline, Region, Scheme, Shard, TensorDesc, TensorKind,
};
use npu_runtime::target::Target;
use npu_runtime::Error;
use pack_common::{one, random_matrix};

/// Checks |y − y_f32| ≤ bound for every element; returns the largest ratio err/bound.
fn check(target: &str, scheme: Scheme, n: usize, k: usize, m: usize, seed: u64) -> f64 {
    let w = random_matrix(seed, n, k);
    let src = one("blk.3.ffn_down.weight", n, k, w.clone());
    let opts = PackOptions { target: Target::by_name(target).unwrap(), scheme, threads: 2 };
    let p = pack(&src, &opts).unwrap();
    let d = p.tensors[0].desc();
    let mut rng = SeededRng::new(seed ^ 77);
    let x: Vec<f32> =
        (0..m * k).map(|i| rng.normal() * if i % 61 == 0 { 8.0 } else { 1.0 }).collect();
    let mut y = vec![0f32; m * n];
    let mut scratch = vec![0f32; exec::scratch_len(&d)];
    exec::matmul(&d, &p.blob, &x, m, &mut y, &mut scratch).unwrap();
    let bound = error_bound(&d, &p.blob, &x, m).unwrap();
    let mut worst = 0f64;
    for mm in 0..m {
        for nn in 0..n {
            let exact: f64 = (0..k).map(|kk| w[nn * k + kk] as f64 * x[mm * k + kk] as f64).sum();
            let err = (y[mm * n + nn] as f64 - exact).abs();
            let b = bound[mm * n + nn];
            assert!(
                err <= b,
                "{target} {} n={n} k={k}: y[{mm}][{nn}] err {err} > bound {b}",
                scheme.name()
            );
            worst = worst.max(err / b);
        }
    }
    worst
}

#[test]
fn every_target_and_scheme_within_bound() {
    // Shapes: K not a multiple of 32, N not a multiple of any tile, K over one int4 segment.
    for t in Target::all() {
        for s in Scheme::ALL {
            if t.scheme_spec(s).is_err() {
                continue;
            }
            for &(n, k) in &[(70, 200), (130, 1500)] {
                let r = check(t.name, s, n, k, 3, (n * k) as u64);
                // The bound is not vacuous: real errors use a visible part of it.
                if s != Scheme::Fp16 {
                    assert!(r > 0.005, "{} {} bound too loose ({r})", t.name, s.name());
                }
            }
        }
    }
}

#[test]
fn many_segments_int8_rk3576() {
    // K = 9000 → 3 segments of ≤ 4096 on RK3576.
    check("rk3576", Scheme::Int8Hadamard, 40, 9000, 2, 9);
    check("rk3588", Scheme::Int8, 40, 9000, 2, 10);
}

#[test]
fn unrotating_recovers_the_source_within_the_grid() {
    // Hadamard storage un-rotated is the source up to quantization; the report's
    // stored-domain SQNR matches the original-domain one.
    let (n, k) = (64, 576);
    let w = random_matrix(5, n, k);
    let src = one("blk.0.attn_q.weight", n, k, w.clone());
    for s in [Scheme::Int8Hadamard, Scheme::Int4Hadamard] {
        let p = pack(
            &src,
            &PackOptions { target: Target::by_name("rk3588").unwrap(), scheme: s, threads: 1 },
        )
        .unwrap();
        let back = unpack_original(&p.tensors[0].desc(), &p.blob).unwrap();
        let (mut s2, mut e2) = (0f64, 0f64);
        for (a, b) in w.iter().zip(&back) {
            s2 += (*a as f64).powi(2);
            e2 += (*a as f64 - *b as f64).powi(2);
        }
        let orig_db = 10.0 * (s2 / e2).log10();
        let rep = p.report.tensors[0].sqnr_db();
        assert!((orig_db - rep).abs() < 0.01, "{}: original {orig_db} vs stored {rep}", s.name());
    }
}

#[test]
fn int4_worst_case_cannot_overflow() {
    // Every weight and activation quantizes to ±7: the largest possible |partial| in every
    // segment, 49·K_seg. K = 1920 → 3 segments of 640 → 31 360 per segment.
    let (n, k) = (64, 1920);
    for sign in [1.0f32, -1.0] {
        let src = one("blk.0.ffn_down.weight", n, k, vec![0.5; n * k]);
        let p = pack(
            &src,
            &PackOptions {
                target: Target::by_name("rk3588").unwrap(),
                scheme: Scheme::Int4,
                threads: 1,
            },
        )
        .unwrap();
        let d = p.tensors[0].desc();
        assert_eq!((d.geom.k_segs, d.geom.k_seg_len), (3, 640));
        let x = vec![sign * 3.0; k];
        let mut y = vec![0f32; n];
        let mut scratch = vec![0f32; exec::scratch_len(&d)];
        exec::matmul(&d, &p.blob, &x, 1, &mut y, &mut scratch).unwrap();
        // 3 · 31 360 · (3/7) · (0.5/7) = 1920 · 1.5 exactly up to f32 rounding.
        for v in y {
            assert!((v - sign * 2880.0).abs() < 1e-2, "{v}");
        }
    }
}

#[test]
fn int4_segment_over_the_bound_is_reported() {
    // A hand-built descriptor with one 704-long K segment (> 668): all codes 7 and x all
    // equal overflows int16 (49 · 704 = 34 496); the executor must say so, not wrap.
    let geom = Geometry::plan(704, 64, 32, 64, 704, 1);
    let len = 704 * 64 / 2;
    let shards = [Shard {
        k_seg: 0,
        core: 0,
        k0: 0,
        k_len: 704,
        n0: 0,
        n_len: 64,
        data: Region { offset: 0, len: len as u64 },
    }];
    let mut blob = vec![0x77u8; len];
    for _ in 0..64 {
        blob.extend_from_slice(&1.0f32.to_le_bytes());
    }
    let d = TensorDesc {
        name: "hand",
        kind: TensorKind::Matmul,
        scheme: Some(Scheme::Int4),
        pipeline: Some(Pipeline::I4I4I16),
        layout: Layout::Tiled { n_tile: 64, k_tile: 32, elem: ElemType::I4 },
        geom,
        rotation: None,
        shards: &shards,
        scales: Region { offset: len as u64, len: 256 },
    };
    let mut y = vec![0f32; 64];
    let mut scratch = vec![0f32; 704];
    let r = exec::matmul(&d, &blob, &vec![1.0; 704], 1, &mut y, &mut scratch);
    assert_eq!(r, Err(Error::AccumulatorOverflow { k_seg: 0 }));
    // Alternating signs keep every prefix small: no overflow.
    let x: Vec<f32> = (0..704).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    exec::matmul(&d, &blob, &x, 1, &mut y, &mut scratch).unwrap();
    assert!(y.iter().all(|&v| v == 0.0));
}

#[test]
fn embeddings_and_vectors_round_trip() {
    let mut src = npu_build::pack::MemSource::default();
    let emb = random_matrix(3, 50, 40);
    src.push("token_embd.weight", &[40, 50], emb.clone());
    src.push("blk.0.attn_norm.weight", &[40], (0..40).map(|i| i as f32 * 0.1).collect());
    let p = pack(
        &src,
        &PackOptions {
            target: Target::by_name("rk3588").unwrap(),
            scheme: Scheme::Int4,
            threads: 1,
        },
    )
    .unwrap();
    let names: Vec<&str> = p.tensors.iter().map(|t| t.name.as_str()).collect();
    // Tied model: the head is synthesized right after the embedding, in int8.
    assert_eq!(names, ["token_embd.weight", "output.weight", "blk.0.attn_norm.weight"]);
    assert_eq!(p.tensors[1].scheme, Some(Scheme::Int8));
    let mut row = vec![0f32; 40];
    exec::embed_row(&p.tensors[0].desc(), &p.blob, 7, &mut row).unwrap();
    for (kk, &v) in row.iter().enumerate() {
        let w = emb[7 * 40 + kk];
        let s = emb[7 * 40..8 * 40].iter().fold(0f32, |a, b| a.max(b.abs())) / 127.0;
        assert!((v - w).abs() <= s / 2.0 * 1.0001, "{kk}: {v} vs {w}");
    }
    assert_eq!(
        exec::embed_row(&p.tensors[0].desc(), &p.blob, 50, &mut row),
        Err(Error::RowOutOfRange { row: 50, rows: 50 })
    );
    let mut norm = vec![0f32; 40];
    exec::read_f32(&p.tensors[2].desc(), &p.blob, &mut norm).unwrap();
    assert_eq!(norm[13], 13.0 * 0.1);
}

#[test]
fn unsupported_pair_is_an_error_listing_what_works() {
    let src = one("blk.0.attn_q.weight", 8, 32, vec![0.0; 256]);
    let e = pack(
        &src,
        &PackOptions {
            target: Target::by_name("rk3568").unwrap(),
            scheme: Scheme::Int4Hadamard,
            threads: 1,
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "target `rk3568` cannot run quant `int4_hadamard`; it supports: fp16, int8, int8_hadamard"
    );
}
