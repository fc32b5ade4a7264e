//! Qwen2.5-Coder-0.5B-Instruct (F16 GGUF) on the `cpu` target, `int8_hadamard` weights: see `npu_bench::main`.
use npu_model_macro::npu_model;

#[npu_model(
    path = "${NPU_CACHE}/qwen2.5-coder-0.5b-instruct-f16.gguf",
    target = "cpu",
    quant = "int8_hadamard",
    context = 1024
)]
struct Qwen25CpuInt8Hadamard;

fn main() -> std::process::ExitCode {
    npu_bench::main("qwen25_cpu_int8_hadamard", Qwen25CpuInt8Hadamard::model())
}
