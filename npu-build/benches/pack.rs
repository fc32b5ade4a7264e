//! Packing throughput on seeded random matrices (no model file needed):
//! `cargo bench -p npu-build --bench pack`. Whole-model numbers (time and peak memory) come
//! from `scripts/bench-pack.sh`.

use npu_build::pack::{pack, MemSource, PackOptions, SeededRng};
use npu_runtime::format::Scheme;
use npu_runtime::target::Target;
use std::time::Instant;

fn main() {
    // A SmolLM2-sized layer: q/o 576×576, k/v 192×576, gate/up 1536×576, down 576×1536.
    let mut src = MemSource::default();
    let mut rng = SeededRng::new(1);
    for (name, n, k) in [
        ("blk.0.attn_q.weight", 576, 576),
        ("blk.0.attn_k.weight", 192, 576),
        ("blk.0.attn_v.weight", 192, 576),
        ("blk.0.attn_output.weight", 576, 576),
        ("blk.0.ffn_gate.weight", 1536, 576),
        ("blk.0.ffn_up.weight", 1536, 576),
        ("blk.0.ffn_down.weight", 576, 1536),
    ] {
        src.push(name, &[k, n], (0..n * k).map(|_| rng.normal() * 0.05).collect());
    }
    let params: usize = src.tensors.iter().map(|t| t.2.len()).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for target in ["rk3588", "cpu"] {
        for scheme in Scheme::ALL {
            for t in [1, threads] {
                let opts =
                    PackOptions { target: Target::by_name(target).unwrap(), scheme, threads: t };
                let _ = pack(&src, &opts).unwrap(); // warm-up
                let reps = 3;
                let start = Instant::now();
                for _ in 0..reps {
                    std::hint::black_box(pack(&src, &opts).unwrap());
                }
                let s = start.elapsed().as_secs_f64() / reps as f64;
                println!(
                    "{target:7} {:14} threads {t}: {:7.2} ms/layer, {:6.1} Mparam/s (incl. report)",
                    scheme.name(),
                    s * 1e3,
                    params as f64 / s / 1e6
                );
            }
        }
    }
}
