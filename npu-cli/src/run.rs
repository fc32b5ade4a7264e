//! `npu run` (pack in memory, then generate) and `npu logits` (pack in memory, then dump the
//! next-token logits of given ids, for comparisons with llama.cpp).
//!
//! Both build the same `npu_runtime::model::Model` value the generated consts of
//! `#[npu_model]` hold, from a blob packed a moment ago, and run it through the same
//! `Session` code on the CPU reference backend.

use crate::CmdResult;
use npu_build::config::model_config;
use npu_build::gguf::Gguf;
use npu_build::pack::{pack, PackOptions, Packed};
use npu_build::quant::{parse_scheme, parse_target};
use npu_build::tokenizer::OwnedTokenizerTables;
use npu_runtime::backend::{Backend, CpuReference};
use npu_runtime::format::PackedModel;
use npu_runtime::generate::{generate, StopReason};
use npu_runtime::model::{arena_bytes, Model, ModelConfig, Session};
use npu_runtime::generate::{chatml, Message};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer, TokenizerTables, Utf8Stream};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options shared by `run` and `logits`: which model, packed how.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The GGUF file.
    file: PathBuf,
    /// Target chip profile: rk3588, rk3576, rk3566, rk3568 or cpu.
    #[arg(long, default_value = "cpu")]
    target: String,
    /// Quantization scheme: fp16, int8, int8_hadamard, int4 or int4_hadamard.
    #[arg(long, default_value = "fp16")]
    quant: String,
    /// Packer threads (default: available parallelism); the blob does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
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

/// Opens and packs a model in memory; builds its tokenizer tables.
fn load(a: &ModelArgs, ctx: Option<u32>) -> Result<(Packed, ModelConfig, OwnedTokenizerTables), Box<dyn std::error::Error>> {
    let target = parse_target(&a.target)?;
    let scheme = parse_scheme(&a.quant)?;
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let t0 = Instant::now();
    let g = Gguf::open(&a.file)?;
    let tok = OwnedTokenizerTables::from_gguf(&g)?;
    // Without --ctx: the trained context, capped so the KV cache stays small by default.
    let context = ctx.unwrap_or(g.hparams()?.context_length.min(4096));
    let config = model_config(&g, &tok, Some(context))?;
    let packed = pack(&g, &PackOptions { target, scheme, threads })?;
    eprintln!(
        "npu: packed {} for {} / {} in {:.2} s ({} MB)",
        a.file.display(),
        target.name,
        scheme.name(),
        t0.elapsed().as_secs_f64(),
        packed.blob.len() >> 20
    );
    Ok((packed, config, tok))
}

fn model<'a>(
    packed: &'a Packed,
    descs: &'a [npu_runtime::format::TensorDesc<'a>],
    config: ModelConfig,
    tokenizer: &'a TokenizerTables<'a>,
) -> Model<'a> {
    Model {
        config,
        weights: PackedModel { target: packed.target.id, scheme: packed.scheme, tensors: descs, blob: &packed.blob },
        tokenizer,
    }
}

/// The backend the CLI runs: [`cached::CachedCpu`], bit-identical to [`CpuReference`] (the
/// `NPU_REFERENCE_BACKEND=1` environment variable selects the reference itself, for checks).
fn backend() -> CliBackend {
    if std::env::var_os("NPU_REFERENCE_BACKEND").is_some_and(|v| v == "1") {
        CliBackend::Reference(CpuReference)
    } else {
        CliBackend::Cached(cached::CachedCpu::default())
    }
}

/// Either CPU backend, chosen at run time.
enum CliBackend {
    Reference(CpuReference),
    Cached(cached::CachedCpu),
}

impl Backend for CliBackend {
    fn name(&self) -> &'static str {
        match self {
            CliBackend::Reference(b) => b.name(),
            CliBackend::Cached(b) => b.name(),
        }
    }
    fn scratch_len(&self, w: &npu_runtime::backend::PackedWeight<'_>) -> usize {
        match self {
            CliBackend::Reference(b) => b.scratch_len(w),
            CliBackend::Cached(b) => b.scratch_len(w),
        }
    }
    fn matmul(
        &mut self,
        w: &npu_runtime::backend::PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), npu_runtime::Error> {
        match self {
            CliBackend::Reference(b) => b.matmul(w, x, m, y, scratch),
            CliBackend::Cached(b) => b.matmul(w, x, m, y, scratch),
        }
    }
}

