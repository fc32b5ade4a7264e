//! Why tokenizing or detokenizing failed.

use core::fmt;

/// Why tokenizing or detokenizing failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerError {
    /// The output slice is full; `needed` is at least how many ids the text has.
    OutputFull {
        /// Capacity given.
        capacity: usize,
    },
    /// The scratch slice is too small for a word (BPE) or fragment (SPM); size it with
    /// [`super::scratch_words`] of the longest input (or [`super::Tokenizer::scratch_words_for`]).
    ScratchTooSmall {
        /// Words needed.
        needed: usize,
        /// Words given.
        got: usize,
    },
    /// A token id outside the vocabulary.
    BadTokenId(u32),
    /// The vocabulary has no token for this byte (SPM byte fallback).
    NoByteToken(u8),
    /// `add_special` needs a BOS/EOS id the tables do not have.
    MissingSpecial(&'static str),
    /// The text is longer than `u32::MAX` bytes.
    TextTooLong(usize),
    /// The tables are inconsistent (what is wrong).
    BadTables(&'static str),
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TokenizerError::OutputFull { capacity } => {
                write!(f, "token output full ({capacity} ids)")
            }
            TokenizerError::ScratchTooSmall { needed, got } => {
                write!(f, "tokenizer scratch too small: {needed} words needed, {got} given")
            }
            TokenizerError::BadTokenId(id) => write!(f, "token id {id} is outside the vocabulary"),
            TokenizerError::NoByteToken(b) => {
                write!(f, "the vocabulary has no token for byte 0x{b:02X}")
            }
            TokenizerError::MissingSpecial(w) => write!(f, "the vocabulary has no {w} token"),
            TokenizerError::TextTooLong(n) => {
                write!(f, "text of {n} bytes is longer than the tokenizer's limit of 4 GiB")
            }
            TokenizerError::BadTables(w) => write!(f, "inconsistent tokenizer tables: {w}"),
        }
    }
}

impl core::error::Error for TokenizerError {}
