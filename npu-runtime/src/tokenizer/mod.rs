//! Tokenizers over static tables: GPT-2 byte-level BPE (with the pre-tokenizers of common
//! models) and SentencePiece BPE, giving the token ids llama.cpp gives.
//!
//! The tables ([`TokenizerTables`]) are plain borrowed slices: `npu-build` writes them at build
//! time as one byte file the generated code includes and borrows in place (integers in the
//! target's byte order), or builds them at run time from a GGUF. Nothing here allocates:
//! encoding writes ids into a caller's slice (or calls a sink) and works in caller-provided
//! scratch, string → id lookups are binary searches over a sorted id list, merge lookups are
//! binary searches over a sorted pair list. Every failure is a [`TokenizerError`].
//!
//! What llama.cpp does that this module does on purpose too:
//! - special tokens are cut out of the text first, longest first (user-defined tokens always,
//!   control tokens only when the caller asks to parse specials), without recursion: the
//!   splitter's stack is in the caller's scratch (`special`);
//! - invalid UTF-8 in the input becomes U+FFFD before byte-level BPE sees it;
//! - SentencePiece prepends a space to the first fragment and to each fragment after a special
//!   token, and falls back to `<0xXX>` byte tokens.
//!
//! Decoding ([`Tokenizer::piece`]) gives a token's bytes as llama.cpp's `token_to_piece` does;
//! [`Utf8Stream`] turns a stream of pieces into text without ever splitting a character.

mod decode;
mod error;
mod merge;
mod pretok;
mod special;
mod tables;
mod unicode;

pub use decode::Utf8Stream;
pub use error::TokenizerError;
pub use merge::scratch_words;
pub use pretok::PreTokenizer;
pub use tables::{attr, BpeMerge, TokenizerKind, TokenizerTables, NO_TOKEN};
pub use unicode::{gpt2_cpt_to_byte, GPT2_BYTE_TO_CPT};

use special::{FirstBytes, Piece, Splitter, FRAME_WORDS};

/// Encoding options, as llama.cpp's `llama_tokenize` takes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Add BOS/EOS as the vocabulary asks (`add_bos`, `add_eos`).
    pub add_special: bool,
    /// Match control tokens (e.g. `<|im_start|>`) written in the text as their single ids.
    pub parse_special: bool,
}

/// A tokenizer over validated tables.
#[derive(Clone, Copy, Debug)]
pub struct Tokenizer<'a> {
    t: TokenizerTables<'a>,
    max_token_len: usize,
    first: FirstBytes,
}

impl<'a> Tokenizer<'a> {
    /// Checks the tables once (so that encoding and decoding can index them freely) and
    /// wraps them.
    pub fn new(t: TokenizerTables<'a>) -> Result<Tokenizer<'a>, TokenizerError> {
        let n = t.n_tokens();
        if t.token_offsets.is_empty() || t.token_offsets[0] != 0 {
            return Err(TokenizerError::BadTables("token_offsets must start at 0"));
        }
        let mut max_len = 0usize;
        for w in t.token_offsets.windows(2) {
            if w[1] < w[0] {
                return Err(TokenizerError::BadTables("token_offsets must not decrease"));
            }
            max_len = max_len.max((w[1] - w[0]) as usize);
        }
        if *t.token_offsets.last().unwrap_or(&0) as usize != t.token_bytes.len() {
            return Err(TokenizerError::BadTables("token_offsets must end at token_bytes' length"));
        }
        if max_len > 0x7FFF {
            return Err(TokenizerError::BadTables("a token is longer than 32767 bytes"));
        }
        if t.token_attrs.len() != n {
            return Err(TokenizerError::BadTables("token_attrs must have one entry per token"));
        }
        if t.byte_tokens.len() != 256 {
            return Err(TokenizerError::BadTables("byte_tokens must have 256 entries"));
        }
        let in_vocab = |id: u32| (id as usize) < n;
        if !t.byte_tokens.iter().all(|&id| id == NO_TOKEN || in_vocab(id)) {
            return Err(TokenizerError::BadTables("byte_tokens has an id outside the vocabulary"));
        }
        if !t.sorted_ids.iter().all(|&id| in_vocab(id))
            || !t.specials.iter().all(|&id| in_vocab(id))
            || !t.eog.iter().all(|&id| in_vocab(id))
        {
            return Err(TokenizerError::BadTables(
                "sorted_ids, specials or eog has an id outside the vocabulary",
            ));
        }
        let tok = |id: u32| t.token(id).unwrap_or(&[]);
        if !t.sorted_ids.windows(2).all(|w| tok(w[0]) < tok(w[1])) {
            return Err(TokenizerError::BadTables(
                "sorted_ids must be strictly sorted by token bytes",
            ));
        }
        if !t.specials.windows(2).all(|w| tok(w[0]) < tok(w[1]))
            || t.specials.first().is_some_and(|&id| tok(id).is_empty())
        {
            return Err(TokenizerError::BadTables(
                "specials must be strictly sorted by token bytes, none empty",
            ));
        }
        if !t.eog.windows(2).all(|w| w[0] < w[1]) {
            return Err(TokenizerError::BadTables("eog must be strictly increasing"));
        }
        if !t.merges.iter().all(|m| {
            in_vocab(m.left) && in_vocab(m.right) && (m.merged == NO_TOKEN || in_vocab(m.merged))
        }) {
            return Err(TokenizerError::BadTables("a merge has an id outside the vocabulary"));
        }
        if !t.merges.windows(2).all(|w| (w[0].left, w[0].right) < (w[1].left, w[1].right)) {
            return Err(TokenizerError::BadTables(
                "merges must be strictly sorted by (left, right)",
            ));
        }
        if t.kind == TokenizerKind::Spm && t.scores.len() != n {
            return Err(TokenizerError::BadTables("SPM needs one score per token"));
        }
        for id in [t.bos, t.eos, t.eot, t.eom, t.pad].into_iter().flatten() {
            if !in_vocab(id) {
                return Err(TokenizerError::BadTables("a special id is outside the vocabulary"));
            }
        }
        Ok(Tokenizer { t, max_token_len: max_len, first: FirstBytes::of(&t) })
    }

    /// The tables.
    pub fn tables(&self) -> &TokenizerTables<'a> {
        &self.t
    }

