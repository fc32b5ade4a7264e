//! Tokenizer tables from GGUF metadata: the owned form of `npu_runtime::tokenizer::TokenizerTables`,
//! built from `tokenizer.ggml.*` keys, borrowable by the runtime, and written for code
//! generation as one byte file plus the Rust source that borrows it (`bytes`).
//!
//! What the build does to the vocabulary, so the runtime has nothing to decode or hash:
//! - byte-level BPE tokens are stored as the raw bytes they stand for (GPT-2's byte-to-unicode
//!   mapping undone); SPM tokens keep their text (`▁` for space);
//! - the string → id lookup is an id list sorted by those bytes (duplicated texts keep the
//!   last id, as llama.cpp's map does);
//! - merges become (left id, right id) → (rank, merged id), sorted for binary search;
//! - token types become attribute bits, with llama.cpp's fix-ups by token text (end-of-turn and
//!   fill-in-the-middle markers become control tokens) and by model name (Phi-3's specials
//!   strip the whitespace after them).

use crate::gguf::{Gguf, ValueType};
use npu_runtime::tokenizer::{
    attr, gpt2_cpt_to_byte, BpeMerge, PreTokenizer, TokenizerKind, TokenizerTables, NO_TOKEN,
};
use std::fmt;
use steps::{
    bpe_merges, byte_tokens, eog_ids, mark_markers, specials, stored_bytes, text_ids, token_attrs,
    Markers,
};

mod bytes;
mod steps;

pub use bytes::{store_source, Section, TOKENIZER_ALIGN};

/// `tokenizer.ggml.model` values this crate supports.
pub const SUPPORTED_MODELS: &[&str] = &["gpt2", "llama"];

