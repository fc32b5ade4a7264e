//! The packer's quality report: per tensor, how far the packed values are from the f32 source
//! (dequantized GGUF), and how far a matmul through the packed tensor is from the f32 matmul.
//!
//! - **Weight error** (`rel_err = ‖W − Ŵ‖/‖W‖`, `sqnr_db = 10·log₁₀(‖W‖²/‖W − Ŵ‖²)`) is
//!   measured in the stored domain: for Hadamard schemes against the rotated source rows. The
//!   rotation is orthogonal up to the exact factor 1/√B, so both ratios equal the un-rotated
//!   comparison (up to f32 rounding of the rotation; a test checks this by un-rotating).
//! - **Output error** (`out_rel_err`, `out_sqnr_db`) is what matters for the model: the packed
//!   tensor run through the reference executor (activation quantization included) on a fixed
//!   batch of [`crate::pack::REPORT_BATCH`] approximately normal activation rows seeded by the
//!   tensor name, against the f64 product with the f32 source. Real activations have outlier
//!   channels that this batch lacks, so it understates the activation side of int4 error.
//!
//! Sums are f64 and combined in a fixed order; `log₁₀` is only used for these numbers, never
//! for anything written into the blob.

use crate::pack::TensorEntry;
use npu_runtime::format::{Scheme, TensorKind};
use std::fmt::Write as _;

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
    /// An empty report for an entry.
    pub fn new(e: &TensorEntry, bytes: u64) -> Self {
        TensorReport {
            name: e.name.clone(),
            kind: e.kind,
            scheme: e.scheme,
            n: e.geom.n,
            k: e.geom.k,
            bytes,
            sum_w2: 0.0,
            sum_e2: 0.0,
            max_abs_err: 0.0,
            out: None,
        }
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

fn num(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
        let mut o = String::new();
        o.push_str("{\n  \"target\": ");
        json_str(&mut o, self.target);
        o.push_str(",\n  \"scheme\": ");
        json_str(&mut o, self.scheme.name());
        o.push_str(",\n  \"domain\": \"stored (rotated for hadamard schemes; equal ratios to the original domain)\"");
        for (key, sum) in
            [("weight_summary", self.weight_summary()), ("output_summary", self.output_summary())]
        {
            let _ = write!(o, ",\n  \"{key}\": ");
            match sum {
                None => o.push_str("null"),
                Some(s) => {
                    let _ = write!(o, "{{\"count\": {}, \"median_sqnr_db\": ", s.count);
                    num(&mut o, s.median_db);
                    o.push_str(", \"worst_sqnr_db\": ");
                    num(&mut o, s.worst_db);
                    o.push_str(", \"worst_tensor\": ");
                    json_str(&mut o, &s.worst_tensor);
                    o.push('}');
                }
            }
        }
        o.push_str(",\n  \"tensors\": [");
        for (i, t) in self.tensors.iter().enumerate() {
            o.push_str(if i == 0 { "\n    {" } else { ",\n    {" });
            o.push_str("\"name\": ");
            json_str(&mut o, &t.name);
            let _ = write!(o, ", \"kind\": \"{}\", \"scheme\": ", t.kind.name());
            match t.scheme {
                Some(s) => json_str(&mut o, s.name()),
                None => o.push_str("null"),
            }
            let _ = write!(
                o,
                ", \"n\": {}, \"k\": {}, \"bytes\": {}, \"rel_err\": ",
                t.n, t.k, t.bytes
            );
            num(&mut o, t.rel_err());
            o.push_str(", \"sqnr_db\": ");
            num(&mut o, t.sqnr_db());
            o.push_str(", \"max_abs_err\": ");
            num(&mut o, t.max_abs_err);
            o.push_str(", \"out_rel_err\": ");
            match t.out_rel_err() {
                Some(v) => num(&mut o, v),
                None => o.push_str("null"),
            }
            o.push_str(", \"out_sqnr_db\": ");
            match t.out_sqnr_db() {
                Some(v) => num(&mut o, v),
                None => o.push_str("null"),
            }
            o.push('}');
        }
        o.push_str("\n  ]\n}\n");
        o
    }
}
