use npu_model_macro::npu_model;

#[npu_model(path = "models/tiny.gguf", quant = "int8")]
pub struct M;
