//! The tensor list a model must have, checked before anything is packed.
//!
//! From the hyperparameters ([`Gguf::hparams`]) and the runtime's architecture table
//! ([`npu_runtime::model::ARCHS`]) this derives every tensor the forward pass reads and the
//! shape it must have (GGUF `ne` order, innermost first):
//!
//! | tensor                         | shape                                   |
//! |--------------------------------|-----------------------------------------|
//! | `token_embd.weight`            | `[d, vocab]`                            |
//! | `output_norm.weight`           | `[d]`                                   |
//! | `output.weight` (if not tied)  | `[d, vocab]`                            |
//! | `blk.N.attn_norm.weight`       | `[d]`                                   |
//! | `blk.N.attn_q.weight`          | `[d, head_count · head_dim]`            |
//! | `blk.N.attn_k.weight`, `_v`    | `[d, head_count_kv · head_dim]`         |
//! | `blk.N.attn_output.weight`     | `[head_count · head_dim, d]`            |
//! | `blk.N.attn_{q,k,v}.bias`      | `[q_dim]` / `[kv_dim]` (when biased)    |
//! | `blk.N.ffn_norm.weight`        | `[d]`                                   |
//! | `blk.N.ffn_gate.weight`, `_up` | `[d, feed_forward_length]`              |
//! | `blk.N.ffn_down.weight`        | `[feed_forward_length, d]`              |
//! | `blk.N.attn_{q,k}_norm.weight` | `[head_dim]` (architectures with q/k norms) |
//! | `blk.N.post_attention_norm.weight`, `post_ffw_norm` | `[d]` (with post-norms) |
//!
//! `vocab` is the tokenizer's vocabulary size. Biases are expected in every block when
//! block 0 has them. Every disagreement is reported at once — a wrong shape, a missing tensor
//! and a tensor the architecture does not read (the runtime would silently ignore it, e.g.
//! llama 3's `rope_freqs.weight`) — each naming the tensor, its shape and the expected one.
//! The packer ([`crate::pack::pack`]) runs this check on every GGUF before planning, so the
//! `npu` CLI and the build script refuse such a file with the same message.

use crate::gguf::{Gguf, HParams};
use npu_runtime::model::Arch;
use std::collections::BTreeSet;
use std::fmt;

/// Problems listed in full before the rest are only counted.
const MAX_LISTED: usize = 12;

/// One way a model's tensor list disagrees with its hyperparameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeProblem {
    /// The metadata cannot be read as a supported model.
    Hparams(String),
    /// A tensor has a different shape than the hyperparameters imply.
    Mismatch {
        /// Tensor name.
        tensor: String,
        /// Its shape in the file (`ne`, innermost first).
        shape: Vec<u64>,
        /// The shape expected.
        expected: Vec<u64>,
        /// Where the expected shape comes from.
        from: String,
    },
    /// A tensor the architecture reads is absent.
    Missing {
        /// Tensor name.
        tensor: String,
        /// The shape expected.
        expected: Vec<u64>,
    },
    /// A tensor the architecture does not read.
    Unused {
        /// Tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
    },
}

impl fmt::Display for ShapeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeProblem::Hparams(m) => f.write_str(m),
            ShapeProblem::Mismatch { tensor, shape, expected, from } => write!(
                f,
                "tensor `{tensor}` has shape {shape:?}, expected {expected:?} ({from})"
            ),
            ShapeProblem::Missing { tensor, expected } => {
                write!(f, "tensor `{tensor}` is missing (expected shape {expected:?})")
            }
            ShapeProblem::Unused { tensor, shape } => write!(
                f,
                "tensor `{tensor}` {shape:?} is not read by this architecture (the model would run without it)"
            ),
        }
    }
}

/// Every disagreement between a model file's tensors and its hyperparameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// The file (as the reader names it).
    pub file: String,
    /// The problems, in tensor-table order (globals first).
    pub problems: Vec<ShapeProblem>,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "{}: ", self.file)?;
        if n == 1 {
            return write!(f, "{}", self.problems[0]);
        }
        write!(f, "{n} tensor problems:")?;
        for p in self.problems.iter().take(MAX_LISTED) {
            write!(f, "\n  {p}")?;
        }
        if n > MAX_LISTED {
            write!(f, "\n  ... and {} more", n - MAX_LISTED)?;
        }
        Ok(())
    }
}

impl std::error::Error for ShapeError {}

/// One expected tensor: name, shape, and the hyperparameters behind the shape.
struct Expected {
    name: String,
    shape: Vec<u64>,
    from: String,
}

