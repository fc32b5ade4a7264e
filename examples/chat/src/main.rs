//! `chat`: an interactive ChatML conversation with a model compiled into this binary.
//!
//! ```sh
//! source scripts/env.sh && scripts/fetch-models.sh smollm2      # NPU_CACHE, the GGUF
//! cd examples && cargo run --release -p chat -- --system "You are a helpful assistant."
//! ```
//!
//! Each line on stdin is one user message; the reply streams to stdout; end with EOF (Ctrl-D).
//! The conversation stays in the KV cache: a new turn evaluates only its own tokens. When the
//! context is full the conversation starts over (said on stderr). Options: `--system TEXT`,
//! `--max-tokens N` per reply (default 256), `--greedy`, `--temp T`, `--top-k K`, `--top-p P`,
//! `--min-p P`, `--repeat-penalty R`, `--seed S`, `--backend cpu|rknpu|auto` (the
//! NPU through librknnrt, `NPU_RKNN_LIB`; default cpu), and `--print-ids` (per turn, the ids fed
//! and the ids generated, one line each; tests/examples/ compares them with `npu run`).

use npu_model_macro::npu_model;
use npu_runtime::generate::{chatml, chatml_next_turn, generate, Message, StopReason};
use npu_runtime::model::{ModelError, Session};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::select;
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer, Utf8Stream};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

/// SmolLM2-135M-Instruct, re-quantized at build time for the RK3588's int8 pipeline with a
/// randomized Hadamard rotation; 2,048 positions of conversation.
#[npu_model(
    path = "${NPU_CACHE}/smollm2-135m-instruct-q4_1.gguf",
    target = "rk3588",
    quant = "int8_hadamard",
    context = 2048
)]
pub struct SmolLm;

/// Command-line options.
struct Args {
    system: Option<String>,
    max_tokens: usize,
    print_ids: bool,
    sampler: SamplerConfig,
    backend: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        system: None,
        max_tokens: 256,
        print_ids: false,
        sampler: SamplerConfig::DEFAULT,
        backend: "cpu".into(),
    };
    let mut greedy = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: `{v}` is not a valid number"))
        }
        match flag.as_str() {
            "--system" => a.system = Some(value("--system")?),
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
    if greedy {
        a.sampler = SamplerConfig::GREEDY;
    }
    Ok(a)
}

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

/// Text into a buffer sized by a first call that only measures.
fn render(f: impl Fn(&mut [u8]) -> Result<usize, npu_runtime::generate::BufferTooSmall>) -> String {
    let need = f(&mut []).unwrap_or_else(|e| e.need);
    let mut buf = vec![0u8; need];
    let n = f(&mut buf).unwrap_or(0);
    buf.truncate(n);
    // Every piece is a &str, so the concatenation is UTF-8.
    String::from_utf8(buf).unwrap_or_default()
}

/// The ids that open a conversation: system message (if any), the user's message, the
/// assistant's turn opener; BOS as the vocabulary asks.
fn first_turn(
    tok: &Tokenizer<'_>,
    system: Option<&str>,
    user: &str,
) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
    let mut msgs = Vec::new();
    if let Some(s) = system {
        msgs.push(Message { role: "system", content: s });
    }
    msgs.push(Message { role: "user", content: user });
    let text = render(|b| chatml(&msgs, true, b));
    Ok(tok.encode_vec(text.as_bytes(), EncodeOptions { add_special: true, parse_special: true })?)
}

/// What is left over from the previous reply, which the next turn's ids must follow.
enum After {
    /// Nothing: a new conversation.
    Start,
    /// The reply ended at its end-of-turn token, which was not evaluated; the next turn's
    /// text starts by closing the turn.
    EndOfTurn,
    /// The reply was cut (token limit); its last token was emitted but not yet evaluated.
    Cut(u32),
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let model = *SmolLm::model();
    let tok = model.tokenizer()?;
    let mut arena = vec![0u8; SmolLm::ARENA_BYTES];
    // SIMD kernels chosen for this CPU, one thread per core; bit-exact to the reference executor.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let choice: select::Choice = args.backend.parse()?;
    let chosen = select::select(choice, &model.weights, || select::cpu(None, threads))?;
    if let Some(notice) = &chosen.fallback {
        eprintln!("chat: {notice}");
    }
    let mut session = Session::new(model, chosen.backend, &mut arena)?;
    let mut sampler = Sampler::new(args.sampler);
    let interactive = std::io::stdin().is_terminal();
    let mut piece = vec![0u8; tok.max_token_len()];
    let mut after = After::Start;
    let stdout = std::io::stdout();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            print!("> ");
            std::io::stdout().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let user = line?;
        let ids = match after {
            After::Start => first_turn(&tok, args.system.as_deref(), &user)?,
            After::EndOfTurn | After::Cut(_) => {
                let text = render(|b| chatml_next_turn(&user, b));
                let mut ids = Vec::new();
                if let After::Cut(last) = after {
                    ids.push(last);
                }
                ids.extend(tok.encode_vec(
                    text.as_bytes(),
                    EncodeOptions { add_special: false, parse_special: true },
                )?);
                ids
            }
        };
        // A turn that does not fit after the conversation so far starts a new one.
        let ids = if session.pos() + ids.len() >= SmolLm::CONTEXT as usize && session.pos() > 0 {
            eprintln!(
                "chat: context full ({} positions); starting a new conversation",
                SmolLm::CONTEXT
            );
            session.reset();
            first_turn(&tok, args.system.as_deref(), &user)?
        } else {
            ids
        };
        if args.print_ids {
            writeln!(stdout.lock(), "{}", join(&ids))?;
        }
        let mut reply = Vec::new();
        let mut text = Utf8Stream::new();
        let mut emit = |s: &str| -> std::io::Result<()> {
            let mut o = stdout.lock();
            o.write_all(s.as_bytes())?;
            o.flush()
        };
        let mut failed: Option<Box<dyn std::error::Error>> = None;
        let res = generate(&mut session, &mut sampler, &ids, args.max_tokens, |id| {
            reply.push(id);
            if args.print_ids {
                return true;
            }
            let r = tok
                .piece(id, false, false, &mut piece)
                .map_err(Into::into)
                .and_then(|n| text.push(&piece[..n], &mut emit).map_err(Into::into));
            r.map_err(|e| failed = Some(e)).is_ok()
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let done = match res {
            Ok(d) => d,
            Err(ModelError::ContextFull { .. }) => {
                eprintln!("chat: the message does not fit in {} positions", SmolLm::CONTEXT);
                session.reset();
                after = After::Start;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if args.print_ids {
            writeln!(stdout.lock(), "{}", join(&reply))?;
        } else {
            text.finish(&mut emit)?;
            emit("\n")?;
        }
        after = match done.stop {
            StopReason::EndToken(_) => After::EndOfTurn,
            StopReason::MaxTokens | StopReason::Callback => {
                reply.last().map_or(After::EndOfTurn, |&t| After::Cut(t))
            }
            StopReason::ContextFull => {
                eprintln!(
                    "chat: context full ({} positions); starting a new conversation",
                    SmolLm::CONTEXT
                );
                session.reset();
                After::Start
            }
        };
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("chat: {e}");
            }
            eprintln!("usage: chat [--system TEXT] [--max-tokens N] [--greedy] [--print-ids] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--backend cpu|rknpu|auto]");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}
