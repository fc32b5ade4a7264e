//! The firmware examples' shared body: tokenize a fixed prompt on the device, generate a
//! greedy continuation on the caller's backend, and print it in the line format
//! `firmware-examples/run.sh` compares against `npu run --print-ids`:
//!
//! ```text
//! npu-fw-run: target=rk3588 quant=int8 context=64 max-tokens=12 backend=cpu-neon
//! prompt: Once upon a time
//! prompt-ids: 1 2 3
//! text: <the continuation as text>
//! generated-ids: 4 5 6
//! ```
//!
//! plus `npu-fw:` lines (sizes, timing) for people. `no_std`, no allocation: every buffer
//! is the caller's.
#![no_std]
#![deny(missing_docs)]

use core::fmt::{self, Write};
use npu_runtime::backend::Backend;
use npu_runtime::generate::{generate, StopReason};
use npu_runtime::model::{Model, ModelError, Session};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::target::Target;
use npu_runtime::tokenizer::{EncodeOptions, TokenizerError, Utf8Stream};

/// Why a run failed.
#[derive(Debug)]
pub enum Failure {
    /// The tokenizer tables or the prompt's encoding.
    Tokenizer(TokenizerError),
    /// Creating the session or generating.
    Model(ModelError),
    /// The console refused a write.
    Console,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Tokenizer(e) => write!(f, "tokenizer: {e}"),
            Failure::Model(e) => write!(f, "model: {e}"),
            Failure::Console => f.write_str("console write failed"),
        }
    }
}

impl From<fmt::Error> for Failure {
    fn from(_: fmt::Error) -> Self {
        Failure::Console
    }
}

/// Caller-owned memory of a run.
pub struct Buffers<'b> {
    /// The session arena (at least the generated `ARENA_BYTES`).
    pub arena: &'b mut [u8],
    /// Tokenizer scratch (`Tokenizer::scratch_words_for(prompt.len())` words).
    pub tok_scratch: &'b mut [u32],
    /// Room for the prompt's ids.
    pub prompt_ids: &'b mut [u32],
    /// Room for the generated ids; its length is the most tokens generated.
    pub generated: &'b mut [u32],
}

/// What a run measured.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated: usize,
    /// Timer ticks from the start to the first generated token (prefill + first sample).
    pub prefill_ticks: u64,
    /// Timer ticks from the first generated token to the end.
    pub decode_ticks: u64,
}

/// Runs `prompt` through `model` on `backend` (any backend: each one computes what the
/// reference executors compute, bit for bit for the integer pipelines): prints `prompt-ids:`, `text:` (streamed as tokens come)
/// and `generated-ids:` lines to `out`. `now()` reads a free-running tick counter.
pub fn run<B: Backend>(
    out: &mut impl Write,
    model: &Model<'static>,
    backend: B,
    prompt: &str,
    bufs: Buffers<'_>,
    now: impl Fn() -> u64,
) -> Result<Report, Failure> {
    let tok = model.tokenizer().map_err(Failure::Tokenizer)?;
    let opts = EncodeOptions { add_special: true, parse_special: true };
    let n_prompt = tok
        .encode(prompt.as_bytes(), opts, bufs.tok_scratch, bufs.prompt_ids)
        .map_err(Failure::Tokenizer)?;
    let ids = &bufs.prompt_ids[..n_prompt];
    // What the host needs to reproduce this run with `npu run` (plus the model file).
    writeln!(
        out,
        "npu-fw-run: target={} quant={} context={} max-tokens={} backend={}",
        Target::get(model.weights.target).name,
        model.weights.scheme.name(),
        model.config.context_len,
        bufs.generated.len(),
        backend.name()
    )?;
    writeln!(out, "prompt: {prompt}")?;
    write!(out, "prompt-ids:")?;
    for id in ids {
        write!(out, " {id}")?;
    }
    writeln!(out)?;

    let mut session = Session::new(*model, backend, bufs.arena).map_err(Failure::Model)?;
    let mut sampler = Sampler::new(SamplerConfig::GREEDY);
    let generated = bufs.generated;
    let max = generated.len();
    let mut n = 0usize;
    let mut piece = [0u8; 256];
    let mut text = Utf8Stream::new();
    let mut console_ok = true;
    write!(out, "text: ")?;
    let t0 = now();
    let mut t_first = t0;
    let res = generate(&mut session, &mut sampler, ids, max, |id| {
        if n == 0 {
            t_first = now();
        }
        if let Some(slot) = generated.get_mut(n) {
            *slot = id;
        }
        n += 1;
        // Control tokens are not rendered, as `npu run` shows text.
        console_ok &= match tok.piece(id, false, false, &mut piece) {
            Ok(len) => text.push(&piece[..len], &mut |s: &str| out.write_str(s)).is_ok(),
            Err(_) => out.write_str("\u{FFFD}").is_ok(),
        };
        true
    })
    .map_err(Failure::Model)?;
    let t_end = now();
    text.finish(&mut |s: &str| out.write_str(s))?;
    writeln!(out)?;
    if !console_ok {
        return Err(Failure::Console);
    }
    write!(out, "generated-ids:")?;
    for id in &generated[..n.min(max)] {
        write!(out, " {id}")?;
    }
    writeln!(out)?;
    let stop = match res.stop {
        StopReason::EndToken(_) => "end token",
        StopReason::MaxTokens => "max tokens",
        StopReason::ContextFull => "context full",
        StopReason::Callback => "callback",
    };
    writeln!(out, "npu-fw: stop: {stop}")?;
    Ok(Report {
        prompt_tokens: n_prompt,
        generated: n,
        prefill_ticks: t_first.wrapping_sub(t0),
        decode_ticks: t_end.wrapping_sub(t_first),
    })
}

/// Prints the timing line: prefill time, and the tokens after the first per second, from
/// `freq` ticks per second of the board's timer (emulated time under QEMU).
pub fn print_timing(out: &mut impl Write, r: &Report, freq: u64) -> fmt::Result {
    let ms = |t: u64| (t as u128 * 1000 / u128::from(freq.max(1))) as u64;
    let after = r.generated.saturating_sub(1) as u64;
    let tps_milli =
        (after as u128 * 1_000_000).checked_div(ms(r.decode_ticks) as u128).unwrap_or(0) as u64;
    writeln!(
        out,
        "npu-fw: prefill {} tokens in {} ms; {} tokens in {} ms after it: {}.{:03} tok/s (emulated)",
        r.prompt_tokens,
        ms(r.prefill_ticks),
        after,
        ms(r.decode_ticks),
        tps_milli / 1000,
        tps_milli % 1000
    )
}