/// Why tables could not be built.
#[derive(Debug)]
pub enum TokenizerBuildError {
    /// `tokenizer.ggml.model` names a tokenizer this crate does not implement.
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer this crate does not implement.
    UnsupportedPre(String),
    /// A required key is missing.
    Missing(&'static str),
    /// A value is malformed.
    Invalid(String),
    /// The GGUF reader failed.
    Gguf(crate::gguf::Error),
}

impl fmt::Display for TokenizerBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerBuildError::UnsupportedModel(m) => write!(
                f,
                "unsupported tokenizer model '{m}' (tokenizer.ggml.model); supported: {}",
                SUPPORTED_MODELS.join(", ")
            ),
            TokenizerBuildError::UnsupportedPre(p) => write!(
                f,
                "unsupported pre-tokenizer '{p}' (tokenizer.ggml.pre); supported: {}",
                PreTokenizer::SUPPORTED_NAMES.join(", ")
            ),
            TokenizerBuildError::Missing(k) => write!(f, "tokenizer metadata '{k}' is missing"),
            TokenizerBuildError::Invalid(s) => write!(f, "invalid tokenizer metadata: {s}"),
            TokenizerBuildError::Gguf(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TokenizerBuildError {}

impl From<crate::gguf::Error> for TokenizerBuildError {
    fn from(e: crate::gguf::Error) -> Self {
        TokenizerBuildError::Gguf(e)
    }
}

/// The tokenizer metadata of a model, independent of where it was read from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenizerSource {
    /// `tokenizer.ggml.model`.
    pub model: String,
    /// `tokenizer.ggml.pre`.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type` (llama.cpp's numbering: 1 normal, 2 unknown, 3 control,
    /// 4 user-defined, 5 unused, 6 byte); empty means all normal.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges` ("left right").
    pub merges: Vec<String>,
    /// `tokenizer.ggml.scores`.
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`.
    pub eot: Option<u32>,
    /// `tokenizer.ggml.eom_token_id`.
    pub eom: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad: Option<u32>,
    /// `tokenizer.ggml.fim_{pre,suf,mid,pad,rep,sep}_token_id`, in that order.
    pub fim: [Option<u32>; 6],
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: Option<bool>,
    /// `general.name` (llama.cpp sets some token attributes by model name).
    pub model_name: Option<String>,
}

impl TokenizerSource {
    /// Reads the tokenizer metadata of a GGUF file.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<TokenizerSource, TokenizerBuildError> {
        let s = |k: &str| -> Result<Option<String>, TokenizerBuildError> {
            Ok(g.get_str(k)?.map(str::to_owned))
        };
        let model = s("tokenizer.ggml.model")?
            .ok_or(TokenizerBuildError::Missing("tokenizer.ggml.model"))?;
        let strings = |k: &str| -> Result<Vec<String>, TokenizerBuildError> {
            Ok(g.get_str_array(k)?.unwrap_or_default().into_iter().map(str::to_owned).collect())
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let mut token_types = Vec::new();
        if let Some(a) = g.get_array("tokenizer.ggml.token_type")? {
            for v in a.iter() {
                let t = v.as_i64().ok_or_else(|| {
                    TokenizerBuildError::Invalid(format!(
                        "token_type element is {:?}",
                        v.value_type()
                    ))
                })?;
                token_types.push(t as i32);
            }
        }
        let mut scores = Vec::new();
        if let Some(a) = g.get_array("tokenizer.ggml.scores")? {
            for v in a.iter() {
                let x = match v.value_type() {
                    ValueType::F32 | ValueType::F64 => v.as_f64().map(|x| x as f32),
                    _ => v.as_i64().map(|x| x as f32),
                };
                scores.push(x.ok_or_else(|| {
                    TokenizerBuildError::Invalid("scores element is not a number".into())
                })?);
            }
        }
        Ok(TokenizerSource {
            model,
            pre: s("tokenizer.ggml.pre")?,
            tokens,
            token_types,
            merges,
            scores,
            bos: g.get_u32("tokenizer.ggml.bos_token_id")?,
            eos: g.get_u32("tokenizer.ggml.eos_token_id")?,
            eot: g.get_u32("tokenizer.ggml.eot_token_id")?,
            eom: g.get_u32("tokenizer.ggml.eom_token_id")?,
            pad: g.get_u32("tokenizer.ggml.padding_token_id")?,
            fim: [
                g.get_u32("tokenizer.ggml.fim_pre_token_id")?,
                g.get_u32("tokenizer.ggml.fim_suf_token_id")?,
                g.get_u32("tokenizer.ggml.fim_mid_token_id")?,
                g.get_u32("tokenizer.ggml.fim_pad_token_id")?,
                g.get_u32("tokenizer.ggml.fim_rep_token_id")?,
                g.get_u32("tokenizer.ggml.fim_sep_token_id")?,
            ],
            add_bos: g.get_bool("tokenizer.ggml.add_bos_token")?,
            add_eos: g.get_bool("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: g.get_bool("tokenizer.ggml.add_space_prefix")?,
            model_name: s("general.name")?,
        })
    }
}

/// Owned tokenizer tables: borrow them with [`tables`](Self::tables), write them for generated
/// code with [`to_bytes`](Self::to_bytes) and [`to_rust_source`](Self::to_rust_source).
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedTokenizerTables {
    /// See [`TokenizerTables::kind`].
    pub kind: TokenizerKind,
    /// See [`TokenizerTables::pre`].
    pub pre: PreTokenizer,
    /// See [`TokenizerTables::token_bytes`].
    pub token_bytes: Vec<u8>,
    /// See [`TokenizerTables::token_offsets`].
    pub token_offsets: Vec<u32>,
    /// See [`TokenizerTables::token_attrs`].
    pub token_attrs: Vec<u8>,
    /// See [`TokenizerTables::sorted_ids`].
    pub sorted_ids: Vec<u32>,
    /// See [`TokenizerTables::merges`].
    pub merges: Vec<BpeMerge>,
    /// See [`TokenizerTables::scores`].
    pub scores: Vec<f32>,
    /// See [`TokenizerTables::specials`].
    pub specials: Vec<u32>,
    /// See [`TokenizerTables::eog`].
    pub eog: Vec<u32>,
    /// See [`TokenizerTables::byte_tokens`].
    pub byte_tokens: Vec<u32>,
    /// See [`TokenizerTables::bos`].
    pub bos: Option<u32>,
    /// See [`TokenizerTables::eos`].
    pub eos: Option<u32>,
    /// See [`TokenizerTables::eot`].
    pub eot: Option<u32>,
    /// See [`TokenizerTables::eom`].
    pub eom: Option<u32>,
    /// See [`TokenizerTables::pad`].
    pub pad: Option<u32>,
    /// See [`TokenizerTables::add_bos`].
    pub add_bos: bool,
    /// See [`TokenizerTables::add_eos`].
    pub add_eos: bool,
    /// See [`TokenizerTables::add_space_prefix`].
    pub add_space_prefix: bool,
    /// See [`TokenizerTables::ignore_merges`].
    pub ignore_merges: bool,
}

/// Pre-tokenizer names for which llama.cpp emits a word that is a whole token without merging.
const IGNORE_MERGES_PRE: &[&str] = &[
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "falcon-h1",
    "pixtral",
    "midm-2.0",
    "lfm2",
    "jina-v5-nano",
];

/// What the tokenizer model implies before the metadata's own values (llama.cpp's defaults).
struct Defaults {
    kind: TokenizerKind,
    pre: PreTokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
}

impl Defaults {
    /// The defaults of `tokenizer.ggml.model` (and, for byte-level BPE, of the pre-tokenizer).
    fn of(src: &TokenizerSource) -> Result<Defaults, TokenizerBuildError> {
        match src.model.as_str() {
            "gpt2" => {
                let name = src.pre.as_deref().unwrap_or("default");
                let pre = PreTokenizer::from_gguf_name(name)
                    .ok_or_else(|| TokenizerBuildError::UnsupportedPre(name.to_owned()))?;
                Ok(Defaults {
                    kind: TokenizerKind::Bpe,
                    pre,
                    bos: Some(11),
                    eos: Some(11),
                    // llama.cpp turns BOS on by default for the Llama 3 family only.
                    add_bos: IGNORE_MERGES_PRE.contains(&name),
                    add_eos: false,
                    add_space_prefix: false,
                })
            }
            "llama" => Ok(Defaults {
                kind: TokenizerKind::Spm,
                pre: PreTokenizer::None,
                bos: Some(1),
                eos: Some(2),
                add_bos: true,
                add_eos: false,
                add_space_prefix: true,
            }),
            m => Err(TokenizerBuildError::UnsupportedModel(m.to_owned())),
        }
    }
}

/// The raw bytes a byte-level BPE token text stands for, if every character is one of GPT-2's
/// 256 byte characters.
fn gpt2_decode(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| gpt2_cpt_to_byte(c as u32)).collect()
}

impl OwnedTokenizerTables {
    /// Tables with no tokens (no vocabulary, no byte tokens), for models of random weights:
    /// encoding fails, decoding finds no token.
    pub fn empty() -> OwnedTokenizerTables {
        OwnedTokenizerTables {
            kind: TokenizerKind::Bpe,
            pre: PreTokenizer::None,
            token_bytes: Vec::new(),
            token_offsets: vec![0],
            token_attrs: Vec::new(),
            sorted_ids: Vec::new(),
            merges: Vec::new(),
            scores: Vec::new(),
            specials: Vec::new(),
            eog: Vec::new(),
            byte_tokens: vec![NO_TOKEN; 256],
            bos: None,
            eos: None,
            eot: None,
            eom: None,
            pad: None,
            add_bos: false,
            add_eos: false,
            add_space_prefix: false,
            ignore_merges: false,
        }
    }

    /// Reads and builds the tables of a GGUF file.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<OwnedTokenizerTables, TokenizerBuildError> {
        Self::build(&TokenizerSource::from_gguf(g)?)
    }

    /// Builds the tables from tokenizer metadata, in steps (`steps`): attributes, text ids,
    /// marker fix-ups, end-of-generation set, specials, stored bytes and the sorted lookup,
    /// byte tokens, merges.
    pub fn build(src: &TokenizerSource) -> Result<OwnedTokenizerTables, TokenizerBuildError> {
        let n = src.tokens.len();
        if n == 0 {
            return Err(TokenizerBuildError::Missing("tokenizer.ggml.tokens"));
        }
        if n >= NO_TOKEN as usize {
            return Err(TokenizerBuildError::Invalid(format!("{n} tokens do not fit u32 ids")));
        }
        let d = Defaults::of(src)?;
        let kind = d.kind;
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let mut markers =
            Markers { eot: in_range(src.eot), eom: in_range(src.eom), fim: src.fim.map(in_range) };
        let mut attrs = token_attrs(src);
        let by_text = text_ids(src);
        mark_markers(&mut attrs, &by_text, &mut markers);
        let eos = in_range(src.eos.or(d.eos));
        let eog = eog_ids(&mut attrs, &by_text, eos, &markers);
        let specials = specials(src, &mut attrs, &by_text);
        let (token_bytes, token_offsets, sorted_ids) = stored_bytes(src, kind, &attrs, &by_text)?;
        let byte_tokens = byte_tokens(kind, (&token_bytes, &token_offsets), &sorted_ids, &by_text);
        let merges = match kind {
            TokenizerKind::Bpe => bpe_merges(src, &by_text),
            TokenizerKind::Spm => Vec::new(),
        };
        let scores = match kind {
            TokenizerKind::Spm => {
                (0..n).map(|i| src.scores.get(i).copied().unwrap_or(0.0)).collect()
            }
            TokenizerKind::Bpe => Vec::new(),
        };
        Ok(OwnedTokenizerTables {
            kind,
            pre: d.pre,
            token_bytes,
            token_offsets,
            token_attrs: attrs,
            sorted_ids,
            merges,
            scores,
            specials,
            eog,
            byte_tokens,
            bos: in_range(src.bos.or(d.bos)),
            eos,
            eot: markers.eot,
            eom: markers.eom,
            pad: in_range(src.pad),
            add_bos: src.add_bos.unwrap_or(d.add_bos),
            add_eos: src.add_eos.unwrap_or(d.add_eos),
            add_space_prefix: match kind {
                TokenizerKind::Spm => src.add_space_prefix.unwrap_or(d.add_space_prefix),
                TokenizerKind::Bpe => d.add_space_prefix,
            },
            ignore_merges: kind == TokenizerKind::Bpe
                && src.pre.as_deref().is_some_and(|p| IGNORE_MERGES_PRE.contains(&p)),
        })
    }

    /// The tables, borrowed in the runtime's form.
    pub fn tables(&self) -> TokenizerTables<'_> {
        TokenizerTables {
            kind: self.kind,
            pre: self.pre,
            token_bytes: &self.token_bytes,
            token_offsets: &self.token_offsets,
            token_attrs: &self.token_attrs,
            sorted_ids: &self.sorted_ids,
            merges: &self.merges,
            scores: &self.scores,
            specials: &self.specials,
            eog: &self.eog,
            byte_tokens: &self.byte_tokens,
            bos: self.bos,
            eos: self.eos,
            eot: self.eot,
            eom: self.eom,
            pad: self.pad,
            add_bos: self.add_bos,
            add_eos: self.add_eos,
            add_space_prefix: self.add_space_prefix,
            ignore_merges: self.ignore_merges,
        }
    }
}
