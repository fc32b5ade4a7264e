//! The generated code of one declaration, byte for byte: the repository's tiny model
//! (`models/tiny/moby-tiny.gguf`) declared as
//!
//! ```text
//! #[npu_model(path = "models/moby-tiny.gguf", target = "cpu", quant = "int8", context = 128, embed = "bytes")]
//! pub struct MobyTiny;
//! ```
//!
//! goes through `npu_build::compile()` exactly as a build script runs it (cargo's variables set
//! for an x86_64 Linux target), and `OUT_DIR/npu-model/MobyTiny.rs` must equal
//! `tests/golden/MobyTiny.rs`. Any change to the generated code shows as a diff of that file.
//! After an intended change, re-bless it and review the diff:
//!
//! ```text
//! NPU_BLESS=1 cargo test --release -p npu-build --test codegen_golden
//! ```
//!
//! The file also pins the packed blob (its SHA-256 is in the text) and the tokenizer file's
//! layout (its length and section offsets are in the text; its bytes are checked here).
//! Compiling the generated code is the UI tests' and the examples' job.

use npu_build::gguf::Gguf;
use npu_build::tokenizer::OwnedTokenizerTables;
use std::path::{Path, PathBuf};

const DECLARATION: &str = "use npu_model_macro::npu_model;

#[npu_model(path = \"models/moby-tiny.gguf\", target = \"cpu\", quant = \"int8\", context = 128, embed = \"bytes\")]
pub struct MobyTiny;
";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/MobyTiny.rs")
}

/// First differing line, for a readable failure.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i).copied().unwrap_or("<end>"), g.get(i).copied().unwrap_or("<end>"));
        if a != b {
            let cut = |s: &str| s.chars().take(300).collect::<String>();
            return format!("line {}:\n  golden:    {}\n  generated: {}", i + 1, cut(a), cut(b));
        }
    }
    "only in line endings".into()
}

#[test]
fn generated_code_of_the_tiny_model_matches_the_golden_file() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("codegen-golden");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::create_dir_all(work.join("models")).unwrap();
    std::fs::create_dir_all(work.join("out")).unwrap();
    std::fs::write(work.join("src/lib.rs"), DECLARATION).unwrap();
    let gguf = repo().join("models/tiny/moby-tiny.gguf");
    std::fs::copy(&gguf, work.join("models/moby-tiny.gguf")).unwrap();

    // What cargo sets for a build script; this is the only test in this binary, so nothing
    // else reads the environment concurrently.
    for (k, v) in [
        ("CARGO_MANIFEST_DIR", work.to_str().unwrap()),
        ("OUT_DIR", work.join("out").to_str().unwrap()),
        ("CARGO_PKG_NAME", "golden"),
        ("CARGO_CFG_TARGET_ARCH", "x86_64"),
        ("CARGO_CFG_TARGET_OS", "linux"),
        ("CARGO_CFG_TARGET_ENV", "gnu"),
        ("CARGO_CFG_TARGET_ABI", ""),
        ("CARGO_CFG_TARGET_ENDIAN", "little"),
        ("CARGO_CFG_TARGET_POINTER_WIDTH", "64"),
        ("CARGO_CFG_TARGET_FEATURE", "fxsr,sse,sse2"),
        ("NPU_BUILD_THREADS", "2"),
    ] {
        std::env::set_var(k, v);
    }
    std::env::remove_var("NPU_BUILD_CACHE");
    std::env::remove_var("NPU_BUILD_VERBOSE");
    let compiled = npu_build::compile().unwrap();
    assert!(compiled.all_ok(), "{:?}", compiled.models);

    let gen = work.join("out/npu-model");
    let got = std::fs::read_to_string(gen.join("MobyTiny.rs")).unwrap();
    // The tokenizer file beside it is the tables' bytes, and the text names its length.
    let tables = OwnedTokenizerTables::from_gguf(&Gguf::open(&gguf).unwrap()).unwrap();
    let tok = std::fs::read(gen.join("MobyTiny.tok")).unwrap();
    assert_eq!(tok, tables.to_bytes(true));
    assert!(got.contains(&format!("const NPU_TOK_LEN: usize = {};", tok.len())));

    if std::env::var("NPU_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(golden(), &got).unwrap();
    }
    let want = std::fs::read_to_string(golden()).unwrap_or_default();
    assert!(
        want == got,
        "the generated code differs from {} at {}\nIf the change is intended: NPU_BLESS=1 cargo test --release -p npu-build --test codegen_golden, then review the diff",
        golden().display(),
        first_difference(&want, &got)
    );
}
