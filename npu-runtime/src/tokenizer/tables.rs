//! The tables a tokenizer runs on: borrowed slices (static in generated code, or owned by
//! the caller), with id and string lookups.

use super::pretok::PreTokenizer;
use core::cmp::Ordering;

/// "No token" in id tables (e.g. a byte with no token of its own).
pub const NO_TOKEN: u32 = u32::MAX;

/// Which tokenization algorithm a vocabulary uses (`tokenizer.ggml.model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenizerKind {
    /// GPT-2 byte-level BPE (`gpt2`): ranked merges over bytes, after a pre-tokenizer.
    Bpe,
    /// SentencePiece BPE (`llama`): score-ranked merges over characters, byte fallback.
    Spm,
}

/// Per-token attribute bits (from `tokenizer.ggml.token_type`, plus llama.cpp's per-model
/// fix-ups), one byte per token in [`TokenizerTables::token_attrs`].
pub mod attr {
    /// An ordinary token.
    pub const NORMAL: u8 = 1 << 0;
    /// The unknown token.
    pub const UNKNOWN: u8 = 1 << 1;
    /// A control token (BOS, EOS, chat markers): matched in text only when parsing specials,
    /// rendered only when asked.
    pub const CONTROL: u8 = 1 << 2;
    /// A user-defined token: always matched in text as a whole, rendered as its text.
    pub const USER_DEFINED: u8 = 1 << 3;
    /// A byte token (`<0xXX>`).
    pub const BYTE: u8 = 1 << 4;
    /// An unused token.
    pub const UNUSED: u8 = 1 << 5;
    /// When matched as a special, whitespace before it is dropped.
    pub const LSTRIP: u8 = 1 << 6;
    /// When matched as a special, whitespace after it is dropped.
    pub const RSTRIP: u8 = 1 << 7;
}

/// One BPE merge rule: the pair (left, right) becomes `merged`, in order of `rank`.
/// `repr(C)`: four `u32` in field order (16 bytes), so generated code can borrow a table of
/// them straight from included bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct BpeMerge {
    /// Left token id.
    pub left: u32,
    /// Right token id.
    pub right: u32,
    /// Priority: lower merges first.
    pub rank: u32,
    /// The merged token's id, or [`NO_TOKEN`] if the merged text is not a token.
    pub merged: u32,
}

/// The static tables a tokenizer runs on. Build them with `npu-build`'s tokenizer module.
#[derive(Clone, Copy, Debug)]
pub struct TokenizerTables<'a> {
    /// Algorithm.
    pub kind: TokenizerKind,
    /// Pre-tokenizer (BPE; [`PreTokenizer::None`] for SPM).
    pub pre: PreTokenizer,
    /// Every token's bytes, concatenated: for BPE the raw bytes a token stands for (GPT-2's
    /// byte-to-unicode mapping undone), for SPM its text (`▁` for space); control and
    /// user-defined tokens, and tokens that are not byte-level text, keep their text as is.
    pub token_bytes: &'a [u8],
    /// Token `i`'s bytes are `token_bytes[token_offsets[i]..token_offsets[i + 1]]`.
    pub token_offsets: &'a [u32],
    /// Per-token [`attr`] bits.
    pub token_attrs: &'a [u8],
    /// Ids of the tokens text can be looked up as, sorted by their bytes (byte order).
    pub sorted_ids: &'a [u32],
    /// BPE merges sorted by (left, right).
    pub merges: &'a [BpeMerge],
    /// SPM per-token scores (empty for BPE).
    pub scores: &'a [f32],
    /// Tokens matched in raw text before tokenizing (control, user-defined, unknown; none
    /// with empty text; of tokens with the same text the lowest id), sorted by their bytes.
    /// Their rank when cutting a text: longer first, then lower id.
    pub specials: &'a [u32],
    /// End-of-generation tokens, ascending: llama.cpp's set (EOS, EOT, EOM, the FIM pad,
    /// repository and file-separator tokens, and tokens with known end-of-turn texts).
    pub eog: &'a [u32],
    /// 256 entries: the token of each single byte (BPE: the byte's own token; SPM: `<0xXX>`),
    /// or [`NO_TOKEN`].
    pub byte_tokens: &'a [u32],
    /// Beginning-of-sequence token.
    pub bos: Option<u32>,
    /// End-of-sequence token.
    pub eos: Option<u32>,
    /// End-of-turn token (`<|im_end|>`, `<|eot_id|>`...).
    pub eot: Option<u32>,
    /// End-of-message token (`<|eom_id|>`).
    pub eom: Option<u32>,
    /// Padding token.
    pub pad: Option<u32>,
    /// Add BOS when encoding with `add_special`.
    pub add_bos: bool,
    /// Add EOS when encoding with `add_special`.
    pub add_eos: bool,
    /// SPM: prepend a space to the text (and after each special token).
    pub add_space_prefix: bool,
    /// BPE: a word that is a token as a whole is emitted without merging (Llama 3).
    pub ignore_merges: bool,
}

impl<'a> TokenizerTables<'a> {
    /// Number of tokens.
    pub fn n_tokens(&self) -> usize {
        self.token_offsets.len().saturating_sub(1)
    }

    /// Token `id`'s stored bytes (see [`token_bytes`](Self::token_bytes)).
    pub fn token(&self, id: u32) -> Option<&'a [u8]> {
        let i = id as usize;
        let (s, e) =
            (*self.token_offsets.get(i)? as usize, *self.token_offsets.get(i + 1)? as usize);
        self.token_bytes.get(s..e)
    }

    /// Token `id`'s attribute bits.
    pub fn attrs(&self, id: u32) -> Option<u8> {
        self.token_attrs.get(id as usize).copied()
    }

    /// The token whose lookup bytes are exactly `bytes`.
    pub fn lookup(&self, bytes: &[u8]) -> Option<u32> {
        self.lookup_iter(|| bytes.iter().copied())
    }

    /// [`lookup`](Self::lookup) for bytes given as an iterator (re-created for each probe).
    pub(crate) fn lookup_iter<I: Iterator<Item = u8>>(&self, key: impl Fn() -> I) -> Option<u32> {
        let mut lo = 0usize;
        let mut hi = self.sorted_ids.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let id = self.sorted_ids[mid];
            let tok = self.token(id).unwrap_or(&[]);
            match tok.iter().copied().cmp(key()) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(id),
            }
        }
        None
    }

    /// Whether `id` ends generation: in [`eog`](Self::eog), or EOS, EOT or EOM.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
            || Some(id) == self.eos
            || Some(id) == self.eot
            || Some(id) == self.eom
    }
}
