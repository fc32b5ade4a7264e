use npu_model_macro::npu_model;

#[npu_model(path = "${NPU_UI_UNSET_DIR}/tiny.gguf", target = "cpu", quant = "int8")]
pub struct M;
