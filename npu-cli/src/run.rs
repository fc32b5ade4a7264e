//! `npu run` (pack in memory, then generate) and `npu logits` (pack in memory, then dump the
//! next-token logits of given ids, for comparisons with llama.cpp).
//!
//! Both build the same `npu_runtime::model::Model` value the generated consts of
//! `#[npu_model]` hold, from a model packed a moment ago (`npu_build::model::OwnedModel`), and
//! run it through the same `Session` code on the backend `--backend` picks ([`crate::backend`]).

use crate::backend::{self, BackendChoice};
use crate::CmdResult;
use npu_build::gguf::Gguf;
use npu_build::model::OwnedModel;
use npu_build::pack::PackOptions;
use npu_build::quant::{parse_scheme, parse_target};
use npu_runtime::generate::{chatml, Message};
use npu_runtime::generate::{generate_until, StopReason};
use npu_runtime::model::{arena_bytes, ModelConfig, Session};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::select::Selected;
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer, Utf8Stream};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options shared by `run`, `logits` and `bench`: which model, packed how.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The GGUF file.
    pub(crate) file: PathBuf,
    /// Target chip profile: rk3588, rk3576, rk3566, rk3568 or cpu.
    #[arg(long, default_value = "cpu")]
    pub(crate) target: String,
    /// Quantization scheme: fp16, int8, int8_hadamard, int4 or int4_hadamard.
    #[arg(long, default_value = "fp16")]
    pub(crate) quant: String,
    /// Threads for packing and for the matmuls (default: available parallelism); neither the
    /// blob nor any result depends on it.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Backend of the matmuls: cpu, rknpu (librknnrt from NPU_RKNN_LIB or the loader path;
    /// needs an RKNPU --target) or auto (rknpu when usable, else cpu).
    #[arg(long, value_enum, default_value = "cpu")]
    pub(crate) backend: BackendChoice,
}

/// Arguments of `npu run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt text, tokenized with the model's tokenizer as llama.cpp tokenizes prompts (BOS
    /// per the vocabulary's metadata, special-token text such as `<|im_start|>` parsed).
    #[arg(long, conflicts_with = "prompt_ids")]
    prompt: Option<String>,
    /// Prompt as token ids, comma-separated (bypasses the tokenizer).
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Greedy decoding (argmax) instead of the sampler chain.
    #[arg(long)]
    greedy: bool,
    /// Print the prompt's token ids, then the generated ids (one line each) instead of the
    /// generated text.
    #[arg(long)]
    print_ids: bool,
    /// Wrap the prompt in ChatML turns (system, user, assistant prefix).
    #[arg(long)]
    chat: bool,
    /// System message for --chat.
    #[arg(long)]
    system: Option<String>,
    /// KV cache positions (default: min(trained context, 4096)).
    #[arg(long)]
    ctx: Option<u32>,
    /// Sampling temperature.
    #[arg(long, default_value_t = SamplerConfig::DEFAULT.temperature)]
    temp: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = SamplerConfig::DEFAULT.top_k)]
    top_k: u32,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = SamplerConfig::DEFAULT.top_p)]
    top_p: f32,
    /// Min-p (0 = off).
    #[arg(long, default_value_t = SamplerConfig::DEFAULT.min_p)]
    min_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = SamplerConfig::DEFAULT.seed)]
    seed: u64,
}

/// Arguments of `npu logits`.
#[derive(clap::Args)]
pub struct LogitsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Token ids: a JSON array or ids separated by commas / whitespace.
    #[arg(long)]
    ids_file: PathBuf,
    /// Window length: the ids are cut into windows of this many tokens, each evaluated from
    /// an empty cache (as llama-perplexity does).
    #[arg(long, default_value_t = 512)]
    ctx: u32,
    /// Use only the first N ids (rounded down to whole windows).
    #[arg(long)]
    n_tokens: Option<usize>,
    /// Output: raw little-endian f32 logits `[position][vocab]`, `-` for stdout.
    #[arg(short, long)]
    output: PathBuf,
}

/// Opens and packs a model in memory, with its config and tokenizer tables.
pub(crate) fn load(
    a: &ModelArgs,
    ctx: Option<u32>,
) -> Result<OwnedModel, Box<dyn std::error::Error>> {
    let target = parse_target(&a.target)?;
    let scheme = parse_scheme(&a.quant)?;
    let threads = crate::threads(a.threads);
    let t0 = Instant::now();
    let g = Gguf::open(&a.file)?;
    // Without --ctx: the trained context, capped so the KV cache stays small by default.
    let context = ctx.unwrap_or(g.hparams()?.context_length.min(4096));
    let owned = OwnedModel::from_gguf(&g, &PackOptions { target, scheme, threads }, Some(context))?;
    eprintln!(
        "npu: packed {} for {} / {} in {:.2} s ({} MB)",
        a.file.display(),
        target.name,
        scheme.name(),
        t0.elapsed().as_secs_f64(),
        owned.packed.blob.len() >> 20
    );
    Ok(owned)
}

