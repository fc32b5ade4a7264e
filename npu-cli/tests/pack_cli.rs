//! `npu pack` end to end: twice with different thread counts gives identical bytes.

use std::path::PathBuf;
use std::process::Command;

fn smollm2() -> Option<PathBuf> {
    let dir = std::env::var_os("NPU_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/npu-model")))?;
    let p = dir.join("smollm2-135m-instruct-q4_1.gguf");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("NPU_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!("model {} missing and NPU_REQUIRE_MODELS=1", p.display());
    }
    eprintln!("note: skipping, model {} not found (run scripts/fetch-models.sh)", p.display());
    None
}

fn run_pack(model: &PathBuf, out: &PathBuf, threads: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_npu"))
        .args(["pack"])
        .arg(model)
        .args(["--target", "rk3588", "--quant", "int4_hadamard", "--threads", threads, "-o"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "npu pack failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn pack_is_identical_across_thread_counts() {
    let Some(model) = smollm2() else { return };
    let tmp = std::env::temp_dir().join(format!("npu-pack-cli-{}", std::process::id()));
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    let sa = run_pack(&model, &a, "1");
    let sb = run_pack(&model, &b, "3");
    assert_eq!(sa, sb);
    assert!(sa.starts_with("rk3588 int4_hadamard: "), "{sa}");
    for f in ["model.blob", "tensors.json", "report.json"] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(!x.is_empty() && x == y, "{f} differs");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn unknown_quant_lists_valid_names() {
    let o = Command::new(env!("CARGO_BIN_EXE_npu"))
        .args(["pack", "x.gguf", "--target", "rk3588", "--quant", "q4", "-o", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown quant `q4`; valid: fp16, int8, int8_hadamard, int4, int4_hadamard"),
        "{err}"
    );
}
