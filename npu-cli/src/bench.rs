//! `npu bench`: throughput in tokens/s with llama-bench's two tests, on a model packed in
//! memory by the loader `npu run` uses ([`crate::run::load`]) and the backend `--backend`
//! picks ([`crate::backend`]).
//!
//! - `ppN` (prompt processing): N synthetic tokens evaluated from an empty KV cache as one
//!   batched sequence ([`Session::prefill`]: the output head runs for the last position only).
//! - `tgN` (text generation): N tokens decoded one at a time ([`Session::step`]), starting
//!   from an empty KV cache; the time of all N steps.
//!
//! Each test runs once untimed (warm-up), then `--reps` timed runs. The tokens are a
//! fixed-seed sequence over the vocabulary without end-of-generation ids (llama-bench feeds
//! random ids), so a run never depends on a tokenizer or a prompt.

use crate::backend;
use crate::run::{load, ModelArgs};
use crate::CmdResult;
use npu_build::gguf::Gguf;
use npu_runtime::model::{arena_bytes, Model, ModelError, Session};
use npu_runtime::select::Selected;
use std::io::Write;
use std::time::Instant;

/// Arguments of `npu bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt-processing test: tokens evaluated as one batched sequence (0 skips the test).
    #[arg(long, default_value_t = 512)]
    pp: u32,
    /// Text-generation test: tokens decoded one by one (0 skips the test).
    #[arg(long, default_value_t = 128)]
    tg: u32,
    /// Timed runs per test (after one untimed warm-up run).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// KV cache positions (default: pp + tg; at most the model's trained context).
    #[arg(long)]
    ctx: Option<u32>,
    /// One JSON object per test on stdout (every run's time) instead of the table.
    #[arg(long)]
    json: bool,
}

/// One test: its name (`pp512`, `tg128`), tokens per run and every timed run's seconds.
struct Measured {
    name: String,
    n_prompt: u32,
    n_gen: u32,
    secs: Vec<f64>,
}

/// What the table and the JSON say about the setup.
struct Setup {
    blob_bytes: usize,
    backend: String,
    threads: usize,
}

/// `npu bench`.
pub fn run(args: Args) -> CmdResult {
    let ctx = check(&args)?;
    let owned = load(&args.model, Some(ctx))?;
    let (view, config) = (owned.view(), owned.config);
    let m = view.model();
    let tokens = synthetic_tokens(&m, args.pp.max(args.tg) as usize);
    let mut arena = vec![0u8; arena_bytes(&config, config.context_len)];
    let be = backend::select(args.model.backend, &m.weights, args.model.threads)?;
    let mut session = Session::new(m, be, &mut arena)?;
    let mut tests = Vec::new();
    if args.pp > 0 {
        let pp = &tokens[..args.pp as usize];
        let secs = measure(&mut session, args.reps, |s| s.prefill(pp).map(|_| ()))?;
        tests.push(Measured { name: format!("pp{}", args.pp), n_prompt: args.pp, n_gen: 0, secs });
    }
    if args.tg > 0 {
        let tg = &tokens[..args.tg as usize];
        let secs = measure(&mut session, args.reps, |s| decode_each(s, tg))?;
        tests.push(Measured { name: format!("tg{}", args.tg), n_prompt: 0, n_gen: args.tg, secs });
    }
    let setup = Setup {
        blob_bytes: owned.packed.blob.len(),
        backend: session.backend().describe(),
        threads: crate::threads(args.model.threads),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        for t in &tests {
            writeln!(out, "{}", json(&args, &setup, t))?;
        }
    } else {
        write!(out, "{}", table(&args, &setup, &tests))?;
    }
    Ok(())
}

/// Checks the arguments before anything is packed; the context the KV cache gets.
fn check(args: &Args) -> Result<u32, Box<dyn std::error::Error>> {
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    if args.pp == 0 && args.tg == 0 {
        return Err("nothing to measure: --pp and --tg are both 0".into());
    }
    if args.model.threads == Some(0) {
        return Err("--threads must be at least 1".into());
    }
    let trained = Gguf::open(&args.model.file)?.hparams()?.context_length;
    // llama-bench's context for a pp + tg pair; each test alone starts from an empty cache.
    let need = u64::from(args.pp) + u64::from(args.tg);
    let ctx = match args.ctx {
        Some(c) if u64::from(c) < need => {
            return Err(format!(
                "--pp {} + --tg {} = {need} tokens do not fit --ctx {c}",
                args.pp, args.tg
            )
            .into())
        }
        Some(c) => u64::from(c),
        None => need,
    };
    if ctx > u64::from(trained) {
        let asked = match args.ctx {
            Some(c) => format!("--ctx {c} exceeds"),
            None => format!("--pp {} + --tg {} = {need} tokens exceed", args.pp, args.tg),
        };
        return Err(format!(
            "{asked} the model's trained context length of {trained} \
             (lower --pp / --tg / --ctx)"
        )
        .into());
    }
    Ok(ctx as u32)
}

