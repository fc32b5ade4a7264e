//! ggml's tensor types: the type table ([`GgmlType`]: id, name, block length, block bytes) and
//! the block layouts ([`blocks`]) with compile-time size checks against that table.
//!
//! Both the GGUF reader (which sizes every tensor by its type) and the dequantizers (which
//! read the blocks) build on this module; it depends on nothing else in the crate.

pub mod blocks;
mod types;

pub use types::{GgmlType, QK_K};
