//! npu-build: the build-script half of npu-model.
//!
//! One weight's journey through this crate, in module order:
//!
//! 1. [`gguf`]: read a GGUF file over a memory map (header, metadata, tensor table) and give
//!    typed access to the model's hyperparameters.
//! 2. [`dequant`]: turn a tensor's ggml blocks (any common ggml type) into f32 rows.
#![deny(missing_docs)]

pub mod dequant;
pub mod gguf;