/// The tensors the forward pass of `hp`'s architecture reads, with their shapes.
fn expected_tensors(hp: &HParams) -> Vec<Expected> {
    let d = u64::from(hp.embedding_length);
    let vocab = u64::from(hp.vocab_size);
    let hd = u64::from(hp.head_dim);
    let q = u64::from(hp.head_count) * hd;
    let kv = u64::from(hp.head_count_kv) * hd;
    let ff = u64::from(hp.feed_forward_length);
    let dn = format!("embedding_length {d}");
    let qn = format!("head_count {} × head_dim {hd}", hp.head_count);
    let kvn = format!(
        "head_count_kv {} × head_dim {hd}, {} query heads per KV head",
        hp.head_count_kv,
        hp.head_count / hp.head_count_kv.max(1)
    );
    let ffn = format!("feed_forward_length {ff}");
    let e = |name: String, shape: Vec<u64>, from: String| Expected { name, shape, from };
    let mut out = vec![
        e("token_embd.weight".into(), vec![d, vocab], format!("{dn}, vocabulary {vocab}")),
        e("output_norm.weight".into(), vec![d], dn.clone()),
    ];
    if !hp.tied_output {
        out.push(e("output.weight".into(), vec![d, vocab], format!("{dn}, vocabulary {vocab}")));
    }
    for l in 0..hp.block_count {
        let b = |s: &str| format!("blk.{l}.{s}");
        out.push(e(b("attn_norm.weight"), vec![d], dn.clone()));
        out.push(e(b("attn_q.weight"), vec![d, q], format!("{dn}, {qn}")));
        out.push(e(b("attn_k.weight"), vec![d, kv], format!("{dn}, {kvn}")));
        out.push(e(b("attn_v.weight"), vec![d, kv], format!("{dn}, {kvn}")));
        out.push(e(b("attn_output.weight"), vec![q, d], format!("{qn}, {dn}")));
        if hp.qkv_bias {
            out.push(e(b("attn_q.bias"), vec![q], qn.clone()));
            out.push(e(b("attn_k.bias"), vec![kv], kvn.clone()));
            out.push(e(b("attn_v.bias"), vec![kv], kvn.clone()));
        }
        out.push(e(b("ffn_norm.weight"), vec![d], dn.clone()));
        out.push(e(b("ffn_gate.weight"), vec![d, ff], format!("{dn}, {ffn}")));
        out.push(e(b("ffn_up.weight"), vec![d, ff], format!("{dn}, {ffn}")));
        out.push(e(b("ffn_down.weight"), vec![ff, d], format!("{ffn}, {dn}")));
        if hp.qk_norm {
            out.push(e(b("attn_q_norm.weight"), vec![hd], format!("head_dim {hd}")));
            out.push(e(b("attn_k_norm.weight"), vec![hd], format!("head_dim {hd}")));
        }
        if hp.post_norms {
            out.push(e(b("post_attention_norm.weight"), vec![d], dn.clone()));
            out.push(e(b("post_ffw_norm.weight"), vec![d], dn.clone()));
        }
    }
    out
}

/// Tensors of one block: 9, plus 3 biases, 2 q/k norms, 2 post-norms where the model has them.
fn per_block(hp: &HParams) -> u64 {
    9 + 3 * u64::from(hp.qkv_bias) + 2 * u64::from(hp.qk_norm) + 2 * u64::from(hp.post_norms)
}

/// Checks `g`'s tensor list against its hyperparameters: every tensor the architecture reads
/// is present with the implied shape, and nothing else is there.
pub fn check(g: &Gguf<'_>) -> Result<(), ShapeError> {
    let fail = |problems| Err(ShapeError { file: g.name().to_owned(), problems });
    let hp = match g.hparams() {
        Ok(hp) => hp,
        Err(e) => {
            // The reader's message already names the file.
            let m = e.to_string();
            let m = m.strip_prefix(&format!("{}: ", g.name())).unwrap_or(&m).to_owned();
            return fail(vec![ShapeProblem::Hparams(m)]);
        }
    };
    if Arch::from_name(&hp.architecture).is_none() {
        return fail(vec![ShapeProblem::Hparams(format!(
            "architecture `{}` is not run by npu-runtime",
            hp.architecture
        ))]);
    }
    // Bounded by the tensor count: block_count is untrusted, but a model whose blocks are
    // mostly missing stops here instead of listing millions of names.
    let n_tensors = g.tensors().len() as u64;
    let per_block = per_block(&hp);
    if u64::from(hp.block_count) > n_tensors / per_block + 1 {
        return fail(vec![ShapeProblem::Hparams(format!(
            "block_count {} needs at least {} tensors, the file has {n_tensors}",
            hp.block_count,
            u64::from(hp.block_count) * per_block + 2
        ))]);
    }
    let expected = expected_tensors(&hp);
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for x in &expected {
        used.insert(x.name.as_str());
        match g.tensor(&x.name) {
            None => problems
                .push(ShapeProblem::Missing { tensor: x.name.clone(), expected: x.shape.clone() }),
            Some(t) if t.dims() != x.shape.as_slice() => problems.push(ShapeProblem::Mismatch {
                tensor: x.name.clone(),
                shape: t.dims().to_vec(),
                expected: x.shape.clone(),
                from: x.from.clone(),
            }),
            Some(_) => {}
        }
    }
    for t in g.tensors() {
        if !used.contains(t.name()) {
            problems.push(ShapeProblem::Unused {
                tensor: t.name().to_owned(),
                shape: t.dims().to_vec(),
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        fail(problems)
    }
}
