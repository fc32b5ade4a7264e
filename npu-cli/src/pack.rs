//! `npu pack FILE --target T --quant Q -o DIR [--threads N]`: quantize and pack a GGUF for a
//! target; writes `DIR/model.blob`, `DIR/tensors.json` (descriptor table) and
//! `DIR/report.json` (per-tensor quality), and prints the report's one-line summary. The blob
//! is streamed to its file tensor by tensor, never held in memory whole.

use crate::CmdResult;
use npu_build::gguf::Gguf;
use npu_build::pack::{pack_to_dir, PackOptions};
use npu_build::quant::{parse_scheme, parse_target};
use std::path::PathBuf;

/// Arguments of `npu pack`.
#[derive(clap::Args)]
pub struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// Target chip profile: rk3588, rk3576, rk3566, rk3568 or cpu.
    #[arg(long)]
    target: String,
    /// Quantization scheme: fp16, int8, int8_hadamard, int4 or int4_hadamard.
    #[arg(long)]
    quant: String,
    /// Output directory (created if missing).
    #[arg(short, long)]
    output: PathBuf,
    /// Worker threads (default: available parallelism). The output does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> CmdResult {
    let target = parse_target(&args.target)?;
    let scheme = parse_scheme(&args.quant)?;
    let threads = crate::threads(args.threads);
    let g = Gguf::open(&args.file)?;
    let packed = pack_to_dir(&g, &PackOptions { target, scheme, threads }, &args.output)?;
    println!("{}", packed.report.summary_line());
    Ok(())
}
