//! The packer's quality report: per tensor, how far the packed values are from the f32 source
//! (dequantized GGUF), and how far a matmul through the packed tensor is from the f32 matmul.
//!
//! - **Weight error** (`rel_err = ‖W − Ŵ‖/‖W‖`, `sqnr_db = 10·log₁₀(‖W‖²/‖W − Ŵ‖²)`) is
//!   measured in the stored domain: for Hadamard schemes against the rotated source rows. The
//!   rotation is orthogonal up to the exact factor 1/√B, so both ratios equal the un-rotated
//!   comparison (up to f32 rounding of the rotation; a test checks this by un-rotating).
//! - **Output error** (`out_rel_err`, `out_sqnr_db`) is what matters for the model: the packed
//!   tensor run through the reference executor (activation quantization included) on a fixed
//!   batch of [`REPORT_BATCH`] approximately normal activation rows seeded by the
//!   tensor name, against the f64 product with the f32 source. Real activations have outlier
//!   channels that this batch lacks, so it understates the activation side of int4 error.
//!
//! Sums are f64 and combined in a fixed order; `log₁₀` is only used for these numbers, never
//! for anything written into the blob.

use crate::rng::SeededRng;
use npu_runtime::exec::{self, rotate};
use npu_runtime::format::{Scheme, TensorDesc, TensorKind};
use serde::Serialize;
use std::fmt::Write as _;

/// Rows of the report's activation batch per matmul tensor.
pub const REPORT_BATCH: usize = 4;

/// The report's activation batch for a tensor: `REPORT_BATCH × k` approximately normal
/// values seeded by the tensor name.
pub fn report_batch(name: &str, k: usize) -> Vec<f32> {
    let mut rng = SeededRng::new(rotate::fnv1a64(name.as_bytes()) ^ 0x5eed);
    (0..REPORT_BATCH * k).map(|_| rng.normal()).collect()
}

/// Weight error sums over a set of values, in the stored (rotated) domain. Combined in a
/// fixed order by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WeightStats {
    /// Σ w².
    pub sum_w2: f64,
    /// Σ (w − ŵ)².
    pub sum_e2: f64,
    /// max |w − ŵ|.
    pub max_abs: f64,
}

impl WeightStats {
    /// Counts one stored value `v` and its reconstruction `deq`.
    pub fn note(&mut self, v: f32, deq: f32) {
        let d = (v - deq) as f64;
        self.sum_w2 += v as f64 * v as f64;
        self.sum_e2 += d * d;
        self.max_abs = self.max_abs.max(d.abs());
    }
}

/// Reference outputs of source rows `raw` (`[rows][k]`) on a tensor's report batch, as
/// `[rows][REPORT_BATCH]` f64 dot products in K order.
pub fn reference_outputs(raw: &[f32], k: usize, batch: &[f32]) -> Vec<f64> {
    let mut y = Vec::with_capacity(raw.len() / k.max(1) * REPORT_BATCH);
    for w in raw.chunks_exact(k.max(1)) {
        for xm in batch.chunks_exact(k.max(1)).take(REPORT_BATCH) {
            y.push(w.iter().zip(xm).map(|(&a, &b)| a as f64 * b as f64).sum());
        }
    }
    y
}

/// `(Σ y², Σ (y − ŷ)²)` of a packed matmul tensor run by the reference executor on its
/// report batch, against the reference outputs `y_ref` (`[n][REPORT_BATCH]`).
pub fn output_error(
    d: &TensorDesc<'_>,
    blob: &[u8],
    batch: &[f32],
    y_ref: &[f64],
) -> Result<(f64, f64), npu_runtime::Error> {
    let n = d.geom.n as usize;
    let mut y = vec![0f32; REPORT_BATCH * n];
    let mut scratch = vec![0f32; exec::scratch_len(d)];
    exec::matmul(d, blob, batch, REPORT_BATCH, &mut y, &mut scratch)?;
    let (mut s2, mut e2) = (0f64, 0f64);
    for m in 0..REPORT_BATCH {
        for nn in 0..n {
            let r = y_ref[nn * REPORT_BATCH + m];
            let d = y[m * n + nn] as f64 - r;
            s2 += r * r;
            e2 += d * d;
        }
    }
    Ok((s2, e2))
}

