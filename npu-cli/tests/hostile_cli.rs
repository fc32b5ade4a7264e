//! Hostile input at the `npu` command line: model files whose tensor shapes disagree with
//! their hyperparameters, sampler settings that are not numbers, prompts that do not fit.
//! Each must exit 1 with a message naming the problem — never a panic (exit 101).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn moby() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny/moby-tiny.gguf")
}

/// `models/tiny/moby-tiny.gguf` with the length of the 1-D tensor `name` set to `len` in the
/// tensor table, written to a temporary file.
fn moby_with_dim(name: &str, len: u64) -> PathBuf {
    let mut b = std::fs::read(moby()).unwrap();
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend(name.as_bytes());
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(b[at..at + 4], 1u32.to_le_bytes(), "{name} is not 1-D");
    b[at + 4..at + 12].copy_from_slice(&len.to_le_bytes());
    let p =
        std::env::temp_dir().join(format!("npu-hostile-{}-{name}-{len}.gguf", std::process::id()));
    std::fs::write(&p, b).unwrap();
    p
}

fn npu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_npu")).args(args).output().expect("cannot run npu")
}

/// Asserts a clean failure and returns stderr.
fn fails(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn pack_refuses_a_zero_length_norm() {
    let f = moby_with_dim("blk.1.ffn_norm.weight", 0);
    let out = std::env::temp_dir().join(format!("npu-hostile-out-{}", std::process::id()));
    let o = npu(&[
        "pack",
        f.to_str().unwrap(),
        "--target",
        "rk3588",
        "--quant",
        "int8",
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = fails(&o);
    assert!(
        err.contains(
            "tensor `blk.1.ffn_norm.weight` has shape [0], expected [128] (embedding_length 128)"
        ),
        "{err}"
    );
    assert!(!out.join("model.blob").exists());
    let _ = std::fs::remove_file(f);
}

#[test]
fn pack_and_run_refuse_a_short_norm() {
    let f = moby_with_dim("blk.1.ffn_norm.weight", 64);
    let out = std::env::temp_dir().join(format!("npu-hostile-out64-{}", std::process::id()));
    let fs = f.to_str().unwrap();
    let o = npu(&["pack", fs, "--target", "cpu", "--quant", "int4", "-o", out.to_str().unwrap()]);
    let err = fails(&o);
    assert!(err.contains("`blk.1.ffn_norm.weight` has shape [64], expected [128]"), "{err}");
    let o = npu(&["run", fs, "--quant", "int8", "--prompt-ids", "1,2", "--max-tokens", "1"]);
    let err = fails(&o);
    assert!(err.contains("`blk.1.ffn_norm.weight` has shape [64], expected [128]"), "{err}");
    let _ = std::fs::remove_file(f);
}

fn run_moby(extra: &[&str]) -> Output {
    let m = moby();
    let mut args = vec!["run", m.to_str().unwrap(), "--quant", "int8", "--max-tokens", "2"];
    args.extend_from_slice(extra);
    npu(&args)
}

#[test]
fn run_refuses_sampler_settings_that_are_not_numbers() {
    for (flag, value, want) in [
        ("--temp", "nan", "sampler: temperature NaN is not a finite number"),
        ("--top-p", "inf", "sampler: top_p inf is not a finite number"),
        ("--min-p", "-inf", "sampler: min_p -inf is not a finite number"),
        ("--repeat-penalty", "0", "sampler: repeat_penalty 0 must be a positive number"),
    ] {
        let o = run_moby(&["--prompt-ids", "1,2", &format!("{flag}={value}")]);
        let err = fails(&o);
        assert!(err.contains(want), "{flag} {value}: {err}");
    }
}

#[test]
fn run_refuses_ids_outside_the_vocabulary_and_prompts_past_the_context() {
    let err = fails(&run_moby(&["--prompt-ids", "1,1024,2"]));
    assert!(
        err.contains("prompt token id 1024 is outside the model's vocabulary (0..1024)"),
        "{err}"
    );
    let err = fails(&run_moby(&["--prompt-ids", "1,2,3,4,5", "--ctx", "4"]));
    assert!(err.contains("the prompt is 5 tokens long but the context holds 4"), "{err}");
    // A prompt that fits still runs.
    let o = run_moby(&["--prompt-ids", "1,2,3", "--ctx", "4", "--greedy", "--print-ids"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
