//! Matmul throughput of the CPU backends on one SmolLM2-sized layer (q/k/v/o, gate/up/down),
//! seeded random weights, every target layout × scheme: weight GB/s streamed per decode step
//! (M = 1) and per prefill batch (M = 16), for the reference executor and the fast backend
//! (each kernel set this CPU runs, 1 and 2 threads).
//!
//! `cargo bench -p npu-build --bench matmul` (env `NPU_BENCH_QUICK=1`: cpu and rk3588, fewer
//! repetitions; `NPU_BENCH_LAYERS=L`: L copies of the layer, each its own blob, run one after
//! the other, so that with L = 40 (≈ 180 MB of int8) the weights stream from DRAM as in a
//! whole-model decode step instead of staying in the last-level cache). Filters:
//! `NPU_BENCH_TARGET`, `NPU_BENCH_SCHEME`, `NPU_BENCH_THREADS` (1 or 2) keep one value;
//! `NPU_BENCH_NO_REFERENCE=1` checks against the single-threaded fast backend instead of the
//! (slow) reference executor and skips the portable kernels; `NPU_BENCH_REPS=N` sets the
//! repetitions; `NPU_BENCH_DECODE_ONLY=1` runs the M = 16 pass once (profiles then show M = 1). Prints numbers; asserts nothing about speed. The fast backend's output is
//! checked against the reference's bits here too, so a fast-but-wrong kernel cannot report.
//! Wall-clock minimum over repetitions: other processes on a shared machine inflate it.

use npu_build::pack::{pack, MemSource, PackOptions, SeededRng};
use npu_runtime::backend::{Backend, CpuReference, PackedWeight};
use npu_runtime::cpu::{scratch_len_rows, CpuFast, Isa};
use npu_runtime::format::Scheme;
use npu_runtime::target::Target;
use std::time::Instant;

const SHAPES: [(&str, usize, usize); 7] = [
    ("blk.0.attn_q.weight", 576, 576),
    ("blk.0.attn_k.weight", 192, 576),
    ("blk.0.attn_v.weight", 192, 576),
    ("blk.0.attn_output.weight", 576, 576),
    ("blk.0.ffn_gate.weight", 1536, 576),
    ("blk.0.ffn_up.weight", 1536, 576),
    ("blk.0.ffn_down.weight", 576, 1536),
];

/// Seconds for one pass over every tensor with `m` rows (minimum over `reps`), and the
/// outputs of the last pass.
fn time_layer(
    b: &mut dyn Backend,
    ws: &[PackedWeight<'_>],
    xs: &[Vec<f32>],
    m: usize,
    reps: usize,
) -> (f64, Vec<Vec<f32>>) {
    let mut outs: Vec<Vec<f32>> =
        ws.iter().map(|w| vec![0f32; m * w.desc().geom.n as usize]).collect();
    let mut scratch =
        vec![0f32; ws.iter().map(|w| scratch_len_rows(w.desc(), m)).max().unwrap_or(0)];
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        for ((w, x), y) in ws.iter().zip(xs).zip(outs.iter_mut()) {
            b.matmul(w, &x[..m * w.desc().geom.k as usize], m, y, &mut scratch).unwrap();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, outs)
}

fn main() {
    let quick = std::env::var("NPU_BENCH_QUICK").is_ok_and(|v| v == "1");
    let mut src = MemSource::default();
    let mut rng = SeededRng::new(1);
    for (name, n, k) in SHAPES {
        src.push(name, &[k as u64, n as u64], (0..n * k).map(|_| rng.normal() * 0.05).collect());
    }
    let xs: Vec<Vec<f32>> =
        SHAPES.iter().map(|&(_, _, k)| (0..16 * k).map(|_| rng.normal()).collect()).collect();
    let isas: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.available()).collect();
    let targets: &[&str] = if quick { &["cpu", "rk3588"] } else { &["cpu", "rk3588", "rk3566"] };
    let reps: usize = std::env::var("NPU_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 5 } else { 20 });
    let layers: usize =
        std::env::var("NPU_BENCH_LAYERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    println!("{layers} SmolLM2 layer(s) (7 matmuls each); GB/s = packed weight bytes / wall time; MB = weight bytes");
    for &target in targets {
        if std::env::var("NPU_BENCH_TARGET").is_ok_and(|o| o != target) {
            continue;
        }
        let t = Target::by_name(target).unwrap();
        for scheme in Scheme::ALL {
            if std::env::var("NPU_BENCH_SCHEME").is_ok_and(|o| o != scheme.name()) {
                continue;
            }
            if t.scheme_spec(scheme).is_err() {
                continue;
            }
            let p = pack(&src, &PackOptions { target: t, scheme, threads: 2 }).unwrap();
            let descs = p.descs();
            let blobs: Vec<Vec<u8>> = (0..layers).map(|_| p.blob.to_vec()).collect();
            let ws: Vec<PackedWeight<'_>> = blobs
                .iter()
                .flat_map(|b| descs.iter().map(move |d| PackedWeight::new(d, b).unwrap()))
                .collect();
            let xs: Vec<Vec<f32>> = (0..layers).flat_map(|_| xs.iter().cloned()).collect();
            let bytes: u64 = layers as u64
                * descs.iter().flat_map(|d| d.shards.iter().map(|s| s.data.len)).sum::<u64>();
            let gbs = |s: f64| bytes as f64 / s / 1e9;
            let (t_ref, want) = if std::env::var("NPU_BENCH_NO_REFERENCE").is_ok() {
                let (t, o) = time_layer(&mut CpuFast::new(), &ws, &xs, 1, 1);
                (t, o)
            } else {
                time_layer(&mut CpuReference, &ws, &xs, 1, if quick { 1 } else { 3 })
            };
            let mut line = format!(
                "{target:7} {:14} {:5.2} MB  reference {:6.2} GB/s |",
                scheme.name(),
                bytes as f64 / 1e6,
                gbs(t_ref)
            );
            for &isa in isas.iter().filter(|i| {
                std::env::var("NPU_BENCH_NO_REFERENCE").is_err() || **i != Isa::Portable
            }) {
                for threads in [1, 2] {
                    if std::env::var("NPU_BENCH_THREADS").is_ok_and(|o| o != threads.to_string()) {
                        continue;
                    }
                    let mut b = CpuFast::with_isa(isa).unwrap().with_threads(threads).unwrap();
                    let (t1, got) = time_layer(&mut b, &ws, &xs, 1, reps);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
                    assert!(
                        same,
                        "{target}/{}: {} x{threads} differs from the reference",
                        scheme.name(),
                        isa.name()
                    );
                    let m16_reps = if std::env::var("NPU_BENCH_DECODE_ONLY").is_ok() {
                        1
                    } else {
                        reps.div_ceil(4)
                    };
                    let (t16, _) = time_layer(&mut b, &ws, &xs, 16, m16_reps);
                    line += &format!(
                        " {} x{threads}: M=1 {:6.2} GB/s, M=16 {:6.1} rows/ms |",
                        isa.name(),
                        gbs(t1),
                        16.0 / t16 / 1e3
                    );
                }
            }
            println!("{line}");
        }
    }
}
