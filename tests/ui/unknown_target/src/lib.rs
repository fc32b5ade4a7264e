use npu_model_macro::npu_model;

#[npu_model(path = "models/tiny.gguf", target = "rk3589", quant = "int8")]
pub struct M;
