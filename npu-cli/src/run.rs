//! `npu run` (pack in memory, then generate) and `npu logits` (pack in memory, then dump the
//! next-token logits of given ids, for comparisons with llama.cpp).
//!
//! Both build the same `npu_runtime::model::Model` value the generated consts of
//! `#[npu_model]` hold, from a blob packed a moment ago, and run it through the same
//! `Session` code on the CPU reference backend.

use crate::CmdResult;
use npu_build::gguf::Gguf;
use npu_build::pack::{pack, PackOptions, Packed};
use npu_build::quant::{parse_scheme, parse_target};
use npu_runtime::backend::{Backend, CpuReference};
use npu_runtime::format::PackedModel;
use npu_runtime::generate::{generate, StopReason};
use npu_runtime::model::{arena_bytes, Arch, Model, ModelConfig, RopeStyle, Session};
use npu_runtime::sampler::{Sampler, SamplerConfig};
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
    /// Prompt text (needs the tokenizer).
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
    /// Print the prompt's token ids, then the generated ids (one line each).
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

/// The model config from a GGUF's metadata: the same mapping the build script uses.
pub fn model_config(g: &Gguf<'_>, ctx: Option<u32>) -> Result<ModelConfig, Box<dyn std::error::Error>> {
    let hp = g.hparams()?;
    let arch = Arch::from_name(&hp.architecture).ok_or_else(|| format!("unsupported architecture `{}`", hp.architecture))?;
    let tok = g.tokenizer()?;
    let eos = tok.eos_id.ok_or("the model declares no tokenizer.ggml.eos_token_id")?;
    let context = ctx.unwrap_or(hp.context_length.min(4096));
    let mut c = ModelConfig::new(
        arch,
        hp.block_count,
        hp.embedding_length,
        hp.head_count,
        hp.head_count_kv,
        hp.head_dim,
        hp.feed_forward_length,
        hp.vocab_size,
        hp.rope_freq_base,
        hp.rms_norm_eps,
        hp.tied_output,
        context,
        eos,
    );
    c.rope_dim = hp.rope_dimension_count;
    c.rope_style = match hp.rope_style {
        npu_build::gguf::RopeStyle::Normal => RopeStyle::Normal,
        npu_build::gguf::RopeStyle::Neox => RopeStyle::Neox,
    };
    c.qkv_bias = hp.qkv_bias;
    c.eot = end_of_turn(g)?.filter(|&e| e != eos);
    if let Some(why) = c.invalid() {
        return Err(format!("unsupported hyperparameters: {why}").into());
    }
    Ok(c)
}

/// The end-of-turn token: `tokenizer.ggml.eot_token_id`, else the first of llama.cpp's
/// known end-of-turn texts present in the vocabulary.
fn end_of_turn(g: &Gguf<'_>) -> Result<Option<u32>, Box<dyn std::error::Error>> {
    if let Some(id) = g.get_u32("tokenizer.ggml.eot_token_id")? {
        return Ok(Some(id));
    }
    let Some(tokens) = g.get_str_array("tokenizer.ggml.tokens")? else { return Ok(None) };
    for text in ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"] {
        if let Some(i) = tokens.iter().position(|t| *t == text) {
            return Ok(u32::try_from(i).ok());
        }
    }
    Ok(None)
}

/// Opens and packs a model in memory.
fn load(a: &ModelArgs, ctx: Option<u32>) -> Result<(Packed, ModelConfig), Box<dyn std::error::Error>> {
    let target = parse_target(&a.target)?;
    let scheme = parse_scheme(&a.quant)?;
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let t0 = Instant::now();
    let g = Gguf::open(&a.file)?;
    let config = model_config(&g, ctx)?;
    let packed = pack(&g, &PackOptions { target, scheme, threads })?;
    eprintln!(
        "npu: packed {} for {} / {} in {:.2} s ({} MB)",
        a.file.display(),
        target.name,
        scheme.name(),
        t0.elapsed().as_secs_f64(),
        packed.blob.len() >> 20
    );
    Ok((packed, config))
}

