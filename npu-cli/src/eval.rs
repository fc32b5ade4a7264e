//! `npu eval`: quality of a quantized pipeline against the unquantized (fp16) path of the same
//! model — perplexity, KL divergence and top-1 agreement over a text.
//!
//! The conventions are llama-perplexity's (`--kl-divergence`), so the figures compare with
//! llama.cpp's quantized types against llama.cpp's F16 logits on the same text: the whole text
//! is tokenized once (BOS as the vocabulary asks, special-token text not parsed), cut into
//! chunks of `--ctx` tokens, each evaluated from an empty cache with its first token replaced
//! by BOS when the vocabulary adds one; only the second half of each chunk is scored (the
//! predictions of tokens `ctx/2 + 1 .. ctx`), so every scored token has at least `ctx/2` of
//! context. Per scored position: NLL of the next token under both models, KL(base ‖ quant)
//! of the two next-token distributions, and whether their argmaxes agree.
//!
//! Both models run in this process, one chunk at a time: the base's log-probabilities of the
//! scored half are kept (`ctx/2 · vocab` f32), then the quantized model's rows are compared as
//! they come. All sums are f64 in position order with `libm`'s exp/log, so the printed
//! figures do not depend on the host's math library.

use crate::CmdResult;
use npu_build::gguf::Gguf;
use npu_build::model::OwnedModel;
use npu_build::pack::PackOptions;
use npu_build::quant::{parse_scheme, parse_target};
use npu_build::tokenizer::OwnedTokenizerTables;
use npu_runtime::cpu::CpuFast;
use npu_runtime::model::{arena_bytes, Session, MAX_BATCH};
use npu_runtime::select::Selected;
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `npu eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// The GGUF file.
    file: PathBuf,
    /// The text to evaluate (UTF-8 file).
    #[arg(long)]
    text: PathBuf,
    /// Target chip profile of the evaluated pipeline: rk3588, rk3576, rk3566, rk3568 or cpu.
    #[arg(long, default_value = "cpu")]
    target: String,
    /// Quantization scheme evaluated: fp16, int8, int8_hadamard, int4 or int4_hadamard.
    #[arg(long)]
    quant: String,
    /// Target of the reference (its scheme is always fp16).
    #[arg(long, default_value = "cpu")]
    base_target: String,
    /// Tokens per chunk (llama-perplexity's -c).
    #[arg(long, default_value_t = 512)]
    ctx: u32,
    /// Evaluate at most this many chunks (llama-perplexity's --chunks); default all.
    #[arg(long)]
    chunks: Option<usize>,
    /// Threads for packing and for the matmuls (default: available parallelism); no result
    /// depends on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Backend of the evaluated model: cpu, rknpu or auto (the fp16 reference always runs on
    /// the CPU).
    #[arg(long, value_enum, default_value = "cpu")]
    backend: crate::backend::BackendChoice,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn load(
    g: &Gguf,
    tok: &OwnedTokenizerTables,
    target: &str,
    quant: &str,
    ctx: u32,
    threads: usize,
) -> Result<OwnedModel, Box<dyn std::error::Error>> {
    let target = parse_target(target)?;
    let scheme = parse_scheme(quant)?;
    let opts = PackOptions { target, scheme, threads };
    Ok(OwnedModel::with_tokenizer(g, &opts, Some(ctx), tok.clone())?)
}

/// Running sums over scored positions.
#[derive(Default)]
struct Sums {
    n: u64,
    nll_q: f64,
    nll_base: f64,
    kl: f64,
    kl_max: f64,
    same_top1: u64,
}

/// Natural-log softmax of `x` into `out` (f64 internally; max subtracted first).
fn log_softmax(x: &[f32], out: &mut [f64]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut sum = 0f64;
    for &v in x {
        sum += libm::exp(v as f64 - max);
    }
    let lse = max + libm::log(sum);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v as f64 - lse;
    }
}

/// Index of the first largest value (llama.cpp's argmax breaks ties the same way).
fn argmax<T: PartialOrd + Copy>(x: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// `npu eval`.
pub fn run(a: EvalArgs) -> CmdResult {
    let ctx = a.ctx as usize;
    if ctx < 4 {
        return Err("--ctx must be at least 4".into());
    }
    let threads = crate::threads(a.threads);
    let text = std::fs::read(&a.text).map_err(|e| format!("{}: {e}", a.text.display()))?;
    let g = Gguf::open(&a.file)?;
    let t0 = Instant::now();
    let tok = OwnedTokenizerTables::from_gguf(&g)?;
    let (ids, bos) = tokenize_text(&tok, &text)?;
    let available = ids.len() / ctx;
    let n_chunks = a.chunks.map_or(available, |c| c.min(available));
    if n_chunks == 0 {
        return Err(format!(
            "{}: {} tokens, fewer than one chunk of {ctx}",
            a.text.display(),
            ids.len()
        )
        .into());
    }
    let base = load(&g, &tok, &a.base_target, "fp16", a.ctx, threads)?;
    let quant = load(&g, &tok, &a.target, &a.quant, a.ctx, threads)?;
    let (base_view, quant_view) = (base.view(), quant.view());
    let (mb, mq) = (base_view.model(), quant_view.model());
    let mut arena_b = vec![0u8; arena_bytes(&base.config, a.ctx)];
    let mut arena_q = vec![0u8; arena_bytes(&quant.config, a.ctx)];
    // The fast CPU backend: bit-identical to the reference executors, so the figures are the
    // pipelines' own; the thread count changes only speed.
    let mut sb = Session::new(mb, CpuFast::new().with_threads(threads)?, &mut arena_b)?;
    let bq = crate::backend::select(a.backend, &mq.weights, Some(threads))?;
    let mut sq = Session::new(mq, bq, &mut arena_q)?;
    eprintln!(
        "npu eval: {} tokens, {n_chunks} chunks of {ctx} (of {available}); {} / {} against {} / fp16; packed in {:.1} s",
        ids.len(),
        a.target,
        a.quant,
        a.base_target,
        t0.elapsed().as_secs_f64()
    );
    let mut scorer = Scorer::new(ctx, base.config.vocab as usize);
    let bar = progress(n_chunks)?;
    let t1 = Instant::now();
    for c in 0..n_chunks {
        let mut toks = ids[c * ctx..(c + 1) * ctx].to_vec();
        if let Some(b) = bos {
            toks[0] = b;
        }
        scorer.chunk(&mut sb, &mut sq, &toks)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_results(&a, &scorer.sums, n_chunks, t1.elapsed().as_secs_f64());
    Ok(())
}

/// The whole text's ids, and the BOS id that starts every chunk when the vocabulary asks for
/// one.
fn tokenize_text(
    tok: &OwnedTokenizerTables,
    text: &[u8],
) -> Result<(Vec<u32>, Option<u32>), Box<dyn std::error::Error>> {
    let tables = tok.tables();
    let tok = Tokenizer::new(tables)?;
    let mut scratch = vec![0u32; Tokenizer::scratch_words_for(text.len())];
    let mut ids = Vec::new();
    tok.encode_with(
        text,
        EncodeOptions { add_special: true, parse_special: false },
        &mut scratch,
        &mut |id| {
            ids.push(id);
            Ok(())
        },
    )?;
    Ok((ids, if tables.add_bos { tables.bos } else { None }))
}

fn progress(n_chunks: usize) -> Result<indicatif::ProgressBar, String> {
    let bar = indicatif::ProgressBar::new(n_chunks as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} chunks, {elapsed} (eta {eta})",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.set_message("npu eval");
    Ok(bar)
}

/// Scores the second half of each chunk: the base model's log-probabilities, then the
/// quantized model's against them.
struct Scorer {
    ctx: usize,
    vocab: usize,
    /// First scored position.
    first: usize,
    base_lp: Vec<f64>,
    q_lp: Vec<f64>,
    rows: Vec<f32>,
    sums: Sums,
}

impl Scorer {
    fn new(ctx: usize, vocab: usize) -> Scorer {
        let first = ctx / 2;
        Scorer {
            ctx,
            vocab,
            first,
            base_lp: vec![0f64; (ctx - 1 - first) * vocab],
            q_lp: vec![0f64; vocab],
            rows: vec![0f32; MAX_BATCH * vocab],
            sums: Sums::default(),
        }
    }

    fn chunk<'s>(
        &mut self,
        sb: &mut Session<'_, 's, CpuFast>,
        sq: &mut Session<'_, 's, Selected>,
        toks: &[u32],
    ) -> CmdResult {
        let Scorer { ctx, vocab, first, base_lp, q_lp, rows, sums } = self;
        let (ctx, vocab, first) = (*ctx, *vocab, *first);
        sb.reset();
        sb.eval_all_batched(toks, rows, |i, l| {
            if i >= first && i < ctx - 1 {
                log_softmax(l, &mut base_lp[(i - first) * vocab..(i - first + 1) * vocab]);
            }
        })?;
        sq.reset();
        sq.eval_all_batched(toks, rows, |i, l| {
            if i < first || i >= ctx - 1 {
                return;
            }
            let bl = &base_lp[(i - first) * vocab..(i - first + 1) * vocab];
            log_softmax(l, q_lp);
            let next = toks[i + 1] as usize;
            let mut kl = 0f64;
            for (&b, &q) in bl.iter().zip(q_lp.iter()) {
                kl += libm::exp(b) * (b - q);
            }
            sums.n += 1;
            sums.nll_q -= q_lp[next];
            sums.nll_base -= bl[next];
            sums.kl += kl;
            sums.kl_max = sums.kl_max.max(kl);
            sums.same_top1 += u64::from(argmax(bl) == argmax(q_lp));
        })
        .map_err(|e| sq.backend().failure().unwrap_or_else(|| e.to_string()))?;
        Ok(())
    }
}

/// The figures, as a table or one JSON object.
fn print_results(a: &EvalArgs, sums: &Sums, n_chunks: usize, secs: f64) {
    let ctx = a.ctx as usize;
    let n = sums.n.max(1) as f64;
    let ppl_q = libm::exp(sums.nll_q / n);
    let ppl_base = libm::exp(sums.nll_base / n);
    let kl = sums.kl / n;
    let top1 = 100.0 * sums.same_top1 as f64 / n;
    if a.json {
        let v = serde_json::json!({
            "file": a.file.display().to_string(),
            "text": a.text.display().to_string(),
            "target": a.target,
            "quant": a.quant,
            "base": { "target": a.base_target, "quant": "fp16" },
            "ctx": ctx,
            "chunks": n_chunks,
            "scored_tokens": sums.n,
            "ppl": ppl_q,
            "ppl_base": ppl_base,
            "kl_mean": kl,
            "kl_max": sums.kl_max,
            "top1_agree_pct": top1,
            "seconds": secs,
        });
        println!("{v}");
    } else {
        println!("chunks {n_chunks} × {ctx} tokens, {} scored (second half of each chunk)", sums.n);
        println!("perplexity  {} / {}: {ppl_q:.4}   fp16: {ppl_base:.4}", a.target, a.quant);
        println!("KL(fp16 ‖ {})  mean {kl:.6}  max {:.6}", a.quant, sums.kl_max);
        println!("top-1 agreement  {top1:.2}%");
        eprintln!(
            "npu eval: {:.1} s ({:.1} tokens/s per model)",
            secs,
            (n_chunks * ctx) as f64 / secs * 2.0
        );
    }
}
