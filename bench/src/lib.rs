//! The measuring side of `scripts/bench.sh`: every binary in `src/bin/` embeds one model
//! variant through `#[npu_model]` and hands it to [`main`], which runs one measurement and
//! prints one JSON object on stdout. The driver (`bench/driver.py`) runs the binaries,
//! llama.cpp's tools beside them, and makes the tables.
//!
//! ```text
//! BIN startup [--prompt TEXT] [--threads T]   prompt → one greedy token, printed; then exit
//! BIN speed [--threads T] [--prompt-tokens 512] [--gen 128] [--reps 3]
//!                                              prefill and decode tokens/s, one figure per rep
//! BIN info                                     bytes a decode step reads (weights, KV per position)
//! bandwidth [--threads T] [--mib 1024] [--reps 5]   memory read bandwidth (bytes/s)
//! ```
//!
//! Speed follows llama-bench's definitions so the figures compare: prefill (`pp`) evaluates
//! a prompt of N tokens from an empty cache in one call; decode (`tg`) evaluates N tokens
//! one at a time from an empty cache; one untimed warm-up pass first, as llama-bench does.
#![deny(missing_docs)]

use npu_runtime::backend::Backend;
use npu_runtime::cpu::CpuFast;
use npu_runtime::format::TensorKind;
use npu_runtime::model::{arena_bytes, Model, Session};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// The prompt of a startup run when none is given (the same text the driver gives llama.cpp).
pub const STARTUP_PROMPT: &str = "Once upon a time";

/// The runtime's fast CPU backend (SIMD kernels picked for this CPU, bit-exact to the
/// reference executors) on `threads` threads: what a product embedding the model runs.
fn backend(threads: usize) -> Result<impl Backend, String> {
    CpuFast::new().with_threads(threads).map_err(|e| format!("thread pool: {e}"))
}

/// Parsed flags: `--name value` pairs after the mode.
struct Flags(Vec<(String, String)>);

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut v = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a.strip_prefix("--").ok_or_else(|| format!("unexpected argument `{a}`"))?;
            let val = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            v.push((name.to_owned(), val.clone()));
        }
        Ok(Flags(v))
    }
    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(i).1)
    }
    fn num(&mut self, name: &str, default: usize) -> Result<usize, String> {
        match self.take(name) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| format!("--{name}: `{s}` is not a number")),
        }
    }
    fn done(&self) -> Result<(), String> {
        match self.0.first() {
            Some((n, _)) => Err(format!("unknown flag --{n}")),
            None => Ok(()),
        }
    }
}

/// Runs the mode named by the first argument on `model` (`name` labels the JSON); errors go
/// to stderr with exit status 1.
pub fn main(name: &str, model: &'static Model<'static>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(name, model, &args) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(name: &str, model: &'static Model<'static>, args: &[String]) -> Result<String, String> {
    let (mode, rest) =
        args.split_first().ok_or("usage: BIN startup|speed|info [--flag value]...")?;
    let mut f = Flags::parse(rest)?;
    match mode.as_str() {
        "startup" => {
            let prompt = f.take("prompt").unwrap_or_else(|| STARTUP_PROMPT.to_owned());
            let threads = f.num("threads", 1)?;
            f.done()?;
            startup(name, model, &prompt, threads)
        }
        "speed" => {
            let threads = f.num("threads", 1)?;
            let pp = f.num("prompt-tokens", 512)?;
            let tg = f.num("gen", 128)?;
            let reps = f.num("reps", 3)?.max(1);
            f.done()?;
            speed(name, model, threads, pp, tg, reps)
        }
        "info" => {
            f.done()?;
            Ok(info(name, model))
        }
        m => Err(format!("unknown mode `{m}` (startup, speed, info)")),
    }
}

fn session<'s>(
    model: &'static Model<'static>,
    threads: usize,
    arena: &'s mut Vec<u8>,
) -> Result<Session<'static, 's, impl Backend>, String> {
    // Zeroed allocation (calloc): the OS maps the pages when first used, so a short run only
    // touches the KV cache positions it fills (resize would write all of it, ~24 MB here).
    *arena = vec![0u8; arena_bytes(&model.config, model.config.context_len)];
    Session::new(*model, backend(threads)?, arena).map_err(|e| e.to_string())
}

/// Prompt → first greedy token, printed as text: what a product does from exec on.
fn startup(
    name: &str,
    model: &'static Model<'static>,
    prompt: &str,
    threads: usize,
) -> Result<String, String> {
    let t0 = Instant::now();
    let tok = model.tokenizer().map_err(|e| e.to_string())?;
    let mut scratch = vec![0u32; Tokenizer::scratch_words_for(prompt.len())];
    let mut ids = Vec::new();
    tok.encode_with(
        prompt.as_bytes(),
        EncodeOptions { add_special: true, parse_special: true },
        &mut scratch,
        &mut |id| {
            ids.push(id);
            Ok(())
        },
    )
    .map_err(|e| e.to_string())?;
    let mut arena = Vec::new();
    let mut s = session(model, threads, &mut arena)?;
    s.prefill(&ids).map_err(|e| e.to_string())?;
    let id = s.sample(&mut Sampler::new(SamplerConfig::GREEDY)).map_err(|e| e.to_string())?;
    let mut piece = vec![0u8; tok.max_token_len()];
    let n = tok.piece(id, false, false, &mut piece).map_err(|e| e.to_string())?;
    let first = t0.elapsed().as_secs_f64();
    {
        // The token reaches the terminal before anything else is done.
        let mut o = std::io::stdout().lock();
        o.write_all(&piece[..n])
            .and_then(|()| o.write_all(b"\n"))
            .and_then(|()| o.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "{{\"bin\":\"{name}\",\"mode\":\"startup\",\"prompt_tokens\":{},\"token\":{id},\"main_to_first_token_s\":{first:.6}}}",
        ids.len()
    ))
}

