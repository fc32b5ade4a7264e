//! GGUF → tokenizer → config → shape check → dequantize → pack → session, on model files
//! built from the input (structure-aware: the generator in npu-build/tests/hostile/ turns
//! bytes into a tiny model with hostile edits). Any panic is a crash; so is a model the packer
//! accepts and the runtime refuses.
#![no_main]

#[path = "../../tests/hostile/mod.rs"]
mod hostile;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(bytes) = hostile::model_bytes(&mut u) else { return };
    let _ = hostile::exercise(&bytes, &mut u);
});
