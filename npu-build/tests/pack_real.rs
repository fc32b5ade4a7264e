//! Real tensors: SmolLM2-135M (Q4_1) and Qwen2.5-Coder-0.5B (Q4_K_M) from the model cache.
//! Skipped with a note when a model is missing, unless NPU_REQUIRE_MODELS=1.

mod pack_common;
use npu_build::gguf::Gguf;
use npu_build::pack::{error_bound, pack, PackOptions, SeededRng, TensorSource};
use npu_runtime::exec;
use npu_runtime::format::{Scheme, TensorKind};
use npu_runtime::target::Target;
use pack_common::{model, Subset, QWEN, SMOLLM2};

fn opts(target: &str, scheme: Scheme) -> PackOptions {
    PackOptions { target: Target::by_name(target).unwrap(), scheme, threads: 2 }
}

#[test]
fn smollm2_pack_execute_within_bound() {
    let Some(path) = model(SMOLLM2) else { return };
    let g = Gguf::open(&path).unwrap();
    // One layer's seven matmuls: K = 576 (d) and 1536 (ff), N = 576, 192 (GQA k/v), 1536.
    let sub = Subset::new(&g, |t| t.name.starts_with("blk.7.") && t.dims.len() == 2);
    assert_eq!(sub.keep.len(), 7);
    for (target, schemes) in
        [("rk3588", &Scheme::ALL[..]), ("cpu", &Scheme::ALL[..]), ("rk3566", &Scheme::ALL[..3])]
    {
        for &s in schemes {
            let p = pack(&sub, &opts(target, s)).unwrap();
            for (i, t) in p.tensors.iter().enumerate() {
                let d = t.desc();
                let (n, k, m) = (d.geom.n as usize, d.geom.k as usize, 2);
                let mut w = vec![0f32; n * k];
                sub.read_rows(i, 0, n as u64, &mut w).unwrap();
                let mut rng = SeededRng::new(i as u64);
                let x: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
                let mut y = vec![0f32; m * n];
                let mut scratch = vec![0f32; exec::scratch_len(&d)];
                exec::matmul(&d, &p.blob, &x, m, &mut y, &mut scratch).unwrap();
                let bound = error_bound(&d, &p.blob, &x, m).unwrap();
                for mm in 0..m {
                    for nn in 0..n {
                        let exact: f64 =
                            (0..k).map(|kk| w[nn * k + kk] as f64 * x[mm * k + kk] as f64).sum();
                        let err = (y[mm * n + nn] as f64 - exact).abs();
                        assert!(
                            err <= bound[mm * n + nn],
                            "{target} {} {}: [{mm}][{nn}] {err} > {}",
                            s.name(),
                            t.name,
                            bound[mm * n + nn]
                        );
                    }
                }
            }
        }
    }
}

/// Per-tensor weight SQNR of `scheme` on a sample of layers.
fn sqnrs(src: &impl TensorSource, scheme: Scheme) -> Vec<(String, f64)> {
    let p = pack(src, &opts("rk3588", scheme)).unwrap();
    p.report
        .tensors
        .iter()
        .filter(|t| t.kind == TensorKind::Matmul && t.scheme == Some(scheme))
        .map(|t| (t.name.clone(), t.sqnr_db()))
        .collect()
}

fn hadamard_beats_plain(file: &str, layers: &[u32]) {
    let Some(path) = model(file) else { return };
    let g = Gguf::open(&path).unwrap();
    let sub = Subset::new(&g, |t| {
        t.dims.len() == 2 && layers.iter().any(|l| t.name.starts_with(&format!("blk.{l}.")))
    });
    for (plain, rot) in [(Scheme::Int8, Scheme::Int8Hadamard), (Scheme::Int4, Scheme::Int4Hadamard)]
    {
        let a = sqnrs(&sub, plain);
        let b = sqnrs(&sub, rot);
        assert_eq!(a.len(), b.len());
        let wins = a.iter().zip(&b).filter(|(x, y)| y.1 > x.1).count();
        let med = |v: &[(String, f64)]| {
            let mut s: Vec<f64> = v.iter().map(|x| x.1).collect();
            s.sort_by(f64::total_cmp);
            (s[(s.len() - 1) / 2], s[0])
        };
        eprintln!(
            "{file}: {} median/worst {:.2}/{:.2} dB vs {} {:.2}/{:.2} dB; rotation wins {wins}/{}",
            plain.name(),
            med(&a).0,
            med(&a).1,
            rot.name(),
            med(&b).0,
            med(&b).1,
            a.len()
        );
        assert!(
            wins * 2 > a.len(),
            "{file}: {} beats {} on only {wins}/{} tensors",
            rot.name(),
            plain.name(),
            a.len()
        );
    }
}

#[test]
fn smollm2_hadamard_beats_plain() {
    hadamard_beats_plain(SMOLLM2, &[0, 6, 12, 18, 24, 29]);
}

#[test]
fn qwen_hadamard_beats_plain() {
    hadamard_beats_plain(QWEN, &[0, 8, 16, 23]);
}
