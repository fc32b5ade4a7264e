use npu_model_macro::npu_model;

#[npu_model(path = "models/tiny.gguf", target = "rk3566", quant = "int4")]
pub struct M;
