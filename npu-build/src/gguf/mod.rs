//! GGUF: the file format, read over a memory map.

pub mod ggml_type;

pub use ggml_type::GgmlType;
