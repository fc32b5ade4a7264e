use npu_model_macro::npu_model;

#[npu_model(path = "models/tiny.gguf", target = "cpu", quant = "int8", embed = "object")]
pub struct Tiny;

mod check;

fn main() {
    check::model("Tiny", Tiny::model(), Tiny::BLOB_SHA256, Tiny::EMBED, "object");
    // Default context: 512, lowered to the model's trained 64.
    assert_eq!(Tiny::CONTEXT, 64);
}