fn join_ids(ids: &[u32]) -> String {
    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
}

/// The prompt text `npu run` tokenizes: `--prompt` as given, or with `--chat` the ChatML
/// turns (optional system message, the user message, the assistant's opening).
pub fn prompt_text(prompt: &str, chat: bool, system: Option<&str>) -> Result<String, Box<dyn std::error::Error>> {
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
    let n = chatml(&msgs, true, &mut buf).map_err(|e| format!("chat prompt: {} bytes needed", e.need))?;
    buf.truncate(n);
    Ok(String::from_utf8(buf)?)
}

/// Token ids of `text` as llama.cpp's examples tokenize a prompt (`llama_tokenize` with
/// `add_special` and `parse_special`): BOS/EOS as the vocabulary's metadata asks, and
/// special-token text such as `<|im_start|>` becomes its single id.
pub fn tokenize_prompt(tok: &Tokenizer<'_>, text: &str) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
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
    let (packed, config, owned_tok) = load(&args.model, args.ctx)?;
    let tables = owned_tok.tables();
    let descs = packed.descs();
    let m = model(&packed, &descs, config, &tables);
    let tok = m.tokenizer()?;
    let prompt: Vec<u32> = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(p)) => tokenize_prompt(&tok, &prompt_text(p, args.chat, args.system.as_deref())?)?,
        (None, None) => return Err("give --prompt or --prompt-ids".into()),
    };
    let mut arena = vec![0u8; arena_bytes(&config, config.context_len)];
    let mut session = Session::new(m, backend(), &mut arena)?;
    let sc = if args.greedy {
        SamplerConfig::GREEDY
    } else {
        SamplerConfig {
            temperature: args.temp,
            top_k: args.top_k,
            top_p: args.top_p,
            min_p: args.min_p,
            repeat_penalty: args.repeat_penalty,
            seed: args.seed,
            ..SamplerConfig::DEFAULT
        }
    };
    let mut sampler = Sampler::new(sc);
    let stdout = std::io::stdout();
    if args.print_ids {
        writeln!(stdout.lock(), "{}", join_ids(&prompt))?;
    }
    let mut out = Vec::new();
    let mut piece = vec![0u8; tok.max_token_len()];
    let mut text = Utf8Stream::new();
    let mut failure: Option<Box<dyn std::error::Error>> = None;
    let mut emit = |s: &str| -> std::io::Result<()> {
        let mut o = stdout.lock();
        o.write_all(s.as_bytes())?;
        o.flush()
    };
    let t0 = Instant::now();
    let mut t_first = None;
    let res = generate(&mut session, &mut sampler, &prompt, args.max_tokens, |id| {
        t_first.get_or_insert_with(Instant::now);
        out.push(id);
        if args.print_ids {
            return true;
        }
        // Generated text as llama.cpp's examples show it: control tokens are not rendered.
        let r = tok.piece(id, false, false, &mut piece).map_err(Into::into).and_then(|n| {
            text.push(&piece[..n], &mut emit).map_err(Into::into)
        });
        match r {
            Ok(()) => true,
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    if args.print_ids {
        writeln!(stdout.lock(), "{}", join_ids(&out))?;
    } else {
        text.finish(&mut emit)?;
        emit("\n")?;
    }
    let total = t0.elapsed().as_secs_f64();
    let prefill = t_first.map_or(total, |t| (t - t0).as_secs_f64());
    let gen_n = out.len().saturating_sub(1).max(1);
    eprintln!(
        "npu: prompt {} tokens in {:.2} s ({:.1} tok/s); generated {} in {:.2} s ({:.2} tok/s); stop: {}",
        prompt.len(),
        prefill,
        prompt.len() as f64 / prefill.max(1e-9),
        out.len(),
        total - prefill,
        gen_n as f64 / (total - prefill).max(1e-9),
        match res.stop {
            StopReason::EndToken(t) => format!("end token {t}"),
            StopReason::MaxTokens => "max tokens".into(),
            StopReason::ContextFull => "context full".into(),
            StopReason::Callback => "callback".into(),
        }
    );
    Ok(())
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
    let (packed, config, tok) = load(&args.model, Some(args.ctx))?;
    let descs = packed.descs();
    let tables = tok.tables();
    let m = model(&packed, &descs, config, &tables);
    let mut arena = vec![0u8; arena_bytes(&config, config.context_len)];
    let mut session = Session::new(m, backend(), &mut arena)?;
    let sink: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&args.output).map_err(|e| format!("{}: {e}", args.output.display()))?)
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 20, sink);
    let t0 = Instant::now();
    let mut io_err = None;
    let mut bytes = Vec::with_capacity(config.vocab as usize * 4);
    let mut rows = vec![0f32; npu_runtime::model::MAX_BATCH * config.vocab as usize];
    for window in ids[..n].chunks(w) {
        session.reset();
        session.eval_all_batched(window, &mut rows, |_, l| {
            bytes.clear();
            l.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
            if io_err.is_none() {
                if let Err(e) = sink.write_all(&bytes) {
                    io_err = Some(e);
                }
            }
        })?;
        if let Some(e) = io_err.take() {
            return Err(format!("writing logits: {e}").into());
        }
        sink.flush()?;
    }
    let s = t0.elapsed().as_secs_f64();
    eprintln!("npu: {n} tokens in {s:.1} s ({:.1} tok/s)", n as f64 / s);
    Ok(())
}

