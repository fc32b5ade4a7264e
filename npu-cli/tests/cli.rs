//! The `npu` binary end to end, on the committed fuzz seed GGUFs (tiny files written by
//! gguf-py) and, when present, the real SmolLM2 model.

use npu_build::gguf::Gguf;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../npu-build/fuzz/corpus/seed").join(name)
}

fn npu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_npu")).args(args).output().expect("cannot run npu")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("npu-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "npu failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn inspect_text() {
    let f = seed("llama-q4");
    let out = stdout(&npu(&["inspect", f.to_str().unwrap()]));
    for want in [
        "architecture: llama",
        "GGUF v3, alignment 32",
        "head_count_kv          2",
        "rope_style             normal",
        "tokens                 4",
        "token_embd.weight",
        "[32, 4]",
        "Q8_0",
        "all         6 tensors",
    ] {
        assert!(out.contains(want), "inspect output lacks {want:?}:\n{out}");
    }
}

#[test]
fn inspect_json_is_complete_and_deterministic() {
    let f = seed("kquants");
    let a = stdout(&npu(&["inspect", "--json", f.to_str().unwrap()]));
    let b = stdout(&npu(&["inspect", "--json", f.to_str().unwrap()]));
    assert_eq!(a, b);
    let j: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(j["architecture"], "qwen2");
    assert_eq!(j["alignment"], 64);
    // No hyperparameter keys in this file: the report says why instead of failing.
    assert!(j["hparams"]["error"].as_str().unwrap().contains("qwen2.context_length"));
    let tensors = j["tensors"].as_array().unwrap();
    let names: Vec<&str> = tensors.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["k.q2_k", "k.q3_k", "k.q4_k", "k.q5_k", "k.q6_k"]);
    assert_eq!(tensors[2]["type"], "Q4_K");
    assert_eq!(tensors[2]["bytes"], 144);
    assert_eq!(tensors[2]["shape"], serde_json::json!([256, 1]));
    assert_eq!(j["totals"]["bytes"], 84 + 110 + 144 + 176 + 210);
    // Keys print sorted.
    let top: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = top.clone();
    sorted.sort_unstable();
    assert_eq!(top, sorted);
}

#[test]
fn dequant_writes_f32_in_chunks() {
    let f = seed("floats");
    let g = Gguf::open(&f).unwrap();
    for (tensor, chunk) in
        [("f32", "3"), ("f32", "1000"), ("f16", "7"), ("bf16", "1"), ("scalar", "4")]
    {
        let out = tmp(&format!("{tensor}-{chunk}.f32"));
        let o = npu(&[
            "dequant",
            f.to_str().unwrap(),
            tensor,
            "-o",
            out.to_str().unwrap(),
            "--chunk-values",
            chunk,
        ]);
        stdout(&o);
        let want = g.dequantize(g.tensor(tensor).unwrap()).unwrap();
        assert_eq!(read_f32(&out), want, "{tensor} with chunks of {chunk}");
    }
    // F32 output is the file's own bytes.
    let out = tmp("raw.f32");
    stdout(&npu(&["dequant", f.to_str().unwrap(), "f32", "-o", out.to_str().unwrap()]));
    assert_eq!(std::fs::read(&out).unwrap(), g.tensor_data(g.tensor("f32").unwrap()));
    // `-o -` writes to stdout.
    let o = npu(&["dequant", f.to_str().unwrap(), "f16", "-o", "-"]);
    assert!(o.status.success());
    assert_eq!(o.stdout.len(), 14 * 4);
}

#[test]
fn errors_exit_1_with_a_message() {
    let iq = seed("iquants");
    let o =
        npu(&["dequant", iq.to_str().unwrap(), "iq2_xxs", "-o", tmp("x.f32").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!tmp("x.f32").exists(), "a refused tensor left an output file");
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(
        e.starts_with("npu: ")
            && e.contains("iq2_xxs")
            && e.contains("IQ2_XXS")
            && e.contains("supported"),
        "{e}"
    );

    let o = npu(&[
        "dequant",
        iq.to_str().unwrap(),
        "no.such.tensor",
        "-o",
        tmp("y.f32").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8(o.stderr).unwrap().contains("no tensor named 'no.such.tensor'"));

    let bad = tmp("bad.gguf");
    std::fs::write(&bad, b"GGUF\x01\x00\x00\x00").unwrap();
    let o = npu(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(e.starts_with(&format!("npu: {}: unsupported GGUF version 1", bad.display())), "{e}");

    let o = npu(&["inspect"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn dequant_real_model_tensor_when_present() {
    let cache = std::env::var_os("NPU_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/npu-model")))
        .unwrap();
    let f = cache.join("smollm2-135m-instruct-q4_1.gguf");
    if !f.exists() {
        assert_ne!(
            std::env::var("NPU_REQUIRE_MODELS").as_deref(),
            Ok("1"),
            "{} missing",
            f.display()
        );
        eprintln!("note: skipping, {} is missing", f.display());
        return;
    }
    let g = Gguf::open(&f).unwrap();
    let t = g.tensor("blk.0.ffn_down.weight").unwrap();
    let out = tmp("ffn_down.f32");
    // 1536 x 576 values in chunks of 100 rows (the last one short).
    stdout(&npu(&[
        "dequant",
        f.to_str().unwrap(),
        t.name(),
        "-o",
        out.to_str().unwrap(),
        "--chunk-values",
        "153600",
    ]));
    let got = read_f32(&out);
    let want = g.dequantize(t).unwrap();
    assert_eq!(got.len(), 1536 * 576);
    assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
}
