//! npu-build: the build-script half of npu-model.
//!
//! One weight's journey through this crate, in module order:
//!
//! 1. [`gguf`]: read a GGUF file over a memory map (header, metadata, tensor table) and give
//!    typed access to the model's hyperparameters.
//! 2. [`dequant`]: turn a tensor's ggml blocks (any common ggml type) into f32 rows.
//! 3. [`quant`]: pick a scheme (`fp16`, `int8`, `int8_hadamard`, `int4`, `int4_hadamard`) and
//!    turn f32 rows into a pipeline's values: rotation, per-channel per-K-segment scales.
//! 4. [`pack`]: place every tensor in its target's native layout, split across cores, into
//!    one 64-byte-aligned blob with a descriptor table (`npu_runtime::format`).
//! 5. [`report`]: per-tensor weight and matmul-output error of the packed model.
//! 6. [`tokenizer`]: tokenizer tables from GGUF metadata, for the runtime's tokenizers.
//!
//! The `#[npu_model]` path (a build script calls [`compile()`]): [`declare`] (attribute
//! arguments, shared with the macro), [`discover`] (find declarations in the crate's sources),
//! [`config`] (the runtime's model config from metadata, shared with the CLI), [`model`] (a
//! model packed in memory, for the CLI, benches and tests), [`cache`]
//! (content-hash keyed packed models), [`codegen`] (the generated Rust), [`embed`]
//! (blob into the binary: aligned `include_bytes!` or a linked object file).
#![deny(missing_docs)]

pub mod cache;
pub mod codegen;
pub mod compile;
pub mod config;
pub mod declare;
pub mod dequant;
pub mod discover;
pub mod embed;
pub mod gguf;
pub mod model;
pub mod pack;
pub mod quant;
pub mod report;
pub mod tokenizer;

pub use compile::{compile, CompileError, Compiled};
