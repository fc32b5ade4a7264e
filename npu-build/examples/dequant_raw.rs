//! Dequantizes raw ggml block bytes from files, for the gguf-py oracle tests
//! (`tests/oracle/`): it exercises `npu_build::dequant::dequantize` without the GGUF reader.
//!
//! Reads jobs from stdin, one per line: `TYPE N_ELEMENTS FILE OFFSET`, meaning "the
//! `N_ELEMENTS` values of ggml type `TYPE` (e.g. `Q4_K`) whose blocks start at byte `OFFSET`
//! of `FILE`". Writes each job's values to stdout as raw little-endian f32, jobs back to back
//! in input order. All of stdin is read before anything is written, so a caller can write the
//! whole job list and then read. Any error is reported on stderr with exit status 1.
//!
//! ```text
//! echo "Q4_0 64 blocks.bin 0" | cargo run --release -p npu-build --example dequant_raw > out.f32
//! ```

use npu_build::dequant::dequantize;
use npu_build::gguf::GgmlType;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

fn main() {
    if let Err(e) = run() {
        eprintln!("dequant_raw: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut jobs = String::new();
    io::stdin().read_to_string(&mut jobs).map_err(|e| format!("reading stdin: {e}"))?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut files: HashMap<String, File> = HashMap::new();
    let (mut src, mut dst, mut bytes) = (Vec::<u8>::new(), Vec::<f32>::new(), Vec::<u8>::new());
    for (n, line) in jobs.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("job {} ({line:?})", n + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        let [ty, count, path, offset] = f[..] else {
            return Err(format!("{}: want `TYPE N_ELEMENTS FILE OFFSET`", at()));
        };
        let ty = GgmlType::from_name(ty).ok_or_else(|| format!("{}: unknown type", at()))?;
        let count: usize = count.parse().map_err(|e| format!("{}: count: {e}", at()))?;
        let offset: u64 = offset.parse().map_err(|e| format!("{}: offset: {e}", at()))?;
        let len = ty
            .bytes_for(count as u64)
            .ok_or_else(|| format!("{}: {count} is not whole {ty} blocks", at()))?;
        let file = match files.get_mut(path) {
            Some(file) => file,
            None => {
                let file = File::open(path).map_err(|e| format!("{}: open: {e}", at()))?;
                files.entry(path.to_string()).or_insert(file)
            }
        };
        src.resize(len as usize, 0);
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut src))
            .map_err(|e| format!("{}: read {len} bytes at {offset}: {e}", at()))?;
        dst.resize(count, 0.0);
        dequantize(ty, &src, &mut dst).map_err(|e| format!("{}: {e}", at()))?;
        bytes.clear();
        bytes.extend(dst.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&bytes).map_err(|e| format!("writing stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("writing stdout: {e}"))
}
