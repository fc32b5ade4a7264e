//! SmolLM2-135M-Instruct (F16 GGUF) on the `rk3588` target, `int8_hadamard` weights: see `npu_bench::main`.
use npu_model_macro::npu_model;

#[npu_model(
    path = "${NPU_CACHE}/smollm2-135m-instruct-f16.gguf",
    target = "rk3588",
    quant = "int8_hadamard",
    context = 1024
)]
struct Smollm2Rk3588Int8Hadamard;

fn main() -> std::process::ExitCode {
    npu_bench::main("smollm2_rk3588_int8_hadamard", Smollm2Rk3588Int8Hadamard::model())
}
