//! SmolLM2-135M decode and prefill speed on the fast CPU backend, per target × scheme, on 1
//! and 2 threads: `cargo bench -p npu-build --bench decode` (needs the model in the cache,
//! `scripts/fetch-models.sh`; env `NPU_BENCH_TARGETS=cpu,rk3588`, `NPU_BENCH_SCHEMES=int8,...`,
//! `NPU_BENCH_TOKENS=64`). Packs once per configuration, then times a 64-token prompt (prefill)
//! and greedy decoding after it. Prints wall-clock tok/s and, on Linux, tokens per CPU-second
//! of the process (which a busy shared machine distorts less), and the weight bytes a decode
//! step streams (for the memory-bandwidth ceiling). Asserts nothing about speed.

use npu_build::gguf::Gguf;
use npu_build::model::OwnedModel;
use npu_build::pack::PackOptions;
use npu_runtime::cpu::CpuFast;
use npu_runtime::format::{Scheme, TensorKind};
use npu_runtime::model::{arena_bytes, Session};
use npu_runtime::target::Target;
use std::time::Instant;

/// Process CPU seconds (user + system) from /proc/self/stat, if readable.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var).unwrap_or_else(|_| default.into()).split(',').map(str::to_owned).collect()
}

fn main() {
    let cache = std::env::var_os("NPU_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/npu-model")
    });
    let path = cache.join("smollm2-135m-instruct-q4_1.gguf");
    if !path.exists() {
        eprintln!(
            "decode bench: {} missing (scripts/fetch-models.sh); nothing measured",
            path.display()
        );
        return;
    }
    let tokens: usize =
        std::env::var("NPU_BENCH_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let g = Gguf::open(&path).unwrap();
    let prompt: Vec<u32> = (0..64u32).map(|i| (i * 7919) % 40000 + 100).collect();
    println!("SmolLM2-135M, prompt {} tokens, then {tokens} greedy tokens; tok/s wall (tok per CPU-second)", prompt.len());
    for target in list("NPU_BENCH_TARGETS", "cpu,rk3588") {
        let t = Target::by_name(&target).unwrap();
        for scheme in list("NPU_BENCH_SCHEMES", "fp16,int8,int8_hadamard,int4,int4_hadamard") {
            let scheme = Scheme::parse(&scheme).unwrap();
            if t.scheme_spec(scheme).is_err() {
                continue;
            }
            let opts = PackOptions { target: t, scheme, threads: 2 };
            let owned = OwnedModel::from_gguf(&g, &opts, Some(512)).unwrap();
            let (view, config) = (owned.view(), owned.config);
            let model = view.model();
            // Bytes one decode step reads: every matmul weight (the embedding row is negligible).
            let step_bytes: u64 = view
                .descs()
                .iter()
                .filter(|d| d.kind == TensorKind::Matmul)
                .flat_map(|d| d.shards.iter().map(|s| s.data.len))
                .sum();
            let mut line = format!(
                "{target:7} {:14} {:6.1} MB/token |",
                scheme.name(),
                step_bytes as f64 / 1e6
            );
            for threads in [1, 2] {
                let b = CpuFast::new().with_threads(threads).unwrap();
                let name = npu_runtime::backend::Backend::name(&b);
                let mut arena = vec![0u8; arena_bytes(&config, 512)];
                let mut s = Session::new(model, b, &mut arena).unwrap();
                let (t0, c0) = (Instant::now(), cpu_seconds());
                let mut next = argmax(s.prefill(&prompt).unwrap());
                let (t1, c1) = (Instant::now(), cpu_seconds());
                for _ in 0..tokens {
                    next = argmax(s.step(next).unwrap());
                }
                let (t2, c2) = (Instant::now(), cpu_seconds());
                let per_cpu = |a: Option<f64>, b: Option<f64>, n: usize| match (a, b) {
                    (Some(a), Some(b)) if b > a => format!("{:.1}", n as f64 / (b - a)),
                    _ => "?".into(),
                };
                let dec = tokens as f64 / (t2 - t1).as_secs_f64();
                line += &format!(
                    " {name} x{threads}: prefill {:6.1} ({}) decode {:6.1} ({}) = {:4.1} GB/s |",
                    prompt.len() as f64 / (t1 - t0).as_secs_f64(),
                    per_cpu(c0, c1, prompt.len()),
                    dec,
                    per_cpu(c1, c2, tokens),
                    dec * step_bytes as f64 / 1e9,
                );
            }
            println!("{line}");
        }
    }
}

fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}
