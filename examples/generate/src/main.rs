//! `generate`: prompt → streamed text, from a model compiled into this binary.
//!
//! ```sh
//! source scripts/env.sh && scripts/fetch-models.sh smollm2      # NPU_CACHE, the GGUF
//! cd examples && cargo run --release -p generate -- --prompt "Once upon a time"
//! ```
//!
//! Nothing is read or converted at startup: the weights are static data in the executable,
//! already quantized and laid out for the RK3588's int8 pipeline, and the CPU backend computes
//! exactly what that pipeline computes (SIMD kernels picked for the CPU at run time, bit-exact
//! to the reference executor). Options: `--max-tokens N` (default 128), `--greedy`,
//! `--temp T`, `--top-k K`, `--top-p P`, `--min-p P`, `--repeat-penalty R`, `--seed S`, `--backend cpu|rknpu|auto` (the
//! NPU through librknnrt, `NPU_RKNN_LIB`; default cpu), and
//! `--print-ids` (print the prompt's token ids, then the generated ids, one line each: the
//! same output `npu run ... --print-ids` gives, which tests/examples/ compares).

use npu_model_macro::npu_model;
use npu_runtime::generate::{generate, StopReason};
use npu_runtime::model::Session;
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::select;
use npu_runtime::tokenizer::{EncodeOptions, Utf8Stream};
use std::io::Write;
use std::process::ExitCode;

/// SmolLM2-135M-Instruct, re-quantized at build time for the RK3588's int8 pipeline with a
/// randomized Hadamard rotation (the best-scoring RK3588 scheme; README, "Schemes").
#[npu_model(
    path = "${NPU_CACHE}/smollm2-135m-instruct-q4_1.gguf",
    target = "rk3588",
    quant = "int8_hadamard",
    context = 2048
)]
pub struct SmolLm;

/// Command-line options.
struct Args {
    prompt: String,
    max_tokens: usize,
    print_ids: bool,
    sampler: SamplerConfig,
    backend: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        prompt: String::new(),
        max_tokens: 128,
        print_ids: false,
        sampler: SamplerConfig::DEFAULT,
        backend: "cpu".into(),
    };
    let mut prompt = None;
    let mut greedy = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: `{v}` is not a valid number"))
        }
        match flag.as_str() {
            "--prompt" => prompt = Some(value("--prompt")?),
            "--max-tokens" => a.max_tokens = num(&flag, value(&flag)?)?,
            "--greedy" => greedy = true,
            "--print-ids" => a.print_ids = true,
            "--temp" => a.sampler.temperature = num(&flag, value(&flag)?)?,
            "--top-k" => a.sampler.top_k = num(&flag, value(&flag)?)?,
            "--top-p" => a.sampler.top_p = num(&flag, value(&flag)?)?,
            "--min-p" => a.sampler.min_p = num(&flag, value(&flag)?)?,
            "--repeat-penalty" => a.sampler.repeat_penalty = num(&flag, value(&flag)?)?,
            "--seed" => a.sampler.seed = num(&flag, value(&flag)?)?,
            "--backend" => a.backend = value(&flag)?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    a.prompt = prompt.ok_or("give --prompt TEXT")?;
    if greedy {
        a.sampler = SamplerConfig::GREEDY;
    }
    Ok(a)
}

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let model = *SmolLm::model();
    let tok = model.tokenizer()?;
    // As llama.cpp tokenizes a prompt: BOS if the vocabulary asks for it, and special-token
    // text such as `<|im_start|>` becomes its single id.
    let prompt = tok.encode_vec(
        args.prompt.as_bytes(),
        EncodeOptions { add_special: true, parse_special: true },
    )?;
    // The KV cache and every activation live in this one buffer, sized by a generated const.
    let mut arena = vec![0u8; SmolLm::ARENA_BYTES];
    // SIMD kernels chosen for this CPU, one thread per core; bit-exact to the reference executor.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let choice: select::Choice = args.backend.parse()?;
    let chosen = select::select(choice, &model.weights, || select::cpu(None, threads))?;
    if let Some(notice) = &chosen.fallback {
        eprintln!("generate: {notice}");
    }
    let mut session = Session::new(model, chosen.backend, &mut arena)?;
    let mut sampler = Sampler::new(args.sampler);

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.print_ids {
        writeln!(out, "{}", join(&prompt))?;
    }
    let mut generated = Vec::new();
    let mut piece = vec![0u8; tok.max_token_len()];
    let mut text = Utf8Stream::new();
    let mut emit = |s: &str| -> std::io::Result<()> {
        out.write_all(s.as_bytes())?;
        out.flush()
    };
    let mut failed: Option<Box<dyn std::error::Error>> = None;
    let done = generate(&mut session, &mut sampler, &prompt, args.max_tokens, |id| {
        generated.push(id);
        if args.print_ids {
            return true;
        }
        // Control tokens are not rendered; text is emitted only in whole UTF-8 characters.
        let r = tok
            .piece(id, false, false, &mut piece)
            .map_err(Into::into)
            .and_then(|n| text.push(&piece[..n], &mut emit).map_err(Into::into));
        r.map_err(|e| failed = Some(e)).is_ok()
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if args.print_ids {
        writeln!(stdout.lock(), "{}", join(&generated))?;
    } else {
        text.finish(&mut emit)?;
        emit("\n")?;
    }
    if done.stop == StopReason::ContextFull {
        eprintln!("generate: stopped at the context limit ({} positions)", SmolLm::CONTEXT);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("generate: {e}");
            }
            eprintln!("usage: generate --prompt TEXT [--max-tokens N] [--greedy] [--print-ids] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--backend cpu|rknpu|auto]");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate: {e}");
            ExitCode::FAILURE
        }
    }
}
