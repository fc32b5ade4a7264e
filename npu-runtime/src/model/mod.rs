//! Running a model, in dependency order: the hyperparameters (`config`), the arena a session
//! lives in (`arena`), the packed weights resolved per block (`weights`), the transformer
//! math (`forward`) and the [`Session`] that drives it, with the KV cache (`session`).
//! Every architecture in [`ARCHS`] runs through the same forward pass.
//!
//! No allocator: the caller hands the session one `&mut [u8]` of at least
//! [`arena_bytes`] bytes; every buffer is carved from it. Every failure is a [`ModelError`].

mod arena;
mod config;
mod error;
mod forward;
mod session;
mod weights;

pub use arena::{arena_bytes, ArenaPlan, ARENA_ALIGN_SLACK, SCRATCH_K_ALIGN};
pub use config::{
    swa_pattern, Activation, Arch, ArchSpec, ModelConfig, RopeStyle, SlidingWindow, ARCHS,
    MAX_BATCH, MAX_LAYERS,
};
pub use error::ModelError;
pub use session::Session;
pub use weights::Model;
