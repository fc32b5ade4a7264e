//! The two reference models, compiled into this crate at build time. `NPU_CACHE` (see
//! scripts/env.sh; scripts/fetch-models.sh downloads the files) says where they are.
#![deny(missing_docs)]

use npu_model_macro::npu_model;

/// SmolLM2-135M-Instruct (llama architecture, Q4_1 GGUF) for the RK3588, int8 weights.
#[npu_model(
    path = "${NPU_CACHE}/smollm2-135m-instruct-q4_1.gguf",
    target = "rk3588",
    quant = "int8",
    context = 1024
)]
pub struct SmolLm2;

/// Qwen2.5-Coder-0.5B-Instruct (qwen2 architecture, Q4_K_M GGUF) on the CPU target, int4.
#[npu_model(
    path = "${NPU_CACHE}/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    target = "cpu",
    quant = "int4"
)]
pub struct Qwen25;