/// One tensor's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// Kind.
    pub kind: TensorKind,
    /// Scheme of its values (None for f32).
    pub scheme: Option<Scheme>,
    /// Rows (N).
    pub n: u32,
    /// Row length (K).
    pub k: u32,
    /// Bytes in the blob (shards + scales).
    pub bytes: u64,
    /// Σ w² over the source values (stored domain).
    pub sum_w2: f64,
    /// Σ (w − ŵ)².
    pub sum_e2: f64,
    /// max |w − ŵ|.
    pub max_abs_err: f64,
    /// `(Σ y², Σ (y − ŷ)²)` over the report batch (matmul tensors).
    pub out: Option<(f64, f64)>,
}

fn ratio_db(sig: f64, err: f64) -> f64 {
    if err == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (sig / err).log10()
    }
}

impl TensorReport {
    /// An empty report for a tensor of `bytes` bytes in the blob.
    pub fn new(d: &TensorDesc<'_>, bytes: u64) -> Self {
        TensorReport {
            name: d.name.to_string(),
            kind: d.kind,
            scheme: d.scheme,
            n: d.geom.n,
            k: d.geom.k,
            bytes,
            sum_w2: 0.0,
            sum_e2: 0.0,
            max_abs_err: 0.0,
            out: None,
        }
    }
    /// Adds the weight statistics of one chunk of rows.
    pub fn add(&mut self, st: &WeightStats) {
        self.sum_w2 += st.sum_w2;
        self.sum_e2 += st.sum_e2;
        self.max_abs_err = self.max_abs_err.max(st.max_abs);
    }
    /// ‖W − Ŵ‖/‖W‖.
    pub fn rel_err(&self) -> f64 {
        if self.sum_w2 == 0.0 {
            0.0
        } else {
            (self.sum_e2 / self.sum_w2).sqrt()
        }
    }
    /// Weight SQNR in dB (infinite when exact).
    pub fn sqnr_db(&self) -> f64 {
        ratio_db(self.sum_w2, self.sum_e2)
    }
    /// Output relative error on the report batch.
    pub fn out_rel_err(&self) -> Option<f64> {
        self.out.map(|(s, e)| if s == 0.0 { 0.0 } else { (e / s).sqrt() })
    }
    /// Output SQNR in dB on the report batch.
    pub fn out_sqnr_db(&self) -> Option<f64> {
        self.out.map(|(s, e)| ratio_db(s, e))
    }
}

/// Median and worst of a set of SQNRs.
#[derive(Clone, Debug, PartialEq)]
pub struct SqnrSummary {
    /// Tensors counted.
    pub count: usize,
    /// Median SQNR (dB); the lower middle for even counts.
    pub median_db: f64,
    /// Worst (lowest) SQNR (dB).
    pub worst_db: f64,
    /// Tensor with the worst SQNR.
    pub worst_tensor: String,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Target name.
    pub target: &'static str,
    /// Model scheme.
    pub scheme: Scheme,
    /// Per tensor, in blob order.
    pub tensors: Vec<TensorReport>,
}

fn summarize<'a>(items: impl Iterator<Item = (&'a str, f64)>) -> Option<SqnrSummary> {
    let mut v: Vec<(&str, f64)> = items.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    Some(SqnrSummary {
        count: v.len(),
        median_db: v[(v.len() - 1) / 2].1,
        worst_db: v[0].1,
        worst_tensor: v[0].0.to_string(),
    })
}