/// `n` token ids from a fixed-seed xorshift sequence over `0..vocab`; an id that ends
/// generation (the config's stop ids, the tokenizer's EOS/EOT/EOM) is replaced by the next
/// one that does not.
fn synthetic_tokens(m: &Model<'_>, n: usize) -> Vec<u32> {
    let c = m.config;
    let tok = m.tokenizer().ok();
    let stops = |id: u32| c.is_stop(id) || tok.as_ref().is_some_and(|t| t.tables().is_eog(id));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let id = (state % u64::from(c.vocab)) as u32;
        let usable = (0..c.vocab).map(|k| (id + k) % c.vocab).find(|&i| !stops(i));
        out.push(usable.unwrap_or(id));
    }
    out
}

/// Decodes `tokens` one per step from the session's current position.
fn decode_each(s: &mut Session<'_, '_, Selected>, tokens: &[u32]) -> Result<(), ModelError> {
    tokens.iter().try_for_each(|&t| s.step(t).map(|_| ()))
}

/// Runs `test` from an empty cache once untimed, then `reps` times timed; the seconds of each
/// timed run.
fn measure<'a, 's>(
    s: &mut Session<'a, 's, Selected>,
    reps: usize,
    mut test: impl FnMut(&mut Session<'a, 's, Selected>) -> Result<(), ModelError>,
) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut secs = Vec::with_capacity(reps);
    for rep in 0..=reps {
        s.reset();
        let t0 = Instant::now();
        test(s).map_err(|e| s.backend().failure().unwrap_or_else(|| e.to_string()))?;
        if rep > 0 {
            secs.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(secs)
}

/// Tokens/s of each run, in run order.
fn rates(t: &Measured) -> Vec<f64> {
    let n = f64::from(t.n_prompt + t.n_gen);
    t.secs.iter().map(|&s| n / s.max(1e-12)).collect()
}

/// Median, sample standard deviation, min and max of non-empty `r`.
fn stats(r: &[f64]) -> (f64, f64, f64, f64) {
    let mut r = r.to_vec();
    r.sort_by(f64::total_cmp);
    let n = r.len();
    let median = if n % 2 == 1 { r[n / 2] } else { (r[n / 2 - 1] + r[n / 2]) / 2.0 };
    let mean = r.iter().sum::<f64>() / n as f64;
    let var = r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n.max(2) - 1) as f64;
    (median, var.sqrt(), r[0], r[n - 1])
}

/// The Markdown table: one row per test.
fn table(args: &Args, setup: &Setup, tests: &[Measured]) -> String {
    let mut s = String::from(
        "| model | size | target/quant | backend | threads | test | t/s (median) | min … max | ± stddev |\n\
         |---|---:|---|---|---:|---|---:|---:|---:|\n",
    );
    let file = args.model.file.file_name().unwrap_or_default().to_string_lossy();
    let mib = setup.blob_bytes as f64 / (1u64 << 20) as f64;
    for t in tests {
        let (median, sd, min, max) = stats(&rates(t));
        s += &format!(
            "| {file} | {mib:.2} MiB | {}/{} | {} | {} | {} | {median:.2} | {min:.2} … {max:.2} | {sd:.2} |\n",
            args.model.target, args.model.quant, setup.backend, setup.threads, t.name,
        );
    }
    s
}

/// One test as a JSON object (one line).
fn json(args: &Args, setup: &Setup, t: &Measured) -> serde_json::Value {
    let r = rates(t);
    let (median, sd, min, max) = stats(&r);
    serde_json::json!({
        "model": args.model.file.display().to_string(),
        "blob_bytes": setup.blob_bytes,
        "target": args.model.target,
        "quant": args.model.quant,
        "backend": setup.backend,
        "threads": setup.threads,
        "test": t.name,
        "n_prompt": t.n_prompt,
        "n_gen": t.n_gen,
        "reps": t.secs.len(),
        "samples_s": t.secs,
        "samples_ts": r,
        "ts_median": median,
        "ts_stddev": sd,
        "ts_min": min,
        "ts_max": max,
    })
}
