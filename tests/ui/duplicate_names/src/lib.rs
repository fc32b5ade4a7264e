mod a {
    use npu_model_macro::npu_model;

    #[npu_model(path = "models/tiny.gguf", target = "cpu", quant = "int8")]
    pub struct M;
}

mod b {
    use npu_model_macro::npu_model;

    #[npu_model(path = "models/tiny.gguf", target = "cpu", quant = "fp16")]
    pub struct M;
}
