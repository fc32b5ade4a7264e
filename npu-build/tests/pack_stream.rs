//! The streaming packer: a small synthetic Llama GGUF (written here with `GgufWriter`, random
//! Q4_0/Q8_0/F16/F32 tensors) packed to a file through `pack_to_dir` gives exactly what the
//! in-memory `pack` gives (blob, `tensors.json`, `report.json`, digests), the blob reaches the
//! writer while later tensors are still being read, and a failure leaves no file behind.

use npu_build::gguf::{GgmlType, Gguf, GgufWriter};
use npu_build::pack::{
    pack, pack_to, pack_to_dir, PackError, PackOptions, SeededRng, SourceTensor, TensorEntry,
    TensorSource,
};
use npu_runtime::exec::rotate;
use npu_runtime::format::Scheme;
use npu_runtime::target::Target;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

const D: u64 = 128;
const FF: u64 = 256;
const VOCAB: u64 = 320;
const BLOCKS: u64 = 2;

/// Random tensor bytes of type `ty` for `n` values (`n` a multiple of 32 for block types).
fn random_bytes(rng: &mut SeededRng, ty: GgmlType, n: u64) -> Vec<u8> {
    let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
    let mut out = Vec::new();
    match ty {
        GgmlType::F32 => (0..n).for_each(|_| out.extend((1.0 + 0.1 * rng.normal()).to_le_bytes())),
        GgmlType::F16 => (0..n).for_each(|_| out.extend(f16(0.05 * rng.normal()))),
        GgmlType::Q4_0 | GgmlType::Q8_0 => {
            let per_block = if ty == GgmlType::Q4_0 { 16 } else { 32 };
            for _ in 0..n / 32 {
                out.extend(f16(0.004 * (0.5 + rng.uniform())));
                out.extend((0..per_block).map(|_| rng.next_u64() as u8));
            }
        }
        _ => unreachable!("not used here"),
    }
    out
}

/// A two-block Llama in GGUF bytes; `tied`: no `output.weight`.
fn synthetic_llama(tied: bool) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.kv_str("general.architecture", "llama");
    for (k, v) in [
        ("context_length", 256),
        ("embedding_length", D as u32),
        ("block_count", BLOCKS as u32),
        ("feed_forward_length", FF as u32),
        ("attention.head_count", 4),
        ("attention.head_count_kv", 2),
    ] {
        w.kv_u32(&format!("llama.{k}"), v);
    }
    w.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    // Byte-level BPE: GPT-2's byte characters for printable ASCII, placeholders for the rest.
    let tokens: Vec<String> = (0..VOCAB)
        .map(|i| match i {
            33..=126 => char::from(i as u8).to_string(),
            _ => format!("<t{i}>"),
        })
        .collect();
    w.kv_str("tokenizer.ggml.model", "gpt2");
    w.kv_str("tokenizer.ggml.pre", "gpt-2");
    w.kv_strs("tokenizer.ggml.tokens", &tokens);
    w.kv_u32("tokenizer.ggml.eos_token_id", 300);
    let kv = D / 2;
    let mut tensors: Vec<(String, Vec<u64>, GgmlType)> =
        vec![("token_embd.weight".into(), vec![D, VOCAB], GgmlType::Q4_0)];
    for b in 0..BLOCKS {
        let t = |n: &str, dims: Vec<u64>, ty| (format!("blk.{b}.{n}.weight"), dims, ty);
        tensors.extend([
            t("attn_norm", vec![D], GgmlType::F32),
            t("attn_q", vec![D, D], GgmlType::Q8_0),
            t("attn_k", vec![D, kv], GgmlType::Q8_0),
            t("attn_v", vec![D, kv], GgmlType::Q4_0),
            t("attn_output", vec![D, D], GgmlType::F16),
            t("ffn_norm", vec![D], GgmlType::F32),
            t("ffn_gate", vec![D, FF], GgmlType::Q4_0),
            t("ffn_up", vec![D, FF], GgmlType::Q8_0),
            t("ffn_down", vec![FF, D], GgmlType::F16),
        ]);
    }
    tensors.push(("output_norm.weight".into(), vec![D], GgmlType::F32));
    if !tied {
        tensors.push(("output.weight".into(), vec![D, VOCAB], GgmlType::Q8_0));
    }
    let mut rng = SeededRng::new(0x5eed_57ea);
    for (name, dims, ty) in &tensors {
        let data = random_bytes(&mut rng, *ty, dims.iter().product());
        w.tensor(name, dims, *ty, data);
    }
    w.to_bytes()
}