fn model<'a>(packed: &'a Packed, descs: &'a [npu_runtime::format::TensorDesc<'a>], config: ModelConfig) -> Model<'a> {
    Model {
        config,
        weights: PackedModel { target: packed.target.id, scheme: packed.scheme, tensors: descs, blob: &packed.blob },
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

/// `npu run`.
pub fn run(args: RunArgs) -> CmdResult {
    let prompt: Vec<u32> = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(_)) => return Err("--prompt needs the tokenizer, which this build does not have yet; use --prompt-ids".into()),
        (None, None) => return Err("give --prompt or --prompt-ids".into()),
    };
    if args.chat && args.prompt_ids.is_some() {
        return Err("--chat formats text turns; it needs --prompt".into());
    }
    let (packed, config) = load(&args.model, args.ctx)?;
    let descs = packed.descs();
    let m = model(&packed, &descs, config);
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
    if args.print_ids {
        println!("{}", join_ids(&prompt));
    }
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut t_first = None;
    let res = generate(&mut session, &mut sampler, &prompt, args.max_tokens, |id| {
        t_first.get_or_insert_with(Instant::now);
        out.push(id);
        if !args.print_ids {
            print!("{id} ");
            let _ = std::io::stdout().flush();
        }
        true
    })?;
    if args.print_ids {
        println!("{}", join_ids(&out));
    } else {
        println!();
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
    let (packed, config) = load(&args.model, Some(args.ctx))?;
    let descs = packed.descs();
    let m = model(&packed, &descs, config);
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
    for window in ids[..n].chunks(w) {
        session.reset();
        session.eval_all(window, |_, l| {
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
/// scaled and summed over segments in the reference's order. Only speed differs; a test in
/// `npu-build/tests/model_session.rs` checks the equality on real tensors.
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
    #[derive(Default)]
    pub struct CachedCpu {
        cache: HashMap<usize, Unpacked>,
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

    impl Backend for CachedCpu {
        fn name(&self) -> &'static str {
            "cpu-cached"
        }
        fn scratch_len(&self, w: &PackedWeight<'_>) -> usize {
            exec::scratch_len(w.desc())
        }
        fn matmul(&mut self, w: &PackedWeight<'_>, x: &[f32], m: usize, y: &mut [f32], scratch: &mut [f32]) -> Result<(), Error> {
            let d = w.desc();
            let key = d as *const TensorDesc<'_> as usize;
            let u = match self.cache.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(unpack(d, w.blob())?),
            };
            let u = &*u;
            let p = d.pipeline.ok_or(Error::WrongKind)?;
            let g = d.geom;
            let (k, n, kp) = (g.k as usize, g.n as usize, g.k_pad as usize);
            if x.len() != m * k || y.len() != m * n || scratch.len() < kp {
                return Err(Error::Length { what: "cached matmul operands", need: m * k, got: x.len() });
            }
            let qmax = p.qmax();
            let buf = &mut scratch[..kp];
            for row in 0..m {
                buf[..k].copy_from_slice(&x[row * k..(row + 1) * k]);
                buf[k..].fill(0.0);
                if let Some(rot) = d.rotation {
                    rotate::rotate(rot, buf);
                }
                let yrow = &mut y[row * n..(row + 1) * n];
                yrow.fill(0.0);
                for seg in 0..g.k_segs {
                    let (k0, kl) = g.seg_range(seg);
                    let (k0, kl) = (k0 as usize, kl as usize);
                    let a = &mut buf[k0..k0 + kl];
                    let s_a = match p {
                        Pipeline::F16F16F32 => {
                            a.iter_mut().for_each(|v| *v = quant::to_f16_and_back(*v));
                            1.0
                        }
                        _ => {
                            let s = quant::scale_for(quant::absmax(a), qmax);
                            a.iter_mut().for_each(|v| *v = quant::quantize(*v, s, qmax) as f32);
                            s
                        }
                    };
                    for b in 0..n.div_ceil(L) {
                        let base = (b * kp + k0) * L;
                        match &u.vals {
                            Vals::F32(wv) => {
                                let mut acc = [0f32; L];
                                for (kk, &av) in a.iter().enumerate() {
                                    let wr = &wv[base + kk * L..base + kk * L + L];
                                    for j in 0..L {
                                        acc[j] += av * wr[j];
                                    }
                                }
                                for j in 0..L.min(n - b * L) {
                                    yrow[b * L + j] += acc[j];
                                }
                            }
                            Vals::I8(wq) => {
                                let mut acc = [0i32; L];
                                for (kk, &av) in a.iter().enumerate() {
                                    let ai = av as i32;
                                    let wr = &wq[base + kk * L..base + kk * L + L];
                                    for j in 0..L {
                                        acc[j] += ai * wr[j] as i32;
                                    }
                                }
                                #[allow(clippy::needless_range_loop)] // j indexes acc, yrow and scales
                                for j in 0..L.min(n - b * L) {
                                    // int4 → int16: the packer's K segments keep every prefix in
                                    // range (49 · 640 < 2^15), so the final sum decides overflow.
                                    if p == Pipeline::I4I4I16 && i16::try_from(acc[j]).is_err() {
                                        return Err(Error::AccumulatorOverflow { k_seg: seg });
                                    }
                                    let nn = b * L + j;
                                    yrow[nn] += acc[j] as f32 * s_a * u.scales[seg as usize * g.n_pad as usize + nn];
                                }
                            }
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
