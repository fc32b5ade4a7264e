//! UI tests for `#[npu_model]`: each case under `tests/ui/<case>/` (workspace root) is a
//! small crate, built with cargo exactly as a user would build it, build script included
//! (which trybuild does not run). A case holds `src/**`, optionally `build.rs` (the harness
//! writes the standard one-line build script unless the case has `no-build-rs` or its own),
//! and `expected.stderr` (the errors, normalized) or none for a case that must build; if it
//! has `src/main.rs`, that binary must also run successfully.
//!
//! Before building, the harness writes small GGUF files into the case's `models/`:
//! `tiny.gguf` (a valid one-block llama with a 4-token BPE vocabulary), `gpt2.gguf` (an
//! architecture npu-runtime does not run), `iq2.gguf` (a tensor of a type the dequantizer
//! does not read), `wide.gguf` (`tiny.gguf` with an FFN 3 Mi wide, f16, all zero, written
//! sparse: its int8 blob is over 512 MiB), `models/tiny/moby-tiny.gguf` as it is, and two copies of it whose
//! `blk.1.ffn_norm.weight` has shape `[0]` (`moby-zero-dim.gguf`) or `[64]`
//! (`moby-short-norm.gguf`) instead of `[128]`, edited in the tensor table.
//!
//! `NPU_UI_BLESS=1` rewrites the expected files; `NPU_UI_TARGET=<triple>` builds (and runs,
//! through cargo's runner for it) for another target. Cases run in a shared target directory
//! (`$CARGO_TARGET_DIR/npu-ui` or `target/npu-ui`), so npu-build is compiled once.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

// ---- a minimal GGUF v3 writer ----

enum Val {
    U32(u32),
    F32(f32),
    Str(&'static str),
    Strs(Vec<&'static str>),
    I32s(Vec<i32>),
}

fn put_str(o: &mut Vec<u8>, s: &str) {
    o.extend((s.len() as u64).to_le_bytes());
    o.extend(s.as_bytes());
}

/// `tensors`: (name, dims innermost first, ggml type id, data bytes).
fn gguf(kv: &[(&str, Val)], tensors: &[(&str, Vec<u64>, u32, Vec<u8>)]) -> Vec<u8> {
    let table: Vec<(&str, Vec<u64>, u32, u64)> =
        tensors.iter().map(|(n, d, t, data)| (*n, d.clone(), *t, data.len() as u64)).collect();
    let (mut o, offsets) = gguf_header(kv, &table);
    let start = o.len();
    for ((_, _, _, data), off) in tensors.iter().zip(offsets) {
        o.resize(start + off as usize, 0);
        o.extend(data);
    }
    o
}

/// A GGUF file whose tensor data is all zero and left sparse (a hole), so a file of GiBs
/// costs nothing to write. `tensors`: (name, dims, ggml type id, data length in bytes).
fn gguf_sparse(path: &Path, kv: &[(&str, Val)], tensors: &[(&str, Vec<u64>, u32, u64)]) {
    let (head, offsets) = gguf_header(kv, tensors);
    let end = offsets.last().zip(tensors.last()).map_or(0, |(o, t)| o + t.3);
    let f = std::fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut &f, &head).unwrap();
    f.set_len(head.len() as u64 + end).unwrap();
}

/// Header, metadata and tensor table (padded to the data alignment), and each tensor's
/// offset in the data section.
fn gguf_header(kv: &[(&str, Val)], tensors: &[(&str, Vec<u64>, u32, u64)]) -> (Vec<u8>, Vec<u64>) {
    let mut o = b"GGUF".to_vec();
    o.extend(3u32.to_le_bytes());
    o.extend((tensors.len() as u64).to_le_bytes());
    o.extend((kv.len() as u64).to_le_bytes());
    for (k, v) in kv {
        put_str(&mut o, k);
        match v {
            Val::U32(x) => {
                o.extend(4u32.to_le_bytes());
                o.extend(x.to_le_bytes());
            }
            Val::F32(x) => {
                o.extend(6u32.to_le_bytes());
                o.extend(x.to_le_bytes());
            }
            Val::Str(s) => {
                o.extend(8u32.to_le_bytes());
                put_str(&mut o, s);
            }
            Val::Strs(v) => {
                o.extend(9u32.to_le_bytes());
                o.extend(8u32.to_le_bytes());
                o.extend((v.len() as u64).to_le_bytes());
                for s in v {
                    put_str(&mut o, s);
                }
            }
            Val::I32s(v) => {
                o.extend(9u32.to_le_bytes());
                o.extend(5u32.to_le_bytes());
                o.extend((v.len() as u64).to_le_bytes());
                for x in v {
                    o.extend(x.to_le_bytes());
                }
            }
        }
    }
    let mut offset = 0u64;
    let mut offsets = Vec::new();
    for (name, dims, ty, len) in tensors {
        put_str(&mut o, name);
        o.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            o.extend(d.to_le_bytes());
        }
        o.extend(ty.to_le_bytes());
        o.extend(offset.to_le_bytes());
        offsets.push(offset);
        offset = (offset + len).div_ceil(32) * 32;
    }
    while !o.len().is_multiple_of(32) {
        o.push(0);
    }
    (o, offsets)
}

