//! `npu`: inspect, dequantize, pack, run, evaluate and benchmark GGUF models from the command line.
//!
//! One module per subcommand, each with an `Args` (clap) and a `run`. Adding a subcommand is a
//! module, a variant of [`Command`] and a match arm in [`main`].

mod backend;
mod bench;
mod dequant;
mod doctor;
mod eval;
mod inspect;
mod pack;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Result of a subcommand: any error is printed as `npu: <message>`.
type CmdResult = Result<(), Box<dyn std::error::Error>>;

/// Threads a command uses: `--threads` if given, else one per core; at least 1.
fn threads(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
}

#[derive(Parser)]
#[command(
    name = "npu",
    version,
    about = "Inspect, dequantize, pack, run, evaluate and benchmark GGUF models with npu-model's packer and runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show architecture, hyperparameters, tokenizer summary and the tensor table of a GGUF file.
    Inspect(inspect::Args),
    /// Write one tensor as raw little-endian f32 in ggml element order (ne0 fastest).
    Dequant(dequant::Args),
    /// Quantize and pack a GGUF for a target: model.blob, tensors.json, report.json.
    Pack(pack::Args),
    /// Pack a GGUF in memory and generate from a prompt, a ChatML turn or token ids: streamed
    /// text, greedy or sampled, on the fast CPU backend (the packed blob's numbers).
    Run(run::RunArgs),
    /// Pack a GGUF in memory and write the next-token logits of given ids (raw f32).
    Logits(run::LogitsArgs),
    /// Check a board for the NPU path (device, driver, librknnrt, governors, big cores,
    /// ulimit -n) and print the fix for each miss.
    Doctor(doctor::Args),
    /// Tokens/s of prompt processing (ppN, one batch from an empty cache) and text generation
    /// (tgN, one token per step) as llama-bench measures them, on a model packed in memory.
    Bench(bench::Args),
    /// Perplexity, KL divergence and top-1 agreement of a scheme against the fp16 path.
    Eval(eval::EvalArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; usage errors exit 1 like every other error.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Dequant(args) => dequant::run(args),
        Command::Pack(args) => pack::run(args),
        Command::Run(args) => run::run(args),
        Command::Logits(args) => run::logits(args),
        Command::Eval(args) => eval::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Doctor(args) => doctor::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("npu: {e}");
            ExitCode::from(1)
        }
    }
}
