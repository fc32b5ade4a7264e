//! SmolLM2-135M-Instruct (F16 GGUF) on the `rk3588` target, `fp16` weights: see `npu_bench::main`.
use npu_model_macro::npu_model;

#[npu_model(
    path = "${NPU_CACHE}/smollm2-135m-instruct-f16.gguf",
    target = "rk3588",
    quant = "fp16",
    context = 1024
)]
struct Smollm2Rk3588Fp16;

fn main() -> std::process::ExitCode {
    npu_bench::main("smollm2_rk3588_fp16", Smollm2Rk3588Fp16::model())
}