fn f32s(n: usize, seed: u32) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            ((((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5)
                .to_le_bytes()
        })
        .collect()
}

fn llama_kv(arch: &'static str) -> Vec<(&'static str, Val)> {
    let k = |s: &str| -> &'static str { Box::leak(format!("{arch}.{s}").into_boxed_str()) };
    vec![
        ("general.architecture", Val::Str(arch)),
        (k("context_length"), Val::U32(64)),
        (k("embedding_length"), Val::U32(64)),
        (k("block_count"), Val::U32(1)),
        (k("feed_forward_length"), Val::U32(128)),
        (k("attention.head_count"), Val::U32(2)),
        (k("attention.head_count_kv"), Val::U32(1)),
        (k("attention.layer_norm_rms_epsilon"), Val::F32(1e-5)),
        ("tokenizer.ggml.model", Val::Str("gpt2")),
        ("tokenizer.ggml.pre", Val::Str("gpt-2")),
        ("tokenizer.ggml.tokens", Val::Strs(vec!["a", "b", "ab", "<eos>"])),
        ("tokenizer.ggml.token_type", Val::I32s(vec![1, 1, 1, 3])),
        ("tokenizer.ggml.merges", Val::Strs(vec!["a b"])),
        ("tokenizer.ggml.eos_token_id", Val::U32(3)),
    ]
}

