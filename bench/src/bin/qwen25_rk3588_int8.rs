//! Qwen2.5-Coder-0.5B-Instruct (F16 GGUF) on the `rk3588` target, `int8` weights: see `npu_bench::main`.
use npu_model_macro::npu_model;

#[npu_model(
    path = "${NPU_CACHE}/qwen2.5-coder-0.5b-instruct-f16.gguf",
    target = "rk3588",
    quant = "int8",
    context = 1024
)]
struct Qwen25Rk3588Int8;

fn main() -> std::process::ExitCode {
    npu_bench::main("qwen25_rk3588_int8", Qwen25Rk3588Int8::model())
}
