//! Tokenizer tables from GGUF metadata: the owned form of `npu_runtime::tokenizer::TokenizerTables`,
//! built from `tokenizer.ggml.*` keys, borrowable by the runtime and printable as Rust source
//! for code generation.
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
use std::fmt::{self, Write as _};
use steps::{bpe_merges, byte_tokens, specials, stored_bytes, text_ids, token_attrs};

mod steps;

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
            add_bos: g.get_bool("tokenizer.ggml.add_bos_token")?,
            add_eos: g.get_bool("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: g.get_bool("tokenizer.ggml.add_space_prefix")?,
            model_name: s("general.name")?,
        })
    }
}

/// Owned tokenizer tables: borrow them with [`tables`](Self::tables), print them with
/// [`to_rust_source`](Self::to_rust_source).
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

/// Token texts llama.cpp recognises as end-of-turn, end-of-message and fill-in-the-middle
/// markers and forces to control tokens; first list: end of turn, second: end of message.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_TEXTS: &[&[&str]] = &[
    &[
        "<|fim_prefix|>",
        "<fim-prefix>",
        "<fim_prefix>",
        "<｜fim▁begin｜>",
        "<PRE>",
        "▁<PRE>",
        "<|code_prefix|>",
        "<|prefix|>",
    ],
    &[
        "<|fim_suffix|>",
        "<fim-suffix>",
        "<fim_suffix>",
        "<｜fim▁hole｜>",
        "<SUF>",
        "▁<SUF>",
        "<|code_suffix|>",
        "<|suffix|>",
    ],
    &[
        "<|fim_middle|>",
        "<fim-middle>",
        "<fim_middle>",
        "<｜fim▁end｜>",
        "<MID>",
        "▁<MID>",
        "<|code_middle|>",
        "<|middle|>",
    ],
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
    &["<|file_sep|>"],
];

/// The raw bytes a byte-level BPE token text stands for, if every character is one of GPT-2's
/// 256 byte characters.
fn gpt2_decode(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| gpt2_cpt_to_byte(c as u32)).collect()
}