fn write_models(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let (d, v) = (64u64, 4u64);
    let dd = d as usize;
    // One block with FFN width `ff`; `ffn_down` of type `ty_down` with bytes `down`.
    let block =
        |ff: u64, ty_down: u32, down: Vec<u8>| -> Vec<(&'static str, Vec<u64>, u32, Vec<u8>)> {
            let f = ff as usize;
            vec![
                ("token_embd.weight", vec![d, v], 0, f32s(dd * v as usize, 1)),
                ("blk.0.attn_norm.weight", vec![d], 0, f32s(dd, 2)),
                ("blk.0.attn_q.weight", vec![d, d], 0, f32s(dd * dd, 3)),
                ("blk.0.attn_k.weight", vec![d, 32], 0, f32s(dd * 32, 4)),
                ("blk.0.attn_v.weight", vec![d, 32], 0, f32s(dd * 32, 5)),
                ("blk.0.attn_output.weight", vec![d, d], 0, f32s(dd * dd, 6)),
                ("blk.0.ffn_norm.weight", vec![d], 0, f32s(dd, 7)),
                ("blk.0.ffn_gate.weight", vec![d, ff], 0, f32s(dd * f, 8)),
                ("blk.0.ffn_up.weight", vec![d, ff], 0, f32s(dd * f, 9)),
                ("blk.0.ffn_down.weight", vec![ff, d], ty_down, down),
                ("output_norm.weight", vec![d], 0, f32s(dd, 10)),
            ]
        };
    let ok = block(128, 0, f32s(128 * dd, 11));
    std::fs::write(dir.join("tiny.gguf"), gguf(&llama_kv("llama"), &ok)).unwrap();
    std::fs::write(dir.join("gpt2.gguf"), gguf(&llama_kv("gpt2"), &ok)).unwrap();
    // IQ2_XXS (ggml type 16): 66-byte blocks of 256 values; FFN width 256, so `ffn_down` is
    // 64 rows of one block each.
    let iq = block(256, 16, vec![0u8; 66 * 64]);
    let mut kv = llama_kv("llama");
    for (k, val) in kv.iter_mut() {
        if *k == "llama.feed_forward_length" {
            *val = Val::U32(256);
        }
    }
    std::fs::write(dir.join("iq2.gguf"), gguf(&kv, &iq)).unwrap();
    // FFN width 3 Mi in f16: 1.1 GiB of zeros (sparse), 576 MiB of int8 weights once packed.
    let wide = 3u64 << 20;
    let mut kv = llama_kv("llama");
    for (k, val) in kv.iter_mut() {
        if *k == "llama.feed_forward_length" {
            *val = Val::U32(wide as u32);
        }
    }
    let (f16, f32) = (|dims: &[u64]| dims.iter().product::<u64>() * 2, 4 * d);
    let big: Vec<(&str, Vec<u64>, u32, u64)> = vec![
        ("token_embd.weight", vec![d, v], 1, f16(&[d, v])),
        ("blk.0.attn_norm.weight", vec![d], 0, f32),
        ("blk.0.attn_q.weight", vec![d, d], 1, f16(&[d, d])),
        ("blk.0.attn_k.weight", vec![d, 32], 1, f16(&[d, 32])),
        ("blk.0.attn_v.weight", vec![d, 32], 1, f16(&[d, 32])),
        ("blk.0.attn_output.weight", vec![d, d], 1, f16(&[d, d])),
        ("blk.0.ffn_norm.weight", vec![d], 0, f32),
        ("blk.0.ffn_gate.weight", vec![d, wide], 1, f16(&[d, wide])),
        ("blk.0.ffn_up.weight", vec![d, wide], 1, f16(&[d, wide])),
        ("blk.0.ffn_down.weight", vec![wide, d], 1, f16(&[wide, d])),
        ("output_norm.weight", vec![d], 0, f32),
    ];
    gguf_sparse(&dir.join("wide.gguf"), &kv, &big);
    let moby = std::fs::read(root().join("models/tiny/moby-tiny.gguf")).unwrap();
    std::fs::write(dir.join("moby-tiny.gguf"), &moby).unwrap();
    for (file, len) in [("moby-zero-dim.gguf", 0u64), ("moby-short-norm.gguf", 64)] {
        std::fs::write(dir.join(file), with_dim(&moby, "blk.1.ffn_norm.weight", len)).unwrap();
    }
}

/// `gguf` with the length of 1-D tensor `name` set to `len` in the tensor table (the data
/// stays where it is, so the file still opens).
fn with_dim(gguf: &[u8], name: &str, len: u64) -> Vec<u8> {
    let mut b = gguf.to_vec();
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend(name.as_bytes());
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(b[at..at + 4], 1u32.to_le_bytes(), "{name} is not 1-D");
    b[at + 4..at + 12].copy_from_slice(&len.to_le_bytes());
    b
}

// ---- the harness ----

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Keeps the lines that are about the user's code: rustc's errors (with their snippets) and
/// the build script's warnings; paths made machine-independent.
fn normalize(stderr: &str, work: &Path, pkg: &str) -> String {
    let text = stderr.replace(&work.display().to_string(), "$DIR");
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let l = line.trim_end();
        let start = l.starts_with("error") || l.starts_with(&format!("warning: {pkg}@"));
        if start {
            in_block = true;
        } else if l.is_empty() {
            if in_block {
                out.push(String::new());
            }
            in_block = false;
            continue;
        }
        if l.starts_with("error: could not compile") || l.starts_with("warning: build failed") {
            in_block = false;
            continue;
        }
        if in_block {
            out.push(
                l.replace(&format!("{pkg}@0.1.0"), "$PKG").replace(&format!("`{pkg}`"), "`$PKG`"),
            );
        }
    }
    let mut s = out.join("\n").trim().to_string();
    // OUT_DIR paths carry a hash that depends on the toolchain and workspace: hide it.
    while let Some(i) = s.find("/build/ui_") {
        let end = s[i..].find("/out").map(|e| i + e).unwrap_or(i);
        let begin = s[..i].rfind([' ', '`', '(']).map(|b| b + 1).unwrap_or(0);
        if end <= i {
            break;
        }
        s.replace_range(begin..end + 4, "$OUT_DIR");
    }
    s.push('\n');
    s
}

