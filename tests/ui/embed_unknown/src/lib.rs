use npu_model_macro::npu_model;

#[npu_model(path = "models/tiny.gguf", target = "cpu", quant = "int8", embed = "fille")]
pub struct M;
