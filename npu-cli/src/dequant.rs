//! `npu dequant FILE TENSOR -o OUT`: one tensor as raw little-endian f32.

use crate::CmdResult;
use npu_build::gguf::Gguf;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `npu dequant`.
#[derive(clap::Args)]
pub struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    tensor: String,
    /// Output file (`-` for stdout): raw little-endian f32, ne0 fastest, no header.
    #[arg(short, long)]
    output: PathBuf,
    /// Values dequantized per chunk (whole rows; at least one row). Hidden: for tests.
    #[arg(long, hide = true, default_value_t = CHUNK_VALUES)]
    chunk_values: u64,
}

/// f32 values dequantized per chunk: bounds memory for big tensors (16 MiB of f32).
const CHUNK_VALUES: u64 = 4 << 20;

pub fn run(args: Args) -> CmdResult {
    let g = Gguf::open(&args.file)?;
    let t = g.tensor(&args.tensor).ok_or_else(|| {
        format!(
            "{}: no tensor named '{}' ({} tensors; `npu inspect` lists them)",
            g.name(),
            args.tensor,
            g.tensors().len()
        )
    })?;
    // Fail before creating the output file, so a refused tensor leaves nothing behind.
    g.check_dequantizable(t)?;
    let to_stdout = args.output.as_os_str() == "-";
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        let f = std::fs::File::create(&args.output)
            .map_err(|e| format!("{}: cannot create output file: {e}", args.output.display()))?;
        Box::new(f)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let write_err = |e: std::io::Error| format!("{}: cannot write: {e}", args.output.display());

    // Whole rows per chunk (at least one: a single row longer than the chunk is done whole).
    let row_len = t.row_len();
    let rows_per_chunk = args.chunk_values.checked_div(row_len).unwrap_or(t.n_rows()).max(1);
    let mut values: Vec<f32> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut row = 0u64;
    while row < t.n_rows() {
        let n = rows_per_chunk.min(t.n_rows() - row);
        let len = usize::try_from(n * row_len).map_err(|_| {
            format!("{}: tensor '{}' rows too long for this platform", g.name(), t.name())
        })?;
        values.resize(len, 0.0);
        g.dequantize_rows(t, row, n, &mut values)?;
        bytes.clear();
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&bytes).map_err(write_err)?;
        row += n;
    }
    out.flush().map_err(write_err)?;
    if !to_stdout {
        eprintln!(
            "{}: {} values ({} {:?}) written to {}",
            t.name(),
            t.n_elements(),
            t.ty(),
            t.dims(),
            args.output.display()
        );
    }
    Ok(())
}