fn run_case(case: &Path, target_dir: &Path, work_root: &Path) -> Result<(), String> {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let pkg = format!("ui_{name}");
    let work = work_root.join(&name);
    let _ = std::fs::remove_dir_all(&work);
    copy_dir(case, &work);
    let _ = std::fs::remove_file(work.join("expected.stderr"));
    let r = root();
    let manifest = format!(
        "[package]\nname = \"{pkg}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n[dependencies]\nnpu-runtime = {{ path = {:?}, features = [\"std\"] }}\nnpu-model-macro = {{ path = {:?} }}\nsha2 = \"0.11\"\n\n[build-dependencies]\nnpu-build = {{ path = {:?} }}\n\n[profile.dev.build-override]\nopt-level = 3\n",
        r.join("npu-runtime"),
        r.join("npu-model-macro"),
        r.join("npu-build"),
    );
    std::fs::write(work.join("Cargo.toml"), manifest).unwrap();
    // Same dependency versions as the workspace.
    let _ = std::fs::copy(r.join("Cargo.lock"), work.join("Cargo.lock"));
    if !work.join("build.rs").exists() && !work.join("no-build-rs").exists() {
        std::fs::write(
            work.join("build.rs"),
            "fn main() {\n    npu_build::compile().unwrap();\n}\n",
        )
        .unwrap();
    }
    write_models(&work.join("models"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // NPU_UI_TARGET cross-builds (and runs through cargo's runner for that target, e.g.
    // qemu-user, as scripts/test-aarch64.sh sets it up).
    let target: Vec<String> =
        std::env::var("NPU_UI_TARGET").map(|t| vec!["--target".into(), t]).unwrap_or_default();
    let out = Command::new(&cargo)
        .args(["build", "--color=never", "--quiet"])
        .args(&target)
        .current_dir(&work)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("NPU_BUILD_CACHE")
        .env_remove("NPU_BUILD_VERBOSE")
        .env("NPU_UI_MODELS", work.join("models"))
        .output()
        .map_err(|e| format!("{name}: running cargo: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let got = normalize(&stderr, &work, &pkg);
    let expected_path = case.join("expected.stderr");
    if std::env::var("NPU_UI_BLESS").is_ok_and(|v| v == "1") {
        if out.status.success() {
            let _ = std::fs::remove_file(&expected_path);
        } else {
            std::fs::write(&expected_path, &got).unwrap();
        }
    }
    match std::fs::read_to_string(&expected_path) {
        Ok(want) => {
            if out.status.success() {
                return Err(format!("{name}: expected a compile error, but the build succeeded"));
            }
            if want != got {
                return Err(format!(
                    "{name}: stderr differs\n--- expected\n{want}--- got\n{got}--- raw\n{stderr}"
                ));
            }
        }
        Err(_) => {
            if !out.status.success() {
                return Err(format!("{name}: expected a successful build\n{stderr}"));
            }
            if work.join("src/main.rs").exists() {
                let run = Command::new(&cargo)
                    .args(["run", "--color=never", "--quiet"])
                    .args(&target)
                    .current_dir(&work)
                    .env("CARGO_TARGET_DIR", target_dir)
                    .env("NPU_UI_MODELS", work.join("models"))
                    .output()
                    .map_err(|e| format!("{name}: running cargo run: {e}"))?;
                if !run.status.success() {
                    return Err(format!(
                        "{name}: the binary failed\n{}{}",
                        String::from_utf8_lossy(&run.stdout),
                        String::from_utf8_lossy(&run.stderr)
                    ));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn ui() {
    let cases_dir = root().join("tests/ui");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&cases_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "expected the UI cases under {}", cases_dir.display());
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let base = if base.is_absolute() { base } else { root().join(base) };
    let target_dir = base.join("npu-ui");
    let work_root = base.join("npu-ui-work");
    let only = std::env::var("NPU_UI_CASE").ok();
    let mut failures = Vec::new();
    for c in &cases {
        if only.as_deref().is_some_and(|o| !c.ends_with(o)) {
            continue;
        }
        if let Err(e) = run_case(c, &target_dir, &work_root) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} UI cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
