//! Qwen2.5-Coder-0.5B-Instruct (F16 GGUF) on the `cpu` target, `int4` weights: see `npu_bench::main`.
use npu_model_macro::npu_model;

#[npu_model(
    path = "${NPU_CACHE}/qwen2.5-coder-0.5b-instruct-f16.gguf",
    target = "cpu",
    quant = "int4",
    context = 1024
)]
struct Qwen25CpuInt4;

fn main() -> std::process::ExitCode {
    npu_bench::main("qwen25_cpu_int4", Qwen25CpuInt4::model())
}
