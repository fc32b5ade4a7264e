//! Hostile model files through the whole build path: the two shape faults found by fuzzing
//! `models/tiny/moby-tiny.gguf`, and a seeded mutation run of the fuzz targets' generator
//! (tests/hostile/) so a regression shows in CI without a fuzzer.

mod hostile;

use arbitrary::Unstructured;
use hostile::Reached;
use npu_build::gguf::Gguf;
use npu_build::pack::{pack, PackOptions, SeededRng};
use npu_runtime::format::Scheme;
use npu_runtime::target::Target;
use std::path::Path;

/// `models/tiny/moby-tiny.gguf` with the `ne0` of `tensor` (a 1-D tensor) replaced by `len`.
/// The tensor table is edited in place, so every other offset stays valid.
pub fn moby_with_dim(tensor: &str, len: u64) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny/moby-tiny.gguf");
    let mut b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut key = (tensor.len() as u64).to_le_bytes().to_vec();
    key.extend(tensor.as_bytes());
    let at = b.windows(key.len()).position(|w| w == key).expect("tensor not in the table");
    let dims = at + key.len();
    assert_eq!(b[dims..dims + 4], 1u32.to_le_bytes(), "{tensor} is not 1-D");
    b[dims + 4..dims + 12].copy_from_slice(&len.to_le_bytes());
    b
}

fn pack_err(bytes: Vec<u8>) -> String {
    let g = Gguf::from_vec("moby-tiny-edited.gguf", bytes).expect("the reader accepts the edit");
    let opts = PackOptions {
        target: Target::by_name("rk3588").unwrap(),
        scheme: Scheme::Int8,
        threads: 2,
    };
    match pack(&g, &opts) {
        Ok(_) => panic!("packed a model with a wrong tensor shape"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn zero_length_norm_is_refused_before_packing() {
    let e = pack_err(moby_with_dim("blk.1.ffn_norm.weight", 0));
    assert_eq!(
        e,
        "moby-tiny-edited.gguf: tensor `blk.1.ffn_norm.weight` has shape [0], expected [128] (embedding_length 128)"
    );
}

#[test]
fn short_norm_is_refused_before_packing() {
    let e = pack_err(moby_with_dim("blk.1.ffn_norm.weight", 64));
    assert!(e.contains("`blk.1.ffn_norm.weight` has shape [64], expected [128]"), "{e}");
}

#[test]
fn every_problem_is_listed() {
    // Two edits: both named in one error.
    let mut b = moby_with_dim("blk.0.attn_norm.weight", 127);
    let edited = moby_with_dim("output_norm.weight", 0);
    let (name, len) = ("output_norm.weight", 0u64);
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend(name.as_bytes());
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    b[at + 4..at + 12].copy_from_slice(&len.to_le_bytes());
    assert_eq!(b.len(), edited.len());
    let e = pack_err(b);
    assert!(e.contains("2 tensor problems"), "{e}");
    assert!(e.contains("`blk.0.attn_norm.weight` has shape [127], expected [128]"), "{e}");
    assert!(e.contains("`output_norm.weight` has shape [0], expected [128]"), "{e}");
}

/// Cases of the seeded mutation run (about 4 s in a release build on a loaded 2-core machine).
const CASES: u64 = 5000;

#[test]
fn seeded_hostile_models_give_errors_not_panics() {
    let mut reached = std::collections::BTreeMap::new();
    for case in 0..CASES {
        let mut rng = SeededRng::new(0x4057_11e0 ^ case);
        let len = (rng.next_u64() % 160) as usize;
        let input: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let mut u = Unstructured::new(&input);
        let Ok(model) = hostile::model_bytes(&mut u) else { continue };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            hostile::exercise(&model, &mut u).unwrap_or(Reached::InputShort)
        }));
        match r {
            Ok(r) => *reached.entry(r).or_insert(0u32) += 1,
            Err(_) => panic!("case {case} (input {input:02x?}) panicked"),
        }
    }
    eprintln!("hostile models: {reached:?}");
    // The run means something only if it both refuses and runs models.
    assert!(
        reached.get(&Reached::PackRefused).copied().unwrap_or(0) > CASES as u32 / 20,
        "{reached:?}"
    );
    assert!(reached.get(&Reached::Ran).copied().unwrap_or(0) > CASES as u32 / 20, "{reached:?}");
}

#[test]
fn missing_and_unused_tensors_are_named() {
    // Rename a tensor in place (same length): the model lacks the real name and carries one
    // the architecture does not read.
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny/moby-tiny.gguf");
    let mut b = std::fs::read(p).unwrap();
    let at = b.windows(21).position(|w| w == b"blk.3.ffn_gate.weight").unwrap();
    b[at..at + 21].copy_from_slice(b"blk.3.ffn_gate.weighx");
    let e = pack_err(b);
    assert!(
        e.contains("tensor `blk.3.ffn_gate.weight` is missing (expected shape [128, 384])"),
        "{e}"
    );
    assert!(
        e.contains("tensor `blk.3.ffn_gate.weighx` [128, 384] is not read by this architecture"),
        "{e}"
    );
}

#[test]
fn a_directory_or_missing_file_is_named_not_mapped() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let Err(e) = Gguf::open(&dir).map(drop) else { panic!("a directory is not a GGUF") };
    let e = e.to_string();
    assert!(e.contains(&dir.display().to_string()) && e.contains("a directory"), "{e}");
    let gone = dir.join("no-such-model.gguf");
    let Err(e) = Gguf::open(&gone).map(drop) else { panic!("a missing file is not a GGUF") };
    let e = e.to_string();
    assert!(e.contains("no-such-model.gguf") && e.contains("cannot open"), "{e}");
}
