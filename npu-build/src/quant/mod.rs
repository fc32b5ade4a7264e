//! Quantization schemes: choosing them by name, and turning one f32 weight row into what a
//! pipeline stores. The arithmetic itself (rounding, scales, rotation) lives in
//! `npu_runtime::exec` so the packer and the runtime's activation path share it bit for bit.
//!
//! Per scheme (see [`Scheme`] for the table of pipelines):
//! - weights are symmetric **per output channel, per K segment**: one f32 scale per
//!   (segment, channel), `absmax / qmax`; segments exist because the chip runs one matmul per
//!   segment anyway (K limit, int16 accumulator) so finer scales cost nothing there;
//! - activations are quantized at run time **per row (token) and per K segment**, symmetric
//!   absmax, by the runtime (`npu_runtime::exec::matmul`);
//! - Hadamard variants rotate each weight row along K first (`npu_runtime::exec::rotate`),
//!   then scale it by `1/B` so activations need no normalisation at run time.
//!
//! What keeps which precision, and why:
//! - **matmul weights**: the chosen scheme;
//! - **output head** (`output.weight`, synthesized from `token_embd.weight` when the model ties
//!   them): fp16 under `fp16`, otherwise int8 (`int8_hadamard` for the Hadamard schemes).
//!   The logits feed a softmax/argmax over the whole vocabulary, where int4's error (≈ 16×
//!   int8's step) flips near-tied tokens; int8 costs one byte per weight on a tensor that is
//!   read once per token;
//! - **token embeddings**: a row gather, not a matmul, so no pipeline constrains them: fp16
//!   under `fp16`, otherwise int8 with one scale per row (per token). int4 would add its error
//!   directly to the residual stream of every token, for little memory on small models;
//! - **norm weights, biases and every other non-matrix tensor**: f32, unchanged. They are
//!   tiny and multiply activations elementwise, so any rounding there is pure loss.

mod codes;

pub use codes::{encode_rows, Codes, Encoded};
use npu_runtime::exec::{quant, rotate};
pub use npu_runtime::format::Scheme;
use npu_runtime::format::{Geometry, Rotation};
use npu_runtime::target::Target;

/// Parses a scheme name, or says which names exist.
pub fn parse_scheme(s: &str) -> Result<Scheme, String> {
    Scheme::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
        format!("unknown quant `{s}`; valid: {}", names.join(", "))
    })
}

/// Parses a target name, or says which names exist.
pub fn parse_target(s: &str) -> Result<&'static Target, String> {
    Target::by_name(s).ok_or_else(|| {
        let names: Vec<&str> = Target::all().iter().map(|t| t.name).collect();
        format!("unknown target `{s}`; valid: {}", names.join(", "))
    })
}

/// The scheme of the output head under model scheme `s` (see the module docs).
pub fn head_scheme(s: Scheme) -> Scheme {
    match s {
        Scheme::Fp16 => Scheme::Fp16,
        Scheme::Int8 | Scheme::Int4 => Scheme::Int8,
        Scheme::Int8Hadamard | Scheme::Int4Hadamard => Scheme::Int8Hadamard,
    }
}

/// Copies a source row into `out` (length `k_pad`), zero-pads it, and, with a rotation,
/// applies `H·D` and the exact `1/B` scaling. The result is the row the pipeline's grid is fit
/// to; the report measures error in this (rotated) domain, which for an orthogonal rotation up
/// to a power-of-two factor gives the same relative error and SQNR as the original domain.
pub fn prepare_row(src: &[f32], rotation: Option<Rotation>, out: &mut [f32]) {
    out[..src.len()].copy_from_slice(src);
    out[src.len()..].fill(0.0);
    if let Some(rot) = rotation {
        rotate::rotate(rot, out);
        let inv = 1.0 / rot.block as f32;
        out.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Quantizes a prepared row per K segment: `codes[k]` in `[-qmax, qmax]`, `scales[seg]`.
pub fn quantize_row(
    prep: &[f32],
    geom: &Geometry,
    qmax: i32,
    codes: &mut [i8],
    scales: &mut [f32],
) {
    for seg in 0..geom.k_segs {
        let (k0, kl) = geom.seg_range(seg);
        let r = k0 as usize..(k0 + kl) as usize;
        let s = quant::scale_for(quant::absmax(&prep[r.clone()]), qmax);
        scales[seg as usize] = s;
        for (c, &v) in codes[r.clone()].iter_mut().zip(&prep[r]) {
            *c = quant::quantize(v, s, qmax) as i8;
        }
    }
}