fn opts(target: &str, scheme: Scheme, threads: usize) -> PackOptions {
    PackOptions { target: Target::by_name(target).unwrap(), scheme, threads }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("npu-pack-stream-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn streamed_pack_equals_the_in_memory_pack() {
    for tied in [false, true] {
        let g = Gguf::from_vec("synthetic-llama.gguf", synthetic_llama(tied)).unwrap();
        for (target, scheme) in [
            ("rk3588", Scheme::Int8Hadamard),
            ("rk3588", Scheme::Int4Hadamard),
            ("cpu", Scheme::Fp16),
            ("rk3576", Scheme::Int8),
        ] {
            let what = format!("{target} {} tied={tied}", scheme.name());
            let mem = pack(&g, &opts(target, scheme, 2)).unwrap();
            let dir = temp_dir(&format!("{target}-{}-{tied}", scheme.name()));
            let table = pack_to_dir(&g, &opts(target, scheme, 3), &dir).unwrap();
            let blob = std::fs::read(dir.join("model.blob")).unwrap();
            assert!(blob == mem.blob, "{what}: blob");
            assert_eq!(table.blob_len, mem.blob.len() as u64, "{what}");
            assert_eq!(table.blob_sha256[..], Sha256::digest(&mem.blob)[..], "{what}");
            assert_eq!(table.blob_fnv1a64, rotate::fnv1a64(&mem.blob), "{what}");
            assert_eq!(table.tensors, mem.tensors, "{what}");
            let json = std::fs::read_to_string(dir.join("tensors.json")).unwrap();
            assert_eq!(json, mem.tensors_json(), "{what}: tensors.json");
            let report = std::fs::read_to_string(dir.join("report.json")).unwrap();
            assert_eq!(report, mem.report.to_json(), "{what}: report.json");
            let names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert_eq!(names.len(), 3, "{what}: no temporary files left: {names:?}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// A writer counting the bytes it received.
struct Counting<'a>(&'a AtomicU64);

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::SeqCst);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A source that notes how many blob bytes had been written when its last tensor was first
/// read (`at_last`, starting at `u64::MAX`), and can fail on one tensor.
struct Watched<'a> {
    inner: &'a Gguf<'a>,
    written: &'a AtomicU64,
    at_last: AtomicU64,
    fail: Option<usize>,
}

impl TensorSource for Watched<'_> {
    fn tensors(&self) -> Vec<SourceTensor> {
        TensorSource::tensors(self.inner)
    }
    fn check_model(&self) -> Result<(), npu_build::shapes::ShapeError> {
        self.inner.check_model()
    }
    fn read_rows(&self, i: usize, r0: u64, n: u64, out: &mut [f32]) -> Result<(), String> {
        if Some(i) == self.fail {
            return Err("unreadable on purpose".into());
        }
        if i + 1 == self.inner.tensors().len() {
            let w = self.written.load(Ordering::SeqCst);
            self.at_last.fetch_min(w, Ordering::SeqCst);
        }
        TensorSource::read_rows(self.inner, i, r0, n, out)
    }
}

fn end(e: &TensorEntry) -> u64 {
    e.shards.iter().map(|s| s.data).chain([e.scales]).map(|r| r.offset + r.len).max().unwrap()
}

#[test]
fn the_blob_streams_while_tensors_are_read() {
    let g = Gguf::from_vec("synthetic-llama.gguf", synthetic_llama(false)).unwrap();
    let written = AtomicU64::new(0);
    let src =
        Watched { inner: &g, written: &written, at_last: AtomicU64::new(u64::MAX), fail: None };
    let (_, table) =
        pack_to(&src, &opts("rk3588", Scheme::Int8Hadamard, 2), Counting(&written)).unwrap();
    assert_eq!(written.load(Ordering::SeqCst), table.blob_len);
    // When the last tensor is first read, the one before it is with the writer, which has
    // written everything up to the end of the tensor before that.
    let n = table.tensors.len();
    let before = end(&table.tensors[n - 3]);
    let seen = src.at_last.load(Ordering::SeqCst);
    assert!(seen >= before, "{seen} bytes written before the last tensor, expected {before}");
}

#[test]
fn a_failed_pack_leaves_no_blob() {
    let g = Gguf::from_vec("synthetic-llama.gguf", synthetic_llama(false)).unwrap();
    let written = AtomicU64::new(0);
    let fail = g.tensors().len() - 2;
    let src = Watched {
        inner: &g,
        written: &written,
        at_last: AtomicU64::new(u64::MAX),
        fail: Some(fail),
    };
    let dir = temp_dir("fail");
    let e = pack_to_dir(&src, &opts("rk3588", Scheme::Int8, 2), &dir).unwrap_err();
    assert!(
        matches!(&e, PackError::Source { tensor, .. } if tensor == "output_norm.weight"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left in {}", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
}
