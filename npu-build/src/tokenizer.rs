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
use std::collections::HashMap;
use std::fmt::{self, Write as _};

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

        // Attributes from token types.
        let mut attrs: Vec<u8> = (0..n)
            .map(|i| match src.token_types.get(i).copied().unwrap_or(1) {
                1 => attr::NORMAL,
                2 => attr::UNKNOWN,
                3 => attr::CONTROL,
                4 => attr::USER_DEFINED,
                5 => attr::UNUSED,
                6 => attr::BYTE,
                _ => 0,
            })
            .collect();
        // Text → id, the last id winning for duplicated texts as in llama.cpp's map.
        let mut by_text: HashMap<&str, u32> = HashMap::with_capacity(n);
        for (i, t) in src.tokens.iter().enumerate() {
            by_text.insert(t.as_str(), i as u32);
        }
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
        // Specials: control, user-defined and unknown tokens, longest first.
        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                attrs[i as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        specials.sort_by(|&a, &b| {
            src.tokens[b as usize].len().cmp(&src.tokens[a as usize].len()).then(a.cmp(&b))
        });
        // Phi-3: every special strips the whitespace after it, except <unk>, <s>, <|endoftext|>.
        let name = src.model_name.as_deref().unwrap_or("").to_lowercase();
        if name.contains("phi-3") || name.contains("phi3") {
            for &id in &specials {
                attrs[id as usize] |= attr::RSTRIP;
            }
            if let Some(&id) = by_text.get("</s>") {
                attrs[id as usize] |= attr::RSTRIP;
            }
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                if let Some(&id) = by_text.get(t) {
                    attrs[id as usize] &= !attr::RSTRIP;
                }
            }
        }

        // Stored bytes and the lookup set.
        let mut token_bytes = Vec::new();
        let mut token_offsets = Vec::with_capacity(n + 1);
        token_offsets.push(0u32);
        let mut lookup: Vec<u32> = Vec::new();
        for (i, text) in src.tokens.iter().enumerate() {
            let verbatim = attrs[i] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0;
            let (bytes, searchable) = match kind {
                TokenizerKind::Spm => (text.as_bytes().to_vec(), true),
                TokenizerKind::Bpe => match gpt2_decode(text) {
                    // A special's text is matched and rendered verbatim; it is still found by
                    // BPE when its decoded form is the same bytes.
                    Some(raw) if verbatim => {
                        let same = raw == text.as_bytes();
                        (text.as_bytes().to_vec(), same)
                    }
                    Some(raw) => (raw, true),
                    None => (text.as_bytes().to_vec(), false),
                },
            };
            // llama.cpp renames empty tokens so they cannot match anything.
            let searchable =
                searchable && !bytes.is_empty() && by_text.get(text.as_str()) == Some(&(i as u32));
            token_bytes.extend_from_slice(&bytes);
            token_offsets.push(u32::try_from(token_bytes.len()).map_err(|_| {
                TokenizerBuildError::Invalid("vocabulary larger than 4 GiB".into())
            })?);
            if searchable {
                lookup.push(i as u32);
            }
        }
        let tok = |id: u32| {
            &token_bytes
                [token_offsets[id as usize] as usize..token_offsets[id as usize + 1] as usize]
        };
        lookup.sort_by(|&a, &b| tok(a).cmp(tok(b)).then(a.cmp(&b)));
        // Equal bytes from different texts (possible only for SPM-unreachable corner cases):
        // keep the highest id, like a map filled in id order.
        let mut sorted_ids: Vec<u32> = Vec::with_capacity(lookup.len());
        for id in lookup {
            match sorted_ids.last() {
                Some(&last) if tok(last) == tok(id) => *sorted_ids.last_mut().unwrap() = id,
                _ => sorted_ids.push(id),
            }
        }

        let find = |bytes: &[u8]| -> Option<u32> {
            sorted_ids.binary_search_by(|&id| tok(id).cmp(bytes)).ok().map(|k| sorted_ids[k])
        };
        let mut byte_tokens = vec![NO_TOKEN; 256];
        for b in 0..=255u8 {
            byte_tokens[b as usize] = match kind {
                TokenizerKind::Bpe => find(&[b]).unwrap_or(NO_TOKEN),
                TokenizerKind::Spm => by_text
                    .get(format!("<0x{b:02X}>").as_str())
                    .copied()
                    .or_else(|| {
                        std::str::from_utf8(&[b]).ok().and_then(|s| by_text.get(s).copied())
                    })
                    .unwrap_or(NO_TOKEN),
            };
        }

        let mut merges = Vec::new();
        if kind == TokenizerKind::Bpe {
            let mut seen: HashMap<(u32, u32), usize> = HashMap::new();
            for (rank, m) in src.merges.iter().enumerate() {
                // Split at the first space after the first character, as llama.cpp does.
                let Some(pos) = m.char_indices().skip(1).find(|&(_, c)| c == ' ').map(|(p, _)| p)
                else {
                    continue;
                };
                let (l, r) = (&m[..pos], &m[pos + 1..]);
                let (Some(&li), Some(&ri)) = (by_text.get(l), by_text.get(r)) else { continue };
                let merged = by_text.get(format!("{l}{r}").as_str()).copied().unwrap_or(NO_TOKEN);
                // A repeated pair keeps its first rank (llama.cpp's map emplace keeps the first).
                if seen.insert((li, ri), rank).is_none() {
                    merges.push(BpeMerge { left: li, right: ri, rank: rank as u32, merged });
                }
            }
            merges.sort_by_key(|m| (m.left, m.right));
        }
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

    /// The slices in file order: 4-byte words first (`u32`, `f32`, [`BpeMerge`]), then bytes.
    fn parts(&self) -> [(&'static str, &'static str, Part<'_>); 8] {
        [
            ("token_offsets", "u32", Part::Words(&self.token_offsets)),
            ("sorted_ids", "u32", Part::Words(&self.sorted_ids)),
            ("merges", "::npu_runtime::tokenizer::BpeMerge", Part::Merges(&self.merges)),
            ("scores", "f32", Part::Floats(&self.scores)),
            ("specials", "u32", Part::Words(&self.specials)),
            ("byte_tokens", "u32", Part::Words(&self.byte_tokens)),
            ("token_bytes", "u8", Part::Bytes(&self.token_bytes)),
            ("token_attrs", "u8", Part::Bytes(&self.token_attrs)),
        ]
    }

    /// The sections of [`to_bytes`](Self::to_bytes), in file order (4-byte words first, then
    /// bytes); each starts on a [`TOKENIZER_ALIGN`] boundary.
    pub fn sections(&self) -> Vec<Section> {
        let mut at = 0usize;
        self.parts()
            .into_iter()
            .map(|(field, ty, part)| {
                let offset = at.div_ceil(TOKENIZER_ALIGN) * TOKENIZER_ALIGN;
                at = offset + part.byte_len();
                Section { field, ty, offset, len: part.len() }
            })
            .collect()
    }

    /// The tables' slices as one file, laid out as [`sections`](Self::sections) says, with
    /// integers and floats in little- or big-endian order (the compilation target's) and zero
    /// bytes between sections. Generated code includes it in a [`TOKENIZER_ALIGN`]-aligned
    /// static and borrows every slice in place. Deterministic.
    pub fn to_bytes(&self, little_endian: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let word = |out: &mut Vec<u8>, w: u32| {
            out.extend_from_slice(&if little_endian { w.to_le_bytes() } else { w.to_be_bytes() })
        };
        for (_, _, part) in self.parts() {
            out.resize(out.len().div_ceil(TOKENIZER_ALIGN) * TOKENIZER_ALIGN, 0);
            match part {
                Part::Words(v) => v.iter().for_each(|&w| word(&mut out, w)),
                Part::Floats(v) => v.iter().for_each(|x| word(&mut out, x.to_bits())),
                Part::Merges(v) => v
                    .iter()
                    .flat_map(|m| [m.left, m.right, m.rank, m.merged])
                    .for_each(|w| word(&mut out, w)),
                Part::Bytes(v) => out.extend_from_slice(v),
            }
        }
        out
    }

    /// Rust source for the tables over the bytes of [`to_bytes`](Self::to_bytes):
    /// `const {PREFIX}_LEN: usize` (the file's length) and
    /// `static {PREFIX}: npu_runtime::tokenizer::TokenizerTables<'static>` whose slices borrow
    /// `{PREFIX}_STORE.0`, a `[u8; {PREFIX}_LEN]` in a `#[repr(C, align(16))]` wrapper that the
    /// including code defines (see [`store_source`]). Every section's bounds and alignment are
    /// checked by rustc when it evaluates the static. Deterministic.
    pub fn to_rust_source(&self, prefix: &str) -> String {
        let mut s = String::new();
        let rt = "::npu_runtime::tokenizer";
        let sections = self.sections();
        let total = sections.last().map_or(0, |s| s.offset + s.len);
        let _ = writeln!(s, "// Tokenizer tables: {} tokens, {} merges, borrowed from {prefix}_STORE ({total} bytes).", self.token_offsets.len().saturating_sub(1), self.merges.len());
        let _ = writeln!(s, "const {prefix}_LEN: usize = {total};");
        s.push_str(SECTION_FN);
        let opt = |o: Option<u32>| o.map_or("None".to_owned(), |v| format!("Some({v})"));
        let kind = match self.kind {
            TokenizerKind::Bpe => "Bpe",
            TokenizerKind::Spm => "Spm",
        };
        let _ = writeln!(
            s,
            "static {prefix}: {rt}::TokenizerTables<'static> = {rt}::TokenizerTables {{"
        );
        let _ = writeln!(s, "    kind: {rt}::TokenizerKind::{kind},");
        let _ = writeln!(s, "    pre: {rt}::PreTokenizer::{:?},", self.pre);
        let mut fields: Vec<&Section> = sections.iter().collect();
        fields.sort_by_key(|f| FIELD_ORDER.iter().position(|&n| n == f.field));
        for f in fields {
            let _ = writeln!(
                s,
                "    {}: npu_tok_section::<{}>(&{prefix}_STORE.0, {}, {}),",
                f.field, f.ty, f.offset, f.len
            );
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

/// Alignment of the tokenizer file's storage and of each of its sections.
pub const TOKENIZER_ALIGN: usize = 16;

/// A slice of the tables, by element type.
enum Part<'a> {
    Words(&'a [u32]),
    Floats(&'a [f32]),
    Merges(&'a [BpeMerge]),
    Bytes(&'a [u8]),
}

impl Part<'_> {
    fn len(&self) -> usize {
        match self {
            Part::Words(v) => v.len(),
            Part::Floats(v) => v.len(),
            Part::Merges(v) => v.len(),
            Part::Bytes(v) => v.len(),
        }
    }

    fn byte_len(&self) -> usize {
        match self {
            Part::Words(_) | Part::Floats(_) => 4 * self.len(),
            Part::Merges(_) => 16 * self.len(),
            Part::Bytes(_) => self.len(),
        }
    }
}

/// One slice of the tokenizer file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// The `TokenizerTables` field it backs.
    pub field: &'static str,
    /// Element type, as written in generated code.
    pub ty: &'static str,
    /// Byte offset in the file (a multiple of [`TOKENIZER_ALIGN`]).
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
}

/// `TokenizerTables`' slice fields in declaration order (the generated literal follows it).
const FIELD_ORDER: [&str; 8] = [
    "token_bytes",
    "token_offsets",
    "token_attrs",
    "sorted_ids",
    "merges",
    "scores",
    "specials",
    "byte_tokens",
];

// Borrows `len` elements at byte `offset` of the included file, for a static initializer:
// rustc rejects the build if a section lies outside the file or is misaligned for `T` (the
// storage is 16-byte aligned and so is every section). `T` is u8, u32, f32 or BpeMerge, for
// which every bit pattern is a valid value.
const SECTION_FN: &str = "const fn npu_tok_section<T>(file: &'static [u8], offset: usize, len: usize) -> &'static [T] {
    ::core::assert!(
        offset.is_multiple_of(::core::mem::align_of::<T>()) && offset <= file.len() && len <= (file.len() - offset) / ::core::mem::size_of::<T>(),
        \"npu-model: a tokenizer section lies outside the included file or is misaligned\"
    );
    // SAFETY: in bounds and aligned (checked above; the storage is 16-byte aligned); the bytes
    // are immutable for 'static and every bit pattern is a valid T.
    unsafe { ::core::slice::from_raw_parts(file.as_ptr().add(offset).cast::<T>(), len) }
}
";

/// Rust source of the storage [`OwnedTokenizerTables::to_rust_source`] borrows from:
/// `{prefix}_STORE`, the file `OUT_DIR/{file}` included into a 16-byte aligned static.
pub fn store_source(prefix: &str, file: &str) -> String {
    format!(
        "#[repr(C, align({TOKENIZER_ALIGN}))]\nstruct NpuTokStore<T: ?Sized>(T);\nstatic {prefix}_STORE: NpuTokStore<[u8; {prefix}_LEN]> = NpuTokStore(*::core::include_bytes!(::core::concat!(::core::env!(\"OUT_DIR\"), \"/{file}\")));\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> OwnedTokenizerTables {
        let src = TokenizerSource {
            model: "gpt2".into(),
            pre: Some("qwen2".into()),
            tokens: ["a", "b", "ab", "c", "abc", "<|im_end|>"].map(String::from).to_vec(),
            token_types: vec![1, 1, 1, 1, 1, 3],
            merges: vec!["a b".into(), "ab c".into()],
            eos: Some(5),
            ..TokenizerSource::default()
        };
        OwnedTokenizerTables::build(&src).unwrap()
    }

    /// Reads the sections of `to_bytes` back the way the generated code borrows them.
    fn words(bytes: &[u8], s: &Section, per: usize, le: bool) -> Vec<u32> {
        bytes[s.offset..s.offset + 4 * per * s.len]
            .chunks_exact(4)
            .map(|w| {
                let w = [w[0], w[1], w[2], w[3]];
                if le {
                    u32::from_le_bytes(w)
                } else {
                    u32::from_be_bytes(w)
                }
            })
            .collect()
    }

    #[test]
    fn bytes_hold_every_table_at_its_section() {
        let t = small();
        assert!(!t.merges.is_empty() && !t.specials.is_empty());
        for le in [true, false] {
            let bytes = t.to_bytes(le);
            let secs = t.sections();
            assert_eq!(secs.len(), FIELD_ORDER.len());
            assert_eq!(bytes.len(), secs.last().map(|s| s.offset + s.len).unwrap());
            for s in &secs {
                assert_eq!(s.offset % TOKENIZER_ALIGN, 0, "{}", s.field);
                match s.field {
                    "token_offsets" => assert_eq!(words(&bytes, s, 1, le), t.token_offsets),
                    "sorted_ids" => assert_eq!(words(&bytes, s, 1, le), t.sorted_ids),
                    "specials" => assert_eq!(words(&bytes, s, 1, le), t.specials),
                    "byte_tokens" => assert_eq!(words(&bytes, s, 1, le), t.byte_tokens),
                    "scores" => assert!(s.len == 0 && t.scores.is_empty()),
                    "merges" => {
                        let w = words(&bytes, s, 4, le);
                        let m: Vec<BpeMerge> = w
                            .chunks_exact(4)
                            .map(|c| BpeMerge { left: c[0], right: c[1], rank: c[2], merged: c[3] })
                            .collect();
                        assert_eq!(m, t.merges);
                    }
                    "token_bytes" => {
                        assert_eq!(&bytes[s.offset..s.offset + s.len], &t.token_bytes[..])
                    }
                    "token_attrs" => {
                        assert_eq!(&bytes[s.offset..s.offset + s.len], &t.token_attrs[..])
                    }
                    other => panic!("unexpected section {other}"),
                }
            }
        }
        assert_eq!(t.to_bytes(true), small().to_bytes(true), "deterministic");
    }

    #[test]
    fn source_names_each_section_once() {
        let t = small();
        let src = t.to_rust_source("TOK");
        for s in t.sections() {
            let line = format!(
                "    {}: npu_tok_section::<{}>(&TOK_STORE.0, {}, {}),",
                s.field, s.ty, s.offset, s.len
            );
            assert_eq!(src.matches(&line).count(), 1, "{line}\n{src}");
        }
        assert!(store_source("TOK", "npu-model/X.tok").contains("\"/npu-model/X.tok\""));
    }
}
