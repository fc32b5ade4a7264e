//! Shared helpers for the pack_* tests (`mod pack_common;`).
#![allow(dead_code)]

use npu_build::pack::{MemSource, SeededRng, SourceTensor, TensorSource};
use std::path::PathBuf;

/// A model from the cache, or None with a note (a failure when NPU_REQUIRE_MODELS=1).
pub fn model(file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("NPU_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/npu-model")))?;
    let p = dir.join(file);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("NPU_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!(
            "model {} missing and NPU_REQUIRE_MODELS=1 (run scripts/fetch-models.sh)",
            p.display()
        );
    }
    eprintln!("note: skipping, model {} not found (run scripts/fetch-models.sh)", p.display());
    None
}

pub const SMOLLM2: &str = "smollm2-135m-instruct-q4_1.gguf";
pub const QWEN: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// Random matrix `n × k`, approximately normal, with a few outlier columns (as LLM weights
/// and activations have) so rotation has something to do.
pub fn random_matrix(seed: u64, n: usize, k: usize) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    let mut v: Vec<f32> = (0..n * k).map(|_| rng.normal() * 0.05).collect();
    for row in 0..n {
        for c in (0..k).step_by(97) {
            v[row * k + c] *= 12.0;
        }
    }
    v
}

/// A subset of another source's tensors, by name.
pub struct Subset<'a, S: TensorSource> {
    pub inner: &'a S,
    pub keep: Vec<usize>,
}

impl<'a, S: TensorSource> Subset<'a, S> {
    pub fn new(inner: &'a S, pred: impl Fn(&SourceTensor) -> bool) -> Self {
        let keep =
            inner.tensors().iter().enumerate().filter(|(_, t)| pred(t)).map(|(i, _)| i).collect();
        Subset { inner, keep }
    }
}

impl<S: TensorSource> TensorSource for Subset<'_, S> {
    fn tensors(&self) -> Vec<SourceTensor> {
        let all = self.inner.tensors();
        self.keep.iter().map(|&i| all[i].clone()).collect()
    }
    fn read_rows(
        &self,
        index: usize,
        first_row: u64,
        n_rows: u64,
        out: &mut [f32],
    ) -> Result<(), String> {
        self.inner.read_rows(self.keep[index], first_row, n_rows, out)
    }
}

/// A MemSource holding one tensor.
pub fn one(name: &str, n: usize, k: usize, v: Vec<f32>) -> MemSource {
    let mut s = MemSource::default();
    s.push(name, &[k as u64, n as u64], v);
    s
}
