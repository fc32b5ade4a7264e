//! Fuzz the GGUF reader and, through it, the dequantizers: any byte string must either open or
//! give an error (never panic, never over-read), and whatever opens must be walkable end to end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use npu_build::gguf::{Gguf, Value};

/// Skip tensors with more f32 output than this (1 MiB), and stop after this much in total, so
/// one input cannot make an execution slow.
const MAX_TENSOR_VALUES: u64 = 1 << 18;
const MAX_TOTAL_VALUES: u64 = 1 << 20;

fn walk(v: &Value<'_>, depth: u32) -> u64 {
    let mut n = 1;
    if let Value::Array(a) = v {
        assert!(depth <= npu_build::gguf::MAX_ARRAY_DEPTH);
        let mut count = 0u64;
        for item in a.iter() {
            assert_eq!(item.value_type(), a.elem_type());
            n += walk(&item, depth + 1);
            count += 1;
        }
        assert_eq!(count, a.len(), "array iteration ended early");
        if let Some(last) = a.len().checked_sub(1) {
            assert!(a.get(last).is_some());
        }
        assert!(a.get(a.len()).is_none());
    }
    n
}

/// Equality that treats NaNs with the same bits as equal.
fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let g = match Gguf::from_bytes("fuzz.gguf", data) {
        Ok(g) => g,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for (k, v) in g.metadata() {
        walk(&v, 0);
        let again = g.get(k).expect("listed key not found");
        assert!(same(&again, &v), "{k}: {again:?} != {v:?}");
    }
    let _ = g.hparams().map_err(|e| e.to_string());
    let _ = g.tokenizer().map_err(|e| e.to_string());

    let mut budget = MAX_TOTAL_VALUES;
    for t in g.tensors() {
        assert_eq!(g.tensor(t.name()), Some(t));
        assert_eq!(g.tensor_data(t).len() as u64, t.n_bytes());
        assert!(t.file_offset() + t.n_bytes() <= data.len() as u64);
        if t.n_elements() > MAX_TENSOR_VALUES || t.n_elements() > budget {
            continue;
        }
        budget -= t.n_elements();
        match g.dequantize(t) {
            Ok(all) => {
                assert_eq!(all.len() as u64, t.n_elements());
                // The last row alone must match the same row of the whole tensor, bit for bit.
                if let Some(last) = t.n_rows().checked_sub(1) {
                    let mut row = vec![0f32; t.row_len() as usize];
                    g.dequantize_rows(t, last, 1, &mut row).unwrap();
                    let at = (last * t.row_len()) as usize;
                    let same = row.iter().zip(&all[at..]).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "row {last} of {} differs from the whole-tensor result",
                        t.name()
                    );
                }
            }
            Err(e) => assert!(!npu_build::dequant::supported(t.ty()), "{e}"),
        }
    }
});