impl OwnedTokenizerTables {
    /// Reads and builds the tables of a GGUF file.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<OwnedTokenizerTables, TokenizerBuildError> {
        Self::build(&TokenizerSource::from_gguf(g)?)
    }

    /// Builds the tables from tokenizer metadata.
    pub fn build(src: &TokenizerSource) -> Result<OwnedTokenizerTables, TokenizerBuildError> {
        let n = src.tokens.len();
        if n == 0 {
            return Err(TokenizerBuildError::Missing("tokenizer.ggml.tokens"));
        }
        if n >= NO_TOKEN as usize {
            return Err(TokenizerBuildError::Invalid(format!("{n} tokens do not fit u32 ids")));
        }
        let (kind, pre, mut bos, mut eos, mut add_bos, mut add_eos, mut add_space_prefix) =
            match src.model.as_str() {
                "gpt2" => {
                    let name = src.pre.as_deref().unwrap_or("default");
                    let pre = PreTokenizer::from_gguf_name(name)
                        .ok_or_else(|| TokenizerBuildError::UnsupportedPre(name.to_owned()))?;
                    // llama.cpp turns BOS on by default for the Llama 3 family only.
                    let bos_default = IGNORE_MERGES_PRE.contains(&name);
                    (TokenizerKind::Bpe, pre, Some(11), Some(11), bos_default, false, false)
                }
                "llama" => {
                    (TokenizerKind::Spm, PreTokenizer::None, Some(1), Some(2), true, false, true)
                }
                m => return Err(TokenizerBuildError::UnsupportedModel(m.to_owned())),
            };
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        bos = in_range(src.bos.or(bos));
        eos = in_range(src.eos.or(eos));
        let mut eot = in_range(src.eot);
        let mut eom = in_range(src.eom);
        let pad = in_range(src.pad);
        add_bos = src.add_bos.unwrap_or(add_bos);
        add_eos = src.add_eos.unwrap_or(add_eos);
        if kind == TokenizerKind::Spm {
            add_space_prefix = src.add_space_prefix.unwrap_or(add_space_prefix);
        }
        let ignore_merges = kind == TokenizerKind::Bpe
            && src.pre.as_deref().is_some_and(|p| IGNORE_MERGES_PRE.contains(&p));

        let mut attrs = token_attrs(src);
        let by_text = text_ids(src);
        // llama.cpp's fix-ups by text: markers become control tokens (first match in list order
        // for each role the metadata leaves unset).
        let mut force_control = |texts: &[&str], slot: &mut Option<u32>| {
            if slot.is_none() {
                if let Some(&id) = texts.iter().find_map(|t| by_text.get(t)) {
                    *slot = Some(id);
                    attrs[id as usize] |= attr::CONTROL;
                }
            }
        };
        force_control(EOT_TEXTS, &mut eot);
        force_control(EOM_TEXTS, &mut eom);
        for texts in FIM_TEXTS {
            force_control(texts, &mut None);
        }
        let specials = specials(src, &mut attrs, &by_text);

        let (token_bytes, token_offsets, sorted_ids) = stored_bytes(src, kind, &attrs, &by_text)?;
        let byte_tokens = byte_tokens(kind, (&token_bytes, &token_offsets), &sorted_ids, &by_text);
        let merges = match kind {
            TokenizerKind::Bpe => bpe_merges(src, &by_text),
            TokenizerKind::Spm => Vec::new(),
        };
        let scores = if kind == TokenizerKind::Spm {
            (0..n).map(|i| src.scores.get(i).copied().unwrap_or(0.0)).collect()
        } else {
            Vec::new()
        };
        Ok(OwnedTokenizerTables {
            kind,
            pre,
            token_bytes,
            token_offsets,
            token_attrs: attrs,
            sorted_ids,
            merges,
            scores,
            specials,
            byte_tokens,
            bos,
            eos,
            eot,
            eom,
            pad,
            add_bos,
            add_eos,
            add_space_prefix,
            ignore_merges,
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

    /// Rust source for the tables: `static` arrays named `{PREFIX}_*` and a
    /// `pub static {PREFIX}: npu_runtime::tokenizer::TokenizerTables<'static>` over them.
    /// Deterministic: the same tables always print the same text.
    pub fn to_rust_source(&self, prefix: &str) -> String {
        let mut s = String::new();
        let rt = "::npu_runtime::tokenizer";
        let _ = writeln!(s, "// Tokenizer tables generated by npu-build; do not edit.");
        let arr =
            |s: &mut String, name: &str, ty: &str, items: &mut dyn Iterator<Item = String>| {
                let items: Vec<String> = items.collect();
                let _ = writeln!(s, "static {prefix}_{name}: [{ty}; {}] = [", items.len());
                for chunk in items.chunks(16) {
                    let _ = writeln!(s, "    {},", chunk.join(", "));
                }
                let _ = writeln!(s, "];");
            };
        arr(&mut s, "TOKEN_BYTES", "u8", &mut self.token_bytes.iter().map(|b| b.to_string()));
        arr(&mut s, "TOKEN_OFFSETS", "u32", &mut self.token_offsets.iter().map(|b| b.to_string()));
        arr(&mut s, "TOKEN_ATTRS", "u8", &mut self.token_attrs.iter().map(|b| b.to_string()));
        arr(&mut s, "SORTED_IDS", "u32", &mut self.sorted_ids.iter().map(|b| b.to_string()));
        arr(
            &mut s,
            "MERGES",
            &format!("{rt}::BpeMerge"),
            &mut self.merges.iter().map(|m| {
                format!(
                    "{rt}::BpeMerge {{ left: {}, right: {}, rank: {}, merged: {} }}",
                    m.left, m.right, m.rank, m.merged
                )
            }),
        );
        // Bit patterns keep every float exact (and NaN-safe) through the text form.
        arr(
            &mut s,
            "SCORES",
            "f32",
            &mut self.scores.iter().map(|x| format!("f32::from_bits(0x{:08x})", x.to_bits())),
        );
        arr(&mut s, "SPECIALS", "u32", &mut self.specials.iter().map(|b| b.to_string()));
        arr(&mut s, "BYTE_TOKENS", "u32", &mut self.byte_tokens.iter().map(|b| b.to_string()));
        let opt = |o: Option<u32>| o.map_or("None".to_owned(), |v| format!("Some({v})"));
        let kind = match self.kind {
            TokenizerKind::Bpe => "Bpe",
            TokenizerKind::Spm => "Spm",
        };
        let _ = writeln!(s, "/// The tokenizer tables.");
        let _ = writeln!(
            s,
            "pub static {prefix}: {rt}::TokenizerTables<'static> = {rt}::TokenizerTables {{"
        );
        let _ = writeln!(s, "    kind: {rt}::TokenizerKind::{kind},");
        let _ = writeln!(s, "    pre: {rt}::PreTokenizer::{:?},", self.pre);
        for f in [
            "token_bytes",
            "token_offsets",
            "token_attrs",
            "sorted_ids",
            "merges",
            "scores",
            "specials",
            "byte_tokens",
        ] {
            let _ = writeln!(s, "    {f}: &{prefix}_{},", f.to_uppercase());
        }
        let _ = writeln!(s, "    bos: {},", opt(self.bos));
        let _ = writeln!(s, "    eos: {},", opt(self.eos));
        let _ = writeln!(s, "    eot: {},", opt(self.eot));
        let _ = writeln!(s, "    eom: {},", opt(self.eom));
        let _ = writeln!(s, "    pad: {},", opt(self.pad));
        let _ = writeln!(s, "    add_bos: {},", self.add_bos);
        let _ = writeln!(s, "    add_eos: {},", self.add_eos);
        let _ = writeln!(s, "    add_space_prefix: {},", self.add_space_prefix);
        let _ = writeln!(s, "    ignore_merges: {},", self.ignore_merges);
        let _ = writeln!(s, "}};");
        s
    }
}