/// A CPU backend for the CLI's measurements that gives **bit-identical** results to
/// [`CpuReference`] (`npu_runtime::exec::matmul`) but runs several times faster: on first use
/// of a tensor it unpacks the weight once (std only: it allocates) into blocks of 8 output
/// channels, `[n/8][k_pad][8]`, as exact f32 values (fp16 pipeline) or i8 codes (int
/// pipelines). Then each activation row is prepared exactly as the reference does it
/// (pad, rotate, per-segment f16 rounding or absmax quantization, from `exec`), and 8
/// channels are accumulated side by side: each lane is still the ascending-k sum of one
/// channel with separate multiply and add (no fusion), integer sums are exact, partials are
/// scaled and summed over segments in the reference's order. Blocks are the outer loop (a
/// block's weights stay in cache for all M rows) and are split over threads; each output is
/// computed by one thread with the same operations. Only speed differs;
/// `tests/llamacpp/test_llamacpp.py::test_cached_backend_is_bit_exact` checks the equality
/// on SmolLM2 for the fp16, int8 and int4_hadamard pipelines.
pub mod cached {
    use npu_runtime::backend::{Backend, PackedWeight};
    use npu_runtime::exec::{self, quant, rotate};
    use npu_runtime::format::{Pipeline, TensorDesc};
    use npu_runtime::Error;
    use std::collections::HashMap;

    const L: usize = 8;

    enum Vals {
        F32(Vec<f32>),
        I8(Vec<i8>),
    }

    struct Unpacked {
        /// `[n_blocks][k_pad][8]` weights in the stored (rotated) domain.
        vals: Vals,
        /// `[k_segs][n_pad]` scales (int pipelines).
        scales: Vec<f32>,
    }

    /// The caching backend (see the module docs).
    pub struct CachedCpu {
        cache: HashMap<usize, Unpacked>,
        /// Prepared activation rows `[m][k_pad]` of the current matmul.
        act: Vec<f32>,
        /// Their per-segment scales `[m][k_segs]`.
        s_a: Vec<f32>,
        /// Worker threads per matmul.
        threads: usize,
    }

    impl CachedCpu {
        /// A backend that splits each large matmul over `threads` threads (results do not
        /// depend on it).
        pub fn new(threads: usize) -> CachedCpu {
            CachedCpu { cache: HashMap::new(), act: Vec::new(), s_a: Vec::new(), threads: threads.max(1) }
        }
    }

    impl Default for CachedCpu {
        /// [`CachedCpu::new`] with the available parallelism.
        fn default() -> CachedCpu {
            CachedCpu::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
        }
    }

