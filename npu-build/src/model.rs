//! A model packed in memory: the owned form of everything `npu_runtime::model::Model`
//! borrows (config, descriptor table, blob, tokenizer tables), for the `npu` CLI, benches and
//! tests. The build script writes the same parts into generated code instead (packing through
//! [`OwnedModel::from_gguf`] too, so both paths read a model the same way).
//!
//! ```no_run
//! use npu_build::gguf::Gguf;
//! use npu_build::model::OwnedModel;
//! use npu_build::pack::PackOptions;
//! use npu_runtime::backend::CpuReference;
//! use npu_runtime::format::Scheme;
//! use npu_runtime::model::{arena_bytes, Session};
//! use npu_runtime::target::Target;
//!
//! let g = Gguf::open("model.gguf")?;
//! let opts = PackOptions { target: Target::by_name("cpu").unwrap(), scheme: Scheme::Int8, threads: 2 };
//! let owned = OwnedModel::from_gguf(&g, &opts, Some(512))?;
//! let view = owned.view();
//! let mut arena = vec![0u8; arena_bytes(&owned.config, 512)];
//! let mut session = Session::new(view.model(), CpuReference, &mut arena)?;
//! let logits = session.prefill(&[1, 2, 3])?;
//! # let _ = logits;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A `Model` borrows a contiguous `[TensorDesc]` whose entries borrow the packed tensors'
//! names and shard lists, so the descriptors cannot live in the same struct as what they
//! borrow: [`OwnedModel::view`] builds them once into a [`ModelView`], which hands out the
//! `Model`.

use crate::config::model_config;
use crate::gguf::Gguf;
use crate::pack::{self, PackError, PackOptions, Packed};
use crate::tokenizer::{OwnedTokenizerTables, TokenizerBuildError};
use npu_runtime::format::{PackedModel, TensorDesc};
use npu_runtime::model::{Model, ModelConfig};
use npu_runtime::tokenizer::TokenizerTables;
use std::fmt;

/// Why a model could not be packed in memory.
#[derive(Debug)]
pub enum LoadError {
    /// The tokenizer metadata is missing, malformed or unsupported.
    Tokenizer(TokenizerBuildError),
    /// The hyperparameters are missing or not supported by npu-runtime.
    Config(String),
    /// Packing failed (unsupported scheme for the target, unreadable tensor, too large).
    Pack(PackError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Tokenizer(e) => write!(f, "tokenizer: {e}"),
            LoadError::Config(e) => write!(f, "{e}"),
            LoadError::Pack(e) => write!(f, "packing: {e}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Tokenizer(e) => Some(e),
            LoadError::Config(_) => None,
            LoadError::Pack(e) => Some(e),
        }
    }
}

/// A packed model with its config and tokenizer tables, all owned.
#[derive(Debug)]
pub struct OwnedModel {
    /// Hyperparameters, context length (the KV cache's size) and stop tokens.
    pub config: ModelConfig,
    /// Blob, descriptor table and quality report.
    pub packed: Packed,
    /// Tokenizer tables (empty for models without a vocabulary).
    pub tokenizer: OwnedTokenizerTables,
}

impl OwnedModel {
    /// Reads the tokenizer and config of `g` and packs its tensors: what the build script
    /// bakes into a binary, in memory. `context`: KV cache positions (`None`: the model's
    /// trained context length).
    pub fn from_gguf(
        g: &Gguf<'_>,
        opts: &PackOptions,
        context: Option<u32>,
    ) -> Result<OwnedModel, LoadError> {
        let tokenizer = OwnedTokenizerTables::from_gguf(g).map_err(LoadError::Tokenizer)?;
        OwnedModel::with_tokenizer(g, opts, context, tokenizer)
    }

    /// As [`OwnedModel::from_gguf`] with tokenizer tables the caller already read from `g`
    /// (so packing one file several ways reads its vocabulary once).
    pub fn with_tokenizer(
        g: &Gguf<'_>,
        opts: &PackOptions,
        context: Option<u32>,
        tokenizer: OwnedTokenizerTables,
    ) -> Result<OwnedModel, LoadError> {
        let config = model_config(g, &tokenizer, context).map_err(LoadError::Config)?;
        let packed = pack::pack(g, opts).map_err(LoadError::Pack)?;
        Ok(OwnedModel { config, packed, tokenizer })
    }

    /// A model from its parts (e.g. random weights packed from a `MemSource`, with
    /// [`OwnedTokenizerTables::empty`]).
    pub fn new(config: ModelConfig, packed: Packed, tokenizer: OwnedTokenizerTables) -> OwnedModel {
        OwnedModel { config, packed, tokenizer }
    }

    /// The descriptor table and tokenizer tables in the runtime's borrowed form.
    pub fn view(&self) -> ModelView<'_> {
        ModelView { owner: self, descs: self.packed.descs(), tables: self.tokenizer.tables() }
    }
}

/// The runtime's view of an [`OwnedModel`]: see [`ModelView::model`].
#[derive(Debug)]
pub struct ModelView<'a> {
    owner: &'a OwnedModel,
    descs: Vec<TensorDesc<'a>>,
    tables: TokenizerTables<'a>,
}

impl ModelView<'_> {
    /// The model as `npu_runtime` runs it (`Copy`: pass it to as many sessions as needed).
    pub fn model(&self) -> Model<'_> {
        let p = &self.owner.packed;
        Model {
            config: self.owner.config,
            weights: PackedModel {
                target: p.target.id,
                scheme: p.scheme,
                tensors: &self.descs,
                blob: &p.blob,
            },
            tokenizer: &self.tables,
        }
    }

    /// The descriptor table, blob order.
    pub fn descs(&self) -> &[TensorDesc<'_>] {
        &self.descs
    }
}
