//! Cutting special tokens out of a text before tokenizing, with the result of llama.cpp's
//! `tokenizer_st_partition`: for each special in rank order (longer text first, then lower
//! id), every remaining text fragment is split at each of its occurrences (leftmost first, not
//! overlapping); user-defined tokens always take part, control and unknown tokens only when
//! parsing specials.
//!
//! Done here depth first and without recursion: a fragment is split by the best-ranked special
//! that occurs in it, and each piece between its occurrences is split in turn by specials
//! ranked after that one. The pieces still to visit are frames on a stack kept at the end of
//! the caller's scratch (a frame's fragment strictly contains its child's, so a text of `n`
//! bytes never nests deeper than `n` frames, nor deeper than the number of specials).
//!
//! Which specials occur where is found by walking [`TokenizerTables::specials`] (sorted by
//! bytes) as a trie: the ids whose text starts with the bytes read so far are one contiguous
//! run of that list, narrowed by binary search one byte at a time.

use super::{attr, TokenizerError, TokenizerTables};

/// Scratch words per frame of the splitter's stack.
pub(super) const FRAME_WORDS: usize = 4;

/// A piece of the text after cutting out special tokens.
pub(super) enum Piece<'t> {
    /// Text to tokenize.
    Text(&'t [u8]),
    /// A special token's id.
    Special(u32),
}

/// Bitmap of the bytes some special token starts with (a fast "no special here").
#[derive(Clone, Copy, Debug)]
pub(super) struct FirstBytes([u32; 8]);

impl FirstBytes {
    /// The first bytes of every special in `t`.
    pub(super) fn of(t: &TokenizerTables<'_>) -> FirstBytes {
        let mut bits = [0u32; 8];
        for &id in t.specials {
            if let Some(&b) = t.token(id).and_then(|s| s.first()) {
                bits[b as usize / 32] |= 1 << (b % 32);
            }
        }
        FirstBytes(bits)
    }

    fn has(&self, b: u8) -> bool {
        self.0[b as usize / 32] & (1 << (b % 32)) != 0
    }
}

/// One fragment being split by `special`: `cur..end` is what is left of it; `at_match` says
/// `cur` is an occurrence whose left piece is done and whose token is still to be emitted.
#[derive(Clone, Copy)]
struct Frame {
    special: u32,
    cur: u32,
    end: u32,
    at_match: bool,
}

/// The frame stack, growing down from the end of the scratch; the words below it are free for
/// tokenizing text pieces.
struct Stack<'s> {
    words: &'s mut [u32],
    depth: usize,
}

impl Stack<'_> {
    fn base(&self, k: usize) -> usize {
        self.words.len() - FRAME_WORDS * (k + 1)
    }

    fn push(&mut self, f: Frame) -> Result<(), TokenizerError> {
        let need = FRAME_WORDS * (self.depth + 1);
        if need > self.words.len() {
            return Err(TokenizerError::ScratchTooSmall { needed: need, got: self.words.len() });
        }
        self.depth += 1;
        self.set_top(f);
        Ok(())
    }

    fn top(&self) -> Option<Frame> {
        let k = self.depth.checked_sub(1)?;
        let w = &self.words[self.base(k)..self.base(k) + FRAME_WORDS];
        Some(Frame { special: w[0], cur: w[1], end: w[2], at_match: w[3] != 0 })
    }

    fn set_top(&mut self, f: Frame) {
        let b = self.base(self.depth - 1);
        self.words[b..b + FRAME_WORDS].copy_from_slice(&[
            f.special,
            f.cur,
            f.end,
            u32::from(f.at_match),
        ]);
    }

    fn pop(&mut self) {
        self.depth -= 1;
    }

    fn free(&mut self) -> &mut [u32] {
        let n = self.words.len() - FRAME_WORDS * self.depth;
        &mut self.words[..n]
    }
}

/// The splitter over validated tables (specials strictly sorted by bytes, none empty).
pub(super) struct Splitter<'t, 'a> {
    pub(super) t: &'t TokenizerTables<'a>,
    pub(super) first: &'t FirstBytes,
    pub(super) parse_special: bool,
}