fn join_ids(ids: &[u32]) -> String {
    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
}

/// The prompt text `npu run` tokenizes: `--prompt` as given, or with `--chat` the ChatML
/// turns (optional system message, the user message, the assistant's opening).
pub fn prompt_text(
    prompt: &str,
    chat: bool,
    system: Option<&str>,
) -> Result<String, Box<dyn std::error::Error>> {
    if !chat {
        return Ok(prompt.to_owned());
    }
    let mut msgs = Vec::new();
    if let Some(sys) = system {
        msgs.push(Message { role: "system", content: sys });
    }
    msgs.push(Message { role: "user", content: prompt });
    let need = match chatml(&msgs, true, &mut []) {
        Ok(n) => n,
        Err(e) => e.need,
    };
    let mut buf = vec![0u8; need];
    let n = chatml(&msgs, true, &mut buf)
        .map_err(|e| format!("chat prompt: {} bytes needed", e.need))?;
    buf.truncate(n);
    Ok(String::from_utf8(buf)?)
}

/// Token ids of `text` as llama.cpp's examples tokenize a prompt (`llama_tokenize` with
/// `add_special` and `parse_special`): BOS/EOS as the vocabulary's metadata asks, and
/// special-token text such as `<|im_start|>` becomes its single id.
pub fn tokenize_prompt(
    tok: &Tokenizer<'_>,
    text: &str,
) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
    Ok(tok.encode_vec(text.as_bytes(), EncodeOptions { add_special: true, parse_special: true })?)
}

/// `npu run`.
pub fn run(args: RunArgs) -> CmdResult {
    if args.chat && args.prompt_ids.is_some() {
        return Err("--chat formats text turns; it needs --prompt".into());
    }
    if args.prompt.is_none() && args.prompt_ids.is_none() {
        return Err("give --prompt or --prompt-ids".into());
    }
    let sc = sampler_config(&args);
    // Settings are checked before the model is packed: a typo fails at once.
    sc.check()?;
    let owned = load(&args.model, args.ctx)?;
    let (view, config) = (owned.view(), owned.config);
    let m = view.model();
    let tok = m.tokenizer()?;
    let prompt = prompt_ids(&args, &tok, &config)?;
    let mut arena = vec![0u8; arena_bytes(&config, config.context_len)];
    let backend = backend::select(args.model.backend, &m.weights, args.model.threads)?;
    let mut session = Session::new(m, backend, &mut arena)?;
    let mut sampler = Sampler::new(sc);
    if args.print_ids {
        writeln!(std::io::stdout().lock(), "{}", join_ids(&prompt))?;
    }
    let t0 = Instant::now();
    let Streamed { ids: out, stop, first: t_first } =
        stream(&mut session, &mut sampler, &tok, &prompt, args.max_tokens, args.print_ids)?;
    let total = t0.elapsed().as_secs_f64();
    let prefill = t_first.map_or(total, |t| (t - t0).as_secs_f64());
    let gen_n = out.len().saturating_sub(1).max(1);
    eprintln!(
        "npu: {}: prompt {} tokens in {:.2} s ({:.1} tok/s); generated {} in {:.2} s ({:.2} tok/s); stop: {}",
        session.backend().describe(),
        prompt.len(),
        prefill,
        prompt.len() as f64 / prefill.max(1e-9),
        out.len(),
        total - prefill,
        gen_n as f64 / (total - prefill).max(1e-9),
        match stop {
            StopReason::EndToken(t) => format!("end token {t}"),
            StopReason::MaxTokens => "max tokens".into(),
            StopReason::ContextFull => "context full".into(),
            StopReason::Callback => "callback".into(),
        }
    );
    Ok(())
}

/// The sampler the flags ask for (`--greedy` overrides the rest).
fn sampler_config(args: &RunArgs) -> SamplerConfig {
    if args.greedy {
        return SamplerConfig::GREEDY;
    }
    SamplerConfig {
        temperature: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        seed: args.seed,
        ..SamplerConfig::DEFAULT
    }
}

/// The prompt's ids (given, or the text tokenized, as a chat turn with `--chat`), checked
/// against the vocabulary and the context.
fn prompt_ids(
    args: &RunArgs,
    tok: &Tokenizer<'_>,
    config: &ModelConfig,
) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
    let prompt: Vec<u32> = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(p)) => {
            tokenize_prompt(tok, &prompt_text(p, args.chat, args.system.as_deref())?)?
        }
        (None, None) => return Err("give --prompt or --prompt-ids".into()),
    };
    if let Some(&id) = prompt.iter().find(|&&id| id >= config.vocab) {
        return Err(format!(
            "prompt token id {id} is outside the model's vocabulary (0..{})",
            config.vocab
        )
        .into());
    }
    if prompt.len() > config.context_len as usize {
        return Err(format!(
            "the prompt is {} tokens long but the context holds {} (raise --ctx, at most the trained length)",
            prompt.len(),
            config.context_len
        )
        .into());
    }
    Ok(prompt)
}

