//! The sampler on arbitrary logits (NaN, ±inf, subnormals), arbitrary settings and history:
//! an error or an id whose logit is a candidate (finite or +inf, never NaN), inside the
//! vocabulary; never a panic.
#![no_main]

#[path = "../../tests/hostile/mod.rs"]
mod hostile;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use npu_runtime::sampler::Sampler;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(config) = hostile::sampler_config(&mut u) else { return };
    let Ok(n) = u.int_in_range(0usize..=64) else { return };
    let mut logits = Vec::with_capacity(n);
    for _ in 0..n {
        let Ok(bits) = u.arbitrary::<u32>() else { break };
        logits.push(f32::from_bits(bits));
    }
    let Ok(history) = u.arbitrary::<Vec<u32>>() else { return };
    let mut cand = vec![0u32; logits.len() + u.int_in_range(0..=2).unwrap_or(0)];
    let mut s = Sampler::new(config);
    for _ in 0..3 {
        let mut l = logits.clone();
        if let Ok(id) = s.sample(&mut l, &mut cand, &history) {
            let v = logits[id as usize];
            assert!(!v.is_nan() && v != f32::NEG_INFINITY, "sampled id {id} with logit {v}");
        }
    }
});