impl Splitter<'_, '_> {
    /// Hands the pieces of `text` to `on` in order, each with the scratch words not holding
    /// frames.
    pub(super) fn split(
        &self,
        text: &[u8],
        scratch: &mut [u32],
        on: &mut impl FnMut(Piece<'_>, &mut [u32]) -> Result<(), TokenizerError>,
    ) -> Result<(), TokenizerError> {
        if u32::try_from(text.len()).is_err() {
            return Err(TokenizerError::TextTooLong(text.len()));
        }
        let mut st = Stack { words: scratch, depth: 0 };
        self.open(text, 0, text.len(), None, &mut st, on)?;
        while let Some(mut f) = st.top() {
            let pat = self.t.token(f.special).unwrap_or(&[]);
            let a = self.t.token_attrs[f.special as usize];
            let (cur, end) = (f.cur as usize, f.end as usize);
            if f.at_match {
                on(Piece::Special(f.special), st.free())?;
                let mut next = cur + pat.len();
                if a & attr::RSTRIP != 0 {
                    while next < end && is_c_space(text[next]) {
                        next += 1;
                    }
                }
                f.cur = next as u32;
                f.at_match = false;
                st.set_top(f);
                continue;
            }
            match find(&text[cur..end], pat) {
                Some(k) => {
                    let m = cur + k;
                    let mut left_end = m;
                    if a & attr::LSTRIP != 0 {
                        while left_end > cur && is_c_space(text[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    f.cur = m as u32;
                    f.at_match = true;
                    st.set_top(f);
                    self.open(text, cur, left_end, Some(f.special), &mut st, on)?;
                }
                None => {
                    st.pop();
                    self.open(text, cur, end, Some(f.special), &mut st, on)?;
                }
            }
        }
        Ok(())
    }

    /// Starts on fragment `text[a..e]`: a frame for the best special ranked after `after` that
    /// occurs in it, else the fragment as text.
    fn open(
        &self,
        text: &[u8],
        a: usize,
        e: usize,
        after: Option<u32>,
        st: &mut Stack<'_>,
        on: &mut impl FnMut(Piece<'_>, &mut [u32]) -> Result<(), TokenizerError>,
    ) -> Result<(), TokenizerError> {
        if a >= e {
            return Ok(());
        }
        match self.best(&text[a..e], after) {
            Some(special) => {
                st.push(Frame { special, cur: a as u32, end: e as u32, at_match: false })
            }
            None => on(Piece::Text(&text[a..e]), st.free()),
        }
    }

    /// The best-ranked active special occurring in `frag` and ranked after `after`.
    fn best(&self, frag: &[u8], after: Option<u32>) -> Option<u32> {
        let t = self.t;
        let rank = |id: u32| (usize::MAX - t.token(id).map_or(0, <[u8]>::len), id);
        let floor = after.map(rank);
        let mut best: Option<(usize, u32)> = None;
        for p in 0..frag.len() {
            if !self.first.has(frag[p]) {
                continue;
            }
            self.matches_at(&frag[p..], |id| {
                let a = t.token_attrs[id as usize];
                let active = self.parse_special || a & (attr::CONTROL | attr::UNKNOWN) == 0;
                let r = rank(id);
                if active && floor.is_none_or(|f| r > f) && best.is_none_or(|b| r < b) {
                    best = Some(r);
                }
            });
        }
        best.map(|(_, id)| id)
    }

    /// Calls `hit` with each special whose text is a prefix of `s`, shortest first.
    fn matches_at(&self, s: &[u8], mut hit: impl FnMut(u32)) {
        let t = self.t;
        let sp = t.specials;
        let tok = |id: u32| t.token(id).unwrap_or(&[]);
        // Invariant: every id in sp[lo..hi] starts with s[..l]; one equal to it comes first.
        let (mut lo, mut hi) = (0usize, sp.len());
        let mut l = 0usize;
        loop {
            if l > 0 && lo < hi && tok(sp[lo]).len() == l {
                hit(sp[lo]);
                lo += 1;
            }
            if lo >= hi || l >= s.len() {
                return;
            }
            let c = Some(&s[l]);
            lo += sp[lo..hi].partition_point(|&id| tok(id).get(l) < c);
            hi = lo + sp[lo..hi].partition_point(|&id| tok(id).get(l) == c);
            l += 1;
        }
    }
}

/// C `isspace` in the "C" locale, which llama.cpp's lstrip/rstrip use.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// First occurrence of `pat` in `hay`.
fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    let (&first, rest) = pat.split_first()?;
    let mut base = 0usize;
    while base + pat.len() <= hay.len() {
        let i = hay[base..=hay.len() - pat.len()].iter().position(|&b| b == first)? + base;
        if &hay[i + 1..i + pat.len()] == rest {
            return Some(i);
        }
        base = i + 1;
    }
    None
}
