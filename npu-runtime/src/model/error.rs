//! Why running a model failed: every failure of this module is a [`ModelError`].

use crate::error::Error;
use core::fmt;

/// Why running a model failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// A matmul, embedding read or descriptor check failed.
    Runtime(Error),
    /// The arena is smaller than [`arena_bytes`](super::arena_bytes).
    ArenaTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// The KV cache is full: the tokens would go past the context length.
    ContextFull {
        /// Positions the cache holds.
        context_len: u32,
    },
    /// A token id is outside the vocabulary.
    BadToken {
        /// The id.
        id: u32,
        /// Vocabulary size.
        vocab: u32,
    },
    /// A tensor the architecture needs is not in the table.
    MissingTensor {
        /// Block index, for per-block tensors.
        layer: Option<u32>,
        /// Name (without the `blk.N.` prefix for per-block tensors).
        name: &'static str,
    },
    /// A tensor's kind or shape disagrees with the config.
    Shape {
        /// Block index, for per-block tensors.
        layer: Option<u32>,
        /// Name (without the `blk.N.` prefix).
        name: &'static str,
    },
    /// The config is inconsistent (see [`ModelConfig::invalid`](super::ModelConfig::invalid)).
    BadConfig(&'static str),
    /// An empty token list was given where at least one token is needed.
    NoTokens,
    /// The sampler found nothing to choose.
    Sampling(crate::sampler::SampleError),
}

impl From<Error> for ModelError {
    fn from(e: Error) -> Self {
        ModelError::Runtime(e)
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelError::Runtime(e) => write!(f, "{e}"),
            ModelError::ArenaTooSmall { need, got } => {
                write!(f, "arena of {got} bytes is too small: the session needs {need}")
            }
            ModelError::ContextFull { context_len } => {
                write!(f, "context full ({context_len} positions)")
            }
            ModelError::BadToken { id, vocab } => {
                write!(f, "token id {id} outside the vocabulary (0..{vocab})")
            }
            ModelError::MissingTensor { layer: Some(l), name } => {
                write!(f, "missing tensor `blk.{l}.{name}`")
            }
            ModelError::MissingTensor { layer: None, name } => write!(f, "missing tensor `{name}`"),
            ModelError::Shape { layer: Some(l), name } => {
                write!(f, "tensor `blk.{l}.{name}` has the wrong kind or shape for this config")
            }
            ModelError::Shape { layer: None, name } => {
                write!(f, "tensor `{name}` has the wrong kind or shape for this config")
            }
            ModelError::BadConfig(why) => write!(f, "bad model config: {why}"),
            ModelError::NoTokens => f.write_str("no tokens given"),
            ModelError::Sampling(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ModelError {}