    /// Exact IEEE binary16 → binary32 (every f16 value is representable in f32).
    pub fn f16_to_f32(h: u16) -> f32 {
        let sign = ((h as u32) & 0x8000) << 16;
        let exp = ((h >> 10) & 0x1f) as u32;
        let man = (h & 0x3ff) as u32;
        let bits = match (exp, man) {
            (0, 0) => sign,
            (0, m) => {
                // subnormal: value = m · 2^-24, exact in f32
                let v = m as f32 * (1.0 / 16_777_216.0);
                return if sign != 0 { -v } else { v };
            }
            (31, 0) => sign | 0x7f80_0000,
            (31, m) => sign | 0x7f80_0000 | (m << 13),
            (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
        };
        f32::from_bits(bits)
    }

    fn unpack(d: &TensorDesc<'_>, blob: &[u8]) -> Result<Unpacked, Error> {
        let g = d.geom;
        let (n, kp) = (g.n as usize, g.k_pad as usize);
        let nb = n.div_ceil(L);
        let p = d.pipeline.ok_or(Error::WrongKind)?;
        let mut f = if p == Pipeline::F16F16F32 { vec![0f32; nb * kp * L] } else { Vec::new() };
        let mut q = if p == Pipeline::F16F16F32 { Vec::new() } else { vec![0i8; nb * kp * L] };
        for sh in d.shards {
            let bytes = d.shard_bytes(blob, sh)?;
            let (kl, n_len) = (sh.k_len as usize, sh.n_len as usize);
            for nl in 0..n_len {
                let nn = sh.n0 as usize + nl;
                if nn >= n {
                    break;
                }
                for kk in 0..kl {
                    let off = d.layout.byte_offset(kk, nl, kl, n_len);
                    let at = ((nn / L) * kp + sh.k0 as usize + kk) * L + nn % L;
                    match p {
                        Pipeline::F16F16F32 => f[at] = f16_to_f32(u16::from_le_bytes([bytes[off], bytes[off + 1]])),
                        Pipeline::I8I8I32 => q[at] = bytes[off] as i8,
                        Pipeline::I4I4I16 => {
                            let (lo, hi) = exec::nibbles(bytes[off]);
                            q[at] = if d.layout.high_nibble(kk, nl, kl, n_len) { hi } else { lo };
                        }
                    }
                }
            }
        }
        let mut scales = Vec::new();
        if p != Pipeline::F16F16F32 {
            for seg in 0..g.k_segs {
                for nn in 0..g.n_pad {
                    scales.push(d.scale(blob, seg, nn));
                }
            }
        }
        Ok(Unpacked { vals: if p == Pipeline::F16F16F32 { Vals::F32(f) } else { Vals::I8(q) }, scales })
    }

    /// One matmul's prepared activations: rows padded, rotated and rounded (fp16) or
    /// quantized (int) per K segment exactly as the reference executor prepares them.
    struct Prepared<'p> {
        /// `[m][k_pad]` prepared values.
        a: &'p [f32],
        /// `[m][k_segs]` activation scales (int pipelines; 1 for fp16).
        s_a: &'p [f32],
        m: usize,
    }

