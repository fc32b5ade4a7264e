use npu_model_macro::npu_model;

#[npu_model(path = "models/tiny.gguf", target = "rk3588", quant = "int4_hadmard")]
pub struct M;
