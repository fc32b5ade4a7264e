//! `npu bench` end to end on the repository's tiny model: the JSON report's shape and the
//! refusals of bad input. No timing thresholds: only that every figure is a real measurement.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny/moby-tiny.gguf")
}

fn npu_bench(extra: &[&str]) -> Output {
    let model = tiny();
    let mut args = vec!["bench", model.to_str().unwrap(), "--target", "cpu", "--quant", "int8"];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_npu")).args(&args).output().expect("cannot run npu")
}

fn positive_finite(v: &serde_json::Value, what: &str) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

#[test]
fn json_has_one_object_per_test_with_every_rep() {
    let o = npu_bench(&["--pp", "16", "--tg", "8", "--reps", "2", "--json"]);
    assert!(o.status.success(), "npu bench failed: {}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let tests: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON object per line")).collect();
    assert_eq!(tests.len(), 2, "{text}");
    for (t, (name, n_prompt, n_gen)) in tests.iter().zip([("pp16", 16, 0), ("tg8", 0, 8)]) {
        assert_eq!(t["test"], name);
        assert_eq!((t["n_prompt"].as_u64(), t["n_gen"].as_u64()), (Some(n_prompt), Some(n_gen)));
        assert_eq!((t["target"].as_str(), t["quant"].as_str()), (Some("cpu"), Some("int8")));
        assert_eq!(t["reps"], 2);
        assert!(t["blob_bytes"].as_u64().unwrap() > 0);
        let secs = t["samples_s"].as_array().unwrap();
        let ts = t["samples_ts"].as_array().unwrap();
        assert_eq!((secs.len(), ts.len()), (2, 2));
        for (s, r) in secs.iter().zip(ts) {
            let (s, r) = (positive_finite(s, "seconds"), positive_finite(r, "t/s"));
            let n = (n_prompt + n_gen) as f64;
            assert!((r * s - n).abs() < 1e-6 * n, "{n} tokens in {s} s is not {r} t/s");
        }
        let (min, max) =
            (positive_finite(&t["ts_min"], "min"), positive_finite(&t["ts_max"], "max"));
        let median = positive_finite(&t["ts_median"], "median");
        assert!(min <= median && median <= max, "{t}");
        assert!(t["ts_stddev"].as_f64().unwrap().is_finite());
    }
}

#[test]
fn table_names_the_tests_and_skips_a_zero_one() {
    let o = npu_bench(&["--pp", "8", "--tg", "0", "--reps", "1", "--threads", "1"]);
    assert!(o.status.success(), "npu bench failed: {}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("moby-tiny.gguf")).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(rows[0].contains("| cpu/int8 |") && rows[0].contains("| pp8 |"), "{text}");
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    // The tiny model's trained context is 256 tokens.
    for (extra, want) in [
        (&["--reps", "0"][..], "--reps must be at least 1"),
        (
            &["--pp", "200", "--tg", "100"],
            "300 tokens exceed the model's trained context length of 256",
        ),
        (&["--pp", "16", "--tg", "8", "--ctx", "20"], "24 tokens do not fit --ctx 20"),
        (
            &["--ctx", "1000", "--pp", "16", "--tg", "8"],
            "--ctx 1000 exceeds the model's trained context length of 256",
        ),
        (&["--pp", "0", "--tg", "0"], "nothing to measure"),
    ] {
        let o = npu_bench(extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: stderr lacks {want:?}: {err}");
        assert!(o.stdout.is_empty(), "{extra:?}");
    }
}
