use npu_model_macro::npu_model;

#[npu_model(
    path = "${NPU_UI_MODELS}/tiny.gguf",
    target = "rk3588",
    quant = "int4_hadamard",
    context = 32,
    embed = "bytes"
)]
struct Tiny;

mod check;

fn main() {
    check::model("Tiny", Tiny::model(), Tiny::BLOB_SHA256, Tiny::EMBED, "bytes");
    assert_eq!(Tiny::CONTEXT, 32);
    assert_eq!(Tiny::ARENA_BYTES, npu_runtime::model::arena_bytes(&Tiny::CONFIG, 32));
    assert_eq!(Tiny::tokenizer().eos, Some(3));
}
