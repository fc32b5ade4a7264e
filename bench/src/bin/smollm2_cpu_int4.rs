//! SmolLM2-135M-Instruct (F16 GGUF) on the `cpu` target, `int4` weights: see `npu_bench::main`.
use npu_model_macro::npu_model;

#[npu_model(
    path = "${NPU_CACHE}/smollm2-135m-instruct-f16.gguf",
    target = "cpu",
    quant = "int4",
    context = 1024
)]
struct Smollm2CpuInt4;

fn main() -> std::process::ExitCode {
    npu_bench::main("smollm2_cpu_int4", Smollm2CpuInt4::model())
}
