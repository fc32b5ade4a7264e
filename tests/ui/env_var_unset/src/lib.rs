use npu_model_macro::npu_model;

#[npu_model(path = "${NPU_UI_UNSET_DIR}/tiny.gguf", target = "cpu", quant = "int8")]
pub struct M;

// Every item of the generated code, used as an application uses it: after the one error
// above, none of these may add another.
pub static mut ARENA: [u8; M::ARENA_BYTES] = [0; M::ARENA_BYTES];
const _: () = assert!(M::BLOB_LEN <= usize::MAX - M::ARENA_BYTES);

pub fn describe() -> usize {
    let model: &npu_runtime::model::Model<'static> = M::model();
    let tok: &npu_runtime::tokenizer::TokenizerTables<'static> = M::tokenizer();
    let config: npu_runtime::model::ModelConfig = M::CONFIG;
    let _: (npu_runtime::target::TargetId, npu_runtime::format::Scheme) = (M::TARGET, M::SCHEME);
    let _: (&str, [u8; 32], u32) = (M::EMBED, M::BLOB_SHA256, M::CONTEXT);
    M::blob().len() + config.vocab as usize + model.config.d_model as usize + tok.n_tokens()
}
