use npu_model_macro::npu_model;

// models/tiny/moby-tiny.gguf with `blk.1.ffn_norm.weight` of length 64 instead of 128
// (written by the harness).
#[npu_model(path = "models/moby-short-norm.gguf", target = "cpu", quant = "int4_hadamard")]
pub struct Moby;

pub const ARENA: usize = Moby::ARENA_BYTES;
