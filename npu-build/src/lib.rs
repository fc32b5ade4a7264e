#![doc = include_str!("../README.md")]
//!
//! # In a build script
//!
//! ```no_run
//! // build.rs: finds every #[npu_model] declaration of the crate, packs each model (cached by
//! // content hash), embeds its blob and writes the code the attribute expands to.
//! npu_build::compile().unwrap();
//! ```
//!
//! [`compile()`] is `Config::from_env().compile()`; [`Config`] sets the same things in code
//! (`Config::new().cache_dir(..).threads(..).verbose(..).blob_dir(..).compile()`), with the
//! environment variables `NPU_BUILD_CACHE`, `NPU_BUILD_THREADS`, `NPU_BUILD_VERBOSE` and
//! `NPU_BUILD_BLOB_DIR` as the documented
//! defaults of [`Config::from_env`]. Mistakes in a declaration are not `Err`: they become
//! compile errors at the attribute ([`protocol`]).
//!
//! # Modules, in dependency order
//!
//! Each module uses only modules above it in this list (no cycles).
//!
//! 1. [`ggml`]: ggml's type table and block layouts.
//! 2. [`dequant`]: a tensor's ggml blocks (any common ggml type) to f32 rows.
//! 3. [`gguf`]: read a GGUF file over a memory map (header, metadata, tensor table) and give
//!    typed access to the model's hyperparameters (for the runtime's architectures).
//! 4. [`tokenizer`]: tokenizer tables from GGUF metadata, for the runtime's tokenizers.
//! 5. [`config`]: the runtime's model config from metadata (shared with the CLI).
//! 6. [`shapes`]: every tensor the architecture reads against the shape the hyperparameters
//!    imply, checked before packing.
//! 7. [`quant`]: schemes by name, and f32 rows to a pipeline's values (rotation,
//!    per-channel per-K-segment scales).
//! 8. [`rng`], [`report`]: the report's deterministic activation batch; per-tensor weight and
//!    matmul-output error of the packed model.
//! 9. [`pack`]: every tensor in its target's native layout, split across cores, into one
//!    64-byte-aligned blob with a descriptor table (`npu_runtime::format`); [`model`]: a
//!    model packed in memory ([`model::OwnedModel`]: config, blob, descriptor table and
//!    tokenizer tables) for the CLI, benches and tests.
//! 10. [`declare`]: the attribute's arguments (shared with the macro); [`protocol`]: the files
//!    through which the build script reports to the attribute.
//! 11. The build path, private: `discover` (declarations in the crate's sources), `cache`
//!     (content-hash keyed packed models: blob, tokenizer bytes, code), `embed` (the blob into the binary: aligned
//!     `include_bytes!` or a linked object file; or into a file beside it), `codegen` (the generated Rust), `compile`
//!     ([`Config`]).
#![deny(missing_docs)]

mod cache;
mod codegen;
mod compile;
pub mod config;
pub mod declare;
pub mod dequant;
mod discover;
mod embed;
pub mod ggml;
pub mod gguf;
pub mod model;
pub mod pack;
pub mod protocol;
pub mod quant;
pub mod report;
pub mod rng;
pub mod shapes;
pub mod tokenizer;

pub use compile::{compile, CompileError, Compiled, Config, ModelOutcome, ENV_VARS};
