use npu_model_macro::npu_model;

#[npu_model(path = "models/wide.gguf", target = "cpu", quant = "int8", embed = "bytes")]
pub struct Wide;