/// Deterministic token ids in `[0, vocab)`: speed does not depend on which tokens they are
/// (llama-bench uses random ones too).
fn ids(n: usize, vocab: u32, seed: u64) -> Vec<u32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % vocab as u64) as u32
        })
        .collect()
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

/// Prefill `pp` tokens and decode `tg` tokens from an empty cache, `reps` times each.
fn speed(
    name: &str,
    model: &'static Model<'static>,
    threads: usize,
    pp: usize,
    tg: usize,
    reps: usize,
) -> Result<String, String> {
    let ctx = model.config.context_len as usize;
    if pp > ctx || tg > ctx || pp == 0 || tg == 0 {
        return Err(format!(
            "--prompt-tokens and --gen must be in 1..={ctx} (the declared context)"
        ));
    }
    let mut arena = Vec::new();
    let mut s = session(model, threads, &mut arena)?;
    let prompt = ids(pp, model.config.vocab, 1);
    let err = |e: npu_runtime::model::ModelError| e.to_string();
    // Warm-up: every weight touched once (page cache, any backend-side preparation).
    s.prefill(&prompt[..pp.min(16)]).map_err(err)?;
    s.step(0).map_err(err)?;
    let (mut pp_tps, mut tg_tps) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        s.reset();
        let t = Instant::now();
        s.prefill(&prompt).map_err(err)?;
        pp_tps.push(pp as f64 / t.elapsed().as_secs_f64());
        s.reset();
        let mut next = prompt[0];
        let t = Instant::now();
        for _ in 0..tg {
            next = argmax(s.step(next).map_err(err)?);
        }
        tg_tps.push(tg as f64 / t.elapsed().as_secs_f64());
    }
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(",");
    Ok(format!(
        "{{\"bin\":\"{name}\",\"mode\":\"speed\",\"threads\":{threads},\"backend\":\"{}\",\"pp\":{pp},\"tg\":{tg},\"pp_tps\":[{}],\"tg_tps\":[{}]}}",
        s.backend().name(),
        list(&pp_tps),
        list(&tg_tps)
    ))
}

/// Bytes one decode step reads from memory: every matmul weight with its scales, every f32
/// tensor (norms, biases), one embedding row; plus the f16 K and V cache per position
/// attended to (the driver multiplies by the mean position of a run).
fn info(name: &str, model: &'static Model<'static>) -> String {
    let c = &model.config;
    let w = &model.weights;
    let mut weights = 0u64;
    let mut embedding = 0u64;
    for t in w.tensors {
        let bytes: u64 = t.shards.iter().map(|s| s.data.len).sum::<u64>() + t.scales.len;
        match t.kind {
            TensorKind::Matmul | TensorKind::F32 => weights += bytes,
            TensorKind::Embedding => embedding += bytes,
        }
    }
    let emb_row = embedding / c.vocab.max(1) as u64;
    let kv_per_pos = 2 * c.n_layers as u64 * c.kv_dim() as u64 * 2;
    format!(
        "{{\"bin\":\"{name}\",\"mode\":\"info\",\"blob_bytes\":{},\"weight_bytes_per_token\":{},\"kv_bytes_per_position\":{kv_per_pos},\"context\":{}}}",
        w.blob.len(),
        weights + emb_row,
        c.context_len
    )
}

/// Memory read bandwidth in bytes/s: `threads` threads each sum their contiguous part of a
/// `mib`-MiB buffer (far larger than any cache) with independent accumulators, so the loads,
/// not the adds, limit it. Returns one figure per rep (the driver reports the best, as
/// STREAM does).
pub fn bandwidth(threads: usize, mib: usize, reps: usize) -> Vec<f64> {
    let words = mib << 17; // u64 words in `mib` MiB
                           // Distinct values written first, so every page is really backed by memory.
    let buf: Vec<u64> = (0..words as u64).collect();
    let threads = threads.max(1);
    let per = words.div_ceil(threads);
    let mut out = Vec::new();
    let mut keep = 0u64;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let sums: Vec<u64> = std::thread::scope(|sc| {
            let hs: Vec<_> = buf.chunks(per).map(|part| sc.spawn(move || sum(part))).collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        let dt = t.elapsed().as_secs_f64();
        keep = keep.wrapping_add(sums.iter().fold(0u64, |a, &b| a.wrapping_add(b)));
        out.push((words * 8) as f64 / dt);
    }
    // The sums are used, so the reads cannot be optimized away.
    std::hint::black_box(keep);
    out
}

/// Wrapping sum with eight independent lanes, in 256-bit loads where the CPU has AVX2 (the
/// widest loads the kernels use; with SSE2's 128-bit loads one core read ~30% less here).
fn sum(v: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(v: &[u64]) -> u64 {
            lanes(v)
        }
        // SAFETY: AVX2 is present (checked above).
        return unsafe { wide(v) };
    }
    lanes(v)
}

#[inline(always)]
fn lanes(v: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut it = v.chunks_exact(8);
    for c in &mut it {
        for j in 0..8 {
            acc[j] = acc[j].wrapping_add(c[j]);
        }
    }
    let tail = it.remainder().iter().fold(0u64, |a, &b| a.wrapping_add(b));
    acc.iter().fold(tail, |a, &b| a.wrapping_add(b))
}