/// What [`stream`] generated.
struct Streamed {
    ids: Vec<u32>,
    stop: StopReason,
    /// When the first generated token came (the end of prefill).
    first: Option<Instant>,
}

/// Generates after `prompt`, streaming text to stdout as it comes (or, with `ids`, the ids
/// on one line at the end); the generated ids, why it stopped and when the first token came.
fn stream(
    session: &mut Session<'_, '_, Selected>,
    sampler: &mut Sampler,
    tok: &Tokenizer<'_>,
    prompt: &[u32],
    max_tokens: usize,
    ids: bool,
) -> Result<Streamed, Box<dyn std::error::Error>> {
    let stdout = std::io::stdout();
    let mut out = Vec::new();
    let mut piece = vec![0u8; tok.max_token_len()];
    let mut text = Utf8Stream::new();
    let mut failure: Option<Box<dyn std::error::Error>> = None;
    let mut emit = |s: &str| -> std::io::Result<()> {
        let mut o = stdout.lock();
        o.write_all(s.as_bytes())?;
        o.flush()
    };
    let mut t_first = None;
    // Stop where llama.cpp stops: the config's end tokens and the vocabulary's whole
    // end-of-generation set.
    let config = *session.config();
    let is_end = |id: u32| config.is_stop(id) || tok.tables().is_eog(id);
    let res = generate_until(session, sampler, prompt, max_tokens, is_end, |id| {
        t_first.get_or_insert_with(Instant::now);
        out.push(id);
        if ids {
            return true;
        }
        // Generated text as llama.cpp's examples show it: control tokens are not rendered.
        let r = tok
            .piece(id, false, false, &mut piece)
            .map_err(Into::into)
            .and_then(|n| text.push(&piece[..n], &mut emit).map_err(Into::into));
        r.map_err(|e| failure = Some(e)).is_ok()
    });
    let res = res.map_err(|e| session.backend().failure().unwrap_or_else(|| e.to_string()))?;
    if let Some(e) = failure {
        return Err(e);
    }
    if ids {
        writeln!(stdout.lock(), "{}", join_ids(&out))?;
    } else {
        text.finish(&mut emit)?;
        emit("\n")?;
    }
    Ok(Streamed { ids: out, stop: res.stop, first: t_first })
}

/// Reads ids: a JSON array or separated integers.
fn read_ids(p: &Path) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().map_err(|e| format!("{}: bad id `{s}`: {e}", p.display()).into()))
        .collect()
}

/// `npu logits`.
pub fn logits(args: LogitsArgs) -> CmdResult {
    let ids = read_ids(&args.ids_file)?;
    let w = args.ctx.max(1) as usize;
    let n = args.n_tokens.unwrap_or(ids.len()).min(ids.len()) / w * w;
    if n == 0 {
        return Err(format!("fewer than one window of {w} ids").into());
    }
    let owned = load(&args.model, Some(args.ctx))?;
    let (view, config) = (owned.view(), owned.config);
    let m = view.model();
    let mut arena = vec![0u8; arena_bytes(&config, config.context_len)];
    let backend = backend::select(args.model.backend, &m.weights, args.model.threads)?;
    let mut session = Session::new(m, backend, &mut arena)?;
    let sink: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&args.output)
                .map_err(|e| format!("{}: {e}", args.output.display()))?,
        )
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 20, sink);
    let t0 = Instant::now();
    let mut io_err = None;
    let mut bytes = Vec::with_capacity(config.vocab as usize * 4);
    let mut rows = vec![0f32; npu_runtime::model::MAX_BATCH * config.vocab as usize];
    for window in ids[..n].chunks(w) {
        session.reset();
        session
            .eval_all_batched(window, &mut rows, |_, l| {
                bytes.clear();
                l.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
                if io_err.is_none() {
                    if let Err(e) = sink.write_all(&bytes) {
                        io_err = Some(e);
                    }
                }
            })
            .map_err(|e| session.backend().failure().unwrap_or_else(|| e.to_string()))?;
        if let Some(e) = io_err.take() {
            return Err(format!("writing logits: {e}").into());
        }
        sink.flush()?;
    }
    let s = t0.elapsed().as_secs_f64();
    eprintln!("npu: {n} tokens in {s:.1} s ({:.1} tok/s)", n as f64 / s);
    Ok(())
}