    /// Longest token, in bytes (an upper bound on any [`piece`](Self::piece)).
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }

    /// Scratch words that are always enough to encode a text of `text_len` bytes.
    pub const fn scratch_words_for(text_len: usize) -> usize {
        // SPM escapes each space as three bytes and may prepend one; BPE words re-encode each
        // invalid byte as U+FFFD (three bytes). The special-token splitter nests at most one
        // frame per byte.
        scratch_words(3 * text_len + 3) + FRAME_WORDS * text_len
    }

    /// Encodes `text` into `out`, returning the number of ids written. `scratch` is working
    /// memory (see [`scratch_words`]).
    pub fn encode(
        &self,
        text: &[u8],
        opts: EncodeOptions,
        scratch: &mut [u32],
        out: &mut [u32],
    ) -> Result<usize, TokenizerError> {
        let mut n = 0usize;
        let cap = out.len();
        self.encode_with(text, opts, scratch, &mut |id| {
            let slot = out.get_mut(n).ok_or(TokenizerError::OutputFull { capacity: cap })?;
            *slot = id;
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }

    /// Encodes `text` into a new vector (`std` only; the no-alloc path is [`encode_with`]).
    ///
    /// [`encode_with`]: Self::encode_with
    #[cfg(feature = "std")]
    pub fn encode_vec(
        &self,
        text: &[u8],
        opts: EncodeOptions,
    ) -> Result<std::vec::Vec<u32>, TokenizerError> {
        let mut scratch = std::vec![0u32; Self::scratch_words_for(text.len())];
        let mut ids = std::vec::Vec::new();
        self.encode_with(text, opts, &mut scratch, &mut |id| {
            ids.push(id);
            Ok(())
        })?;
        Ok(ids)
    }

    /// Encodes `text`, handing each id to `sink` in order (for outputs of unknown length).
    pub fn encode_with(
        &self,
        text: &[u8],
        opts: EncodeOptions,
        scratch: &mut [u32],
        sink: &mut impl FnMut(u32) -> Result<(), TokenizerError>,
    ) -> Result<(), TokenizerError> {
        let t = &self.t;
        if opts.add_special && t.add_bos {
            sink(t.bos.ok_or(TokenizerError::MissingSpecial("BOS"))?)?;
        }
        // SPM prefixes a space to a fragment at the start and after each special token.
        let mut prev_special = true;
        let mut on_piece = |piece: Piece<'_>, free: &mut [u32]| -> Result<(), TokenizerError> {
            match piece {
                Piece::Special(id) => {
                    prev_special = true;
                    sink(id)
                }
                Piece::Text(frag) => {
                    let prefix = t.add_space_prefix && prev_special;
                    prev_special = false;
                    self.encode_fragment(frag, prefix, free, sink)
                }
            }
        };
        let splitter = Splitter { t, first: &self.first, parse_special: opts.parse_special };
        splitter.split(text, scratch, &mut on_piece)?;
        if opts.add_special && t.add_eos {
            sink(t.eos.ok_or(TokenizerError::MissingSpecial("EOS"))?)?;
        }
        Ok(())
    }

    fn encode_fragment(
        &self,
        frag: &[u8],
        space_prefix: bool,
        scratch: &mut [u32],
        sink: &mut impl FnMut(u32) -> Result<(), TokenizerError>,
    ) -> Result<(), TokenizerError> {
        let t = &self.t;
        match t.kind {
            TokenizerKind::Spm => {
                let n = usize::from(space_prefix) * 3
                    + frag.len()
                    + 2 * frag.iter().filter(|&&b| b == b' ').count();
                let fill = |dst: &mut [u32]| {
                    let mut i = 0;
                    let mut put = |b: u8| {
                        dst[i] = b as u32;
                        i += 1;
                    };
                    let space = |put: &mut dyn FnMut(u8)| {
                        put(0xE2);
                        put(0x96);
                        put(0x81);
                    };
                    if space_prefix {
                        space(&mut put);
                    }
                    for &b in frag {
                        if b == b' ' {
                            space(&mut put);
                        } else {
                            put(b);
                        }
                    }
                };
                merge::spm_fragment(t, merge::Input { n, fill }, scratch, sink)
            }
            TokenizerKind::Bpe => pretok::split(t.pre, frag, &mut |s, e| {
                let word = &frag[s..e];
                let n = reencoded_len(word);
                merge::bpe_word(
                    t,
                    merge::Input {
                        n,
                        fill: |dst: &mut [u32]| {
                            if n == word.len() && core::str::from_utf8(word).is_ok() {
                                for (d, &b) in dst.iter_mut().zip(word) {
                                    *d = b as u32;
                                }
                            } else {
                                let mut i = 0;
                                let mut p = 0;
                                while p < word.len() {
                                    let (c, l) = unicode::decode_at(word, p);
                                    let mut buf = [0u8; 4];
                                    let k = unicode::encode_utf8(c, &mut buf);
                                    for &b in &buf[..k] {
                                        dst[i] = b as u32;
                                        i += 1;
                                    }
                                    p += l;
                                }
                            }
                        },
                    },
                    scratch,
                    sink,
                )
            }),
        }
    }

    /// Token `id`'s text as llama.cpp's `token_to_piece` renders it: BPE bytes, SPM text with
    /// `▁` as space, a byte token's byte; control and unknown tokens only when `special`.
    /// `lstrip_space` drops one leading space (llama.cpp does so for the first token of an
    /// SPM text). Writes into `out`, returning the length.
    pub fn piece(
        &self,
        id: u32,
        special: bool,
        lstrip_space: bool,
        out: &mut [u8],
    ) -> Result<usize, TokenizerError> {
        let t = &self.t;
        let a = t.attrs(id).ok_or(TokenizerError::BadTokenId(id))?;
        let tok = t.token(id).ok_or(TokenizerError::BadTokenId(id))?;
        let mut n = 0usize;
        let cap = out.len();
        let mut put = |bytes: &[u8]| -> Result<(), TokenizerError> {
            let dst = out
                .get_mut(n..n + bytes.len())
                .ok_or(TokenizerError::OutputFull { capacity: cap })?;
            dst.copy_from_slice(bytes);
            n += bytes.len();
            Ok(())
        };
        if a & (attr::CONTROL | attr::UNKNOWN) != 0 && !special {
            return Ok(0);
        }
        if a & (attr::CONTROL | attr::UNKNOWN | attr::USER_DEFINED) != 0 {
            put(tok)?;
        } else if a & attr::NORMAL != 0 && t.kind == TokenizerKind::Spm {
            // `▁` is a space; the rest is the text itself.
            let mut rest = tok;
            while !rest.is_empty() {
                if rest.starts_with("\u{2581}".as_bytes()) {
                    put(b" ")?;
                    rest = &rest[3..];
                } else {
                    let k = rest[1..].iter().position(|&b| b == 0xE2).map_or(rest.len(), |k| k + 1);
                    put(&rest[..k])?;
                    rest = &rest[k..];
                }
            }
        } else if a & attr::NORMAL != 0 {
            put(tok)?;
        } else if a & attr::BYTE != 0 {
            match parse_byte_token(tok) {
                Some(b) => put(&[b])?,
                None => put(tok)?,
            }
        }
        if lstrip_space && n > 0 && out[0] == b' ' {
            out.copy_within(1..n, 0);
            n -= 1;
        }
        Ok(n)
    }
}

/// Length of `word` after llama.cpp's lenient decode and re-encode.
fn reencoded_len(word: &[u8]) -> usize {
    if word.is_ascii() {
        return word.len();
    }
    let mut n = 0;
    let mut p = 0;
    while p < word.len() {
        let (c, l) = unicode::decode_at(word, p);
        let mut buf = [0u8; 4];
        n += unicode::encode_utf8(c, &mut buf);
        p += l;
    }
    n
}

/// `<0xXX>` → the byte.
fn parse_byte_token(tok: &[u8]) -> Option<u8> {
    if tok.len() != 6 || !tok.starts_with(b"<0x") || tok[5] != b'>' {
        return None;
    }
    let hex = |c: u8| (c as char).to_digit(16);
    Some((hex(tok[3])? * 16 + hex(tok[4])?) as u8)
}