impl Report {
    /// Weight-SQNR summary over the matmul tensors that use the model's scheme (the head,
    /// which may use another scheme, is left out so schemes compare like for like).
    pub fn weight_summary(&self) -> Option<SqnrSummary> {
        summarize(self.scheme_matmuls().map(|t| (t.name.as_str(), t.sqnr_db())))
    }

    /// Output-SQNR summary over the same tensors.
    pub fn output_summary(&self) -> Option<SqnrSummary> {
        summarize(
            self.scheme_matmuls().filter_map(|t| t.out_sqnr_db().map(|d| (t.name.as_str(), d))),
        )
    }

    fn scheme_matmuls(&self) -> impl Iterator<Item = &TensorReport> {
        self.tensors
            .iter()
            .filter(move |t| t.kind == TensorKind::Matmul && t.scheme == Some(self.scheme))
    }

    /// The one-line summary printed by `npu pack`.
    pub fn summary_line(&self) -> String {
        let bytes: u64 = self.tensors.iter().map(|t| t.bytes).sum();
        let mut s = format!(
            "{} {}: {} tensors, {:.1} MiB",
            self.target,
            self.scheme.name(),
            self.tensors.len(),
            bytes as f64 / (1024.0 * 1024.0)
        );
        if let Some(w) = self.weight_summary() {
            let _ = write!(
                s,
                "; weight SQNR over {} matmuls: median {:.2} dB, worst {:.2} dB ({})",
                w.count, w.median_db, w.worst_db, w.worst_tensor
            );
        }
        if let Some(o) = self.output_summary() {
            let _ = write!(
                s,
                "; output SQNR median {:.2} dB, worst {:.2} dB ({})",
                o.median_db, o.worst_db, o.worst_tensor
            );
        }
        s
    }

    /// `report.json`.
    pub fn to_json(&self) -> String {
        let summary = |s: Option<SqnrSummary>| {
            s.map(|s| SummaryJson {
                count: s.count,
                median_sqnr_db: s.median_db,
                worst_sqnr_db: s.worst_db,
                worst_tensor: s.worst_tensor,
            })
        };
        let doc = ReportJson {
            target: self.target,
            scheme: self.scheme.name(),
            domain: "stored (rotated for hadamard schemes; equal ratios to the original domain)",
            weight_summary: summary(self.weight_summary()),
            output_summary: summary(self.output_summary()),
            tensors: self
                .tensors
                .iter()
                .map(|t| TensorJson {
                    name: &t.name,
                    kind: t.kind.name(),
                    scheme: t.scheme.map(Scheme::name),
                    n: t.n,
                    k: t.k,
                    bytes: t.bytes,
                    rel_err: t.rel_err(),
                    sqnr_db: t.sqnr_db(),
                    max_abs_err: t.max_abs_err,
                    out_rel_err: t.out_rel_err(),
                    out_sqnr_db: t.out_sqnr_db(),
                })
                .collect(),
        };
        // Non-finite numbers (an exact tensor's infinite SQNR) are written as null.
        let mut s = serde_json::to_string_pretty(&doc).expect("the report serializes");
        s.push('\n');
        s
    }
}

#[derive(Serialize)]
struct SummaryJson {
    count: usize,
    median_sqnr_db: f64,
    worst_sqnr_db: f64,
    worst_tensor: String,
}

#[derive(Serialize)]
struct TensorJson<'a> {
    name: &'a str,
    kind: &'static str,
    scheme: Option<&'static str>,
    n: u32,
    k: u32,
    bytes: u64,
    rel_err: f64,
    sqnr_db: f64,
    max_abs_err: f64,
    out_rel_err: Option<f64>,
    out_sqnr_db: Option<f64>,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    target: &'a str,
    scheme: &'static str,
    domain: &'static str,
    weight_summary: Option<SummaryJson>,
    output_summary: Option<SummaryJson>,
    tensors: Vec<TensorJson<'a>>,
}
