#![doc = include_str!("../README.md")]
//!
//! ## Modules, in dependency order
//!
//! - [`format`](mod@format): what the bytes of a packed model mean (schemes, pipelines, layouts, tensor
//!   descriptors); [`target`]: chip profiles as const data.
//! - [`exec`]: the reference executor of each NPU pipeline; [`backend`]: the seam every
//!   matmul goes through (`CpuReference`; [`rknpu`] drives librknnrt, feature `rknpu`); [`cpu`]: the fast CPU
//!   backend (SIMD kernels, bit-exact to `exec`, optional thread pool).
//! - [`tokenizer`]: byte-level BPE and SentencePiece over static tables.
//! - [`model`]: the model as data (`ModelConfig`, `Model`) and a `Session` over a
//!   caller-provided arena (KV cache, activations); llama, qwen2, gemma2 and gemma3 forward
//!   passes.
//! - [`sampler`], [`generate`]: seeded sampling, the generation loop, ChatML turns.
//! - [`blob_file`]: the header of a blob kept in a file beside the executable; mapping and
//!   checking it (feature `std`).
//! - `select` (feature `std`): the backend an application's `--backend cpu|rknpu|auto` asks
//!   for, above the backends it chooses between.
//!
//! Without the `std` feature nothing here allocates; every failure is an [`Error`] (or the
//! module's own error type) returned, never a panic.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

pub mod backend;
pub mod blob_file;
pub mod cpu;
pub mod error;
pub mod exec;
pub mod format;
pub mod generate;
pub mod model;
pub mod rknpu;
pub mod sampler;
#[cfg(feature = "std")]
pub mod select;
pub mod target;
pub mod tokenizer;

pub use error::Error;