    /// Output channels `[b0·8, b1·8)` of every row into `out` (`[m][cols]`, `cols` = the
    /// channels of those blocks that exist): the reference's sums, in its order — for each
    /// channel, the segments ascending, within a segment the ascending-k sum.
    fn blocks(d: &TensorDesc<'_>, u: &Unpacked, pa: &Prepared<'_>, b0: usize, b1: usize, out: &mut [f32]) -> Result<(), Error> {
        let g = d.geom;
        let p = d.pipeline.ok_or(Error::WrongKind)?;
        let (n, kp) = (g.n as usize, g.k_pad as usize);
        let c0 = b0 * L;
        let cols = (b1 * L).min(n) - c0;
        out.fill(0.0);
        for b in b0..b1 {
            let lanes = L.min(n - b * L);
            for row in 0..pa.m {
                let yrow = &mut out[row * cols + b * L - c0..row * cols + b * L - c0 + lanes];
                for seg in 0..g.k_segs {
                    let (k0, kl) = g.seg_range(seg);
                    let (k0, kl) = (k0 as usize, kl as usize);
                    let a = &pa.a[row * kp + k0..row * kp + k0 + kl];
                    let base = (b * kp + k0) * L;
                    match &u.vals {
                        Vals::F32(wv) => {
                            let mut acc = [0f32; L];
                            for (&av, wr) in a.iter().zip(wv[base..base + kl * L].chunks_exact(L)) {
                                for j in 0..L {
                                    acc[j] += av * wr[j];
                                }
                            }
                            for (y, &v) in yrow.iter_mut().zip(&acc) {
                                *y += v;
                            }
                        }
                        Vals::I8(wq) => {
                            let mut acc = [0i32; L];
                            for (&av, wr) in a.iter().zip(wq[base..base + kl * L].chunks_exact(L)) {
                                let ai = av as i32;
                                for j in 0..L {
                                    acc[j] += ai * wr[j] as i32;
                                }
                            }
                            let s_a = pa.s_a[row * g.k_segs as usize + seg as usize];
                            for (j, y) in yrow.iter_mut().enumerate() {
                                // int4 → int16: the packer's K segments keep every prefix in
                                // range (49 · 640 < 2^15), so the final sum decides overflow.
                                if p == Pipeline::I4I4I16 && i16::try_from(acc[j]).is_err() {
                                    return Err(Error::AccumulatorOverflow { k_seg: seg });
                                }
                                *y += acc[j] as f32 * s_a * u.scales[seg as usize * g.n_pad as usize + b * L + j];
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    impl Backend for CachedCpu {
        fn name(&self) -> &'static str {
            "cpu-cached"
        }
        fn scratch_len(&self, w: &PackedWeight<'_>) -> usize {
            exec::scratch_len(w.desc())
        }
        fn matmul(&mut self, w: &PackedWeight<'_>, x: &[f32], m: usize, y: &mut [f32], _scratch: &mut [f32]) -> Result<(), Error> {
            let d = w.desc();
            let key = d as *const TensorDesc<'_> as usize;
            let u = match self.cache.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(unpack(d, w.blob())?),
            };
            let u = &*u;
            let p = d.pipeline.ok_or(Error::WrongKind)?;
            let g = d.geom;
            let (k, n, kp, segs) = (g.k as usize, g.n as usize, g.k_pad as usize, g.k_segs as usize);
            if x.len() != m * k || y.len() != m * n {
                return Err(Error::Length { what: "cached matmul operands", need: m * k, got: x.len() });
            }
            let qmax = p.qmax();
            self.act.clear();
            self.act.resize(m * kp, 0.0);
            self.s_a.clear();
            self.s_a.resize(m * segs, 1.0);
            for row in 0..m {
                let buf = &mut self.act[row * kp..(row + 1) * kp];
                buf[..k].copy_from_slice(&x[row * k..(row + 1) * k]);
                if let Some(rot) = d.rotation {
                    rotate::rotate(rot, buf);
                }
                for seg in 0..g.k_segs {
                    let (k0, kl) = g.seg_range(seg);
                    let a = &mut buf[k0 as usize..(k0 + kl) as usize];
                    if p == Pipeline::F16F16F32 {
                        a.iter_mut().for_each(|v| *v = quant::to_f16_and_back(*v));
                    } else {
                        let s = quant::scale_for(quant::absmax(a), qmax);
                        a.iter_mut().for_each(|v| *v = quant::quantize(*v, s, qmax) as f32);
                        self.s_a[row * segs + seg as usize] = s;
                    }
                }
            }
            let pa = Prepared { a: &self.act, s_a: &self.s_a, m };
            let nb = n.div_ceil(L);
            // Threads take contiguous ranges of 8-channel blocks; every output value is still
            // computed by one thread with the same operations, so the thread count changes
            // nothing but speed. Small matmuls stay on this thread.
            let threads = if m * n * kp < (1 << 18) { 1 } else { self.threads.min(nb).max(1) };
            let per = nb.div_ceil(threads);
            let ranges: Vec<(usize, usize)> = (0..threads).map(|t| (t * per, ((t + 1) * per).min(nb))).filter(|r| r.0 < r.1).collect();
            let mut outs: Vec<Vec<f32>> = ranges.iter().map(|&(b0, b1)| vec![0f32; m * ((b1 * L).min(n) - b0 * L)]).collect();
            let results: Vec<Result<(), Error>> = if ranges.len() == 1 {
                vec![blocks(d, u, &pa, ranges[0].0, ranges[0].1, &mut outs[0])]
            } else {
                std::thread::scope(|sc| {
                    let hs: Vec<_> = ranges
                        .iter()
                        .zip(outs.iter_mut())
                        .map(|(&(b0, b1), o)| {
                            let pa = &pa;
                            sc.spawn(move || blocks(d, u, pa, b0, b1, o))
                        })
                        .collect();
                    hs.into_iter().map(|h| h.join().unwrap_or(Err(Error::BadDescriptor("matmul thread panicked")))).collect()
                })
            };
            for r in results {
                r?;
            }
            for (&(b0, b1), o) in ranges.iter().zip(&outs) {
                let (c0, c1) = (b0 * L, (b1 * L).min(n));
                for (row, src) in o.chunks_exact(c1 - c0).enumerate() {
                    y[row * n + c0..row * n + c1].copy_from_slice(src);
                }
            }
            Ok(())
        }
    }
}
