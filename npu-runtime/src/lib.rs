//! npu-runtime: runs a model that `npu-build` compiled at build time, from static data, with
//! no allocator. It is also the home of the format types that the packer (build time) and the
//! runtime share, so both sides agree by construction.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

pub mod backend;
pub mod error;
pub mod exec;
pub mod format;
pub mod generate;
pub mod model;
pub mod sampler;
pub mod target;
pub mod tokenizer;

pub use error::Error;
