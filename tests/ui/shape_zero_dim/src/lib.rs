use npu_model_macro::npu_model;

// models/tiny/moby-tiny.gguf with `blk.1.ffn_norm.weight` given the shape [0] (written by
// the harness): the reader accepts it, the shape check must refuse it before packing.
#[npu_model(path = "models/moby-zero-dim.gguf", target = "rk3588", quant = "int8")]
pub struct Moby;

pub const ARENA: usize = Moby::ARENA_BYTES;
