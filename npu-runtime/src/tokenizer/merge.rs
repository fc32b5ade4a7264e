//! The merge loops of byte-level BPE and SentencePiece BPE, over caller-provided scratch.
//!
//! Both keep a doubly linked list of symbols and a binary min-heap of candidate pairs, as
//! llama.cpp does: BPE pops the lowest merge rank, SPM the highest token score, ties going to
//! the leftmost pair. A popped pair is used only if neither side changed since it was queued
//! (symbols only grow, so "same lengths" means "unchanged").
//!
//! Scratch layout, in `u32` words, for an input of `n` bytes: `n` bytes (one per word), `4n`
//! symbol words (id, length, prev, next) and `12n` heap words (at most `3n` entries of four
//! words: key, left, packed lengths, merged id). [`scratch_words`] gives the total.

use super::{TokenizerError, TokenizerTables, NO_TOKEN};

/// Scratch words the merge loop needs for a word (BPE) or fragment (SPM, after escaping) of
/// `n` bytes.
pub const fn scratch_words(n: usize) -> usize {
    17 * n
}

const NIL: u32 = u32::MAX;

/// Views over the scratch regions.
struct Work<'s> {
    bytes: &'s mut [u32],
    syms: &'s mut [u32],
    heap: &'s mut [u32],
    heap_len: usize,
}

impl<'s> Work<'s> {
    fn new(scratch: &'s mut [u32], n: usize) -> Result<Work<'s>, TokenizerError> {
        let need = scratch_words(n);
        if scratch.len() < need {
            return Err(TokenizerError::ScratchTooSmall { needed: need, got: scratch.len() });
        }
        let (bytes, rest) = scratch.split_at_mut(n);
        let (syms, rest) = rest.split_at_mut(4 * n);
        let (heap, _) = rest.split_at_mut(12 * n);
        Ok(Work { bytes, syms, heap, heap_len: 0 })
    }

    #[inline]
    fn id(&self, i: u32) -> u32 {
        self.syms[4 * i as usize]
    }
    #[inline]
    fn len(&self, i: u32) -> u32 {
        self.syms[4 * i as usize + 1]
    }
    #[inline]
    fn prev(&self, i: u32) -> u32 {
        self.syms[4 * i as usize + 2]
    }
    #[inline]
    fn next(&self, i: u32) -> u32 {
        self.syms[4 * i as usize + 3]
    }
    #[inline]
    fn set(&mut self, i: u32, id: u32, len: u32, prev: u32, next: u32) {
        let b = 4 * i as usize;
        self.syms[b] = id;
        self.syms[b + 1] = len;
        self.syms[b + 2] = prev;
        self.syms[b + 3] = next;
    }

    /// Heap order: smaller key first, then smaller left index.
    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        let (ka, kb) = (self.heap[4 * a], self.heap[4 * b]);
        ka < kb || (ka == kb && self.heap[4 * a + 1] < self.heap[4 * b + 1])
    }

    fn swap(&mut self, a: usize, b: usize) {
        for k in 0..4 {
            self.heap.swap(4 * a + k, 4 * b + k);
        }
    }

    fn push(&mut self, entry: [u32; 4]) -> Result<(), TokenizerError> {
        let i = self.heap_len;
        if 4 * i + 4 > self.heap.len() {
            // Cannot happen with scratch_words(n) (each merge queues at most two pairs), but a
            // bound check is cheaper than a proof in a comment.
            return Err(TokenizerError::ScratchTooSmall {
                needed: 4 * i + 4,
                got: self.heap.len(),
            });
        }
        self.heap[4 * i..4 * i + 4].copy_from_slice(&entry);
        self.heap_len += 1;
        let mut c = i;
        while c > 0 {
            let p = (c - 1) / 2;
            if self.less(c, p) {
                self.swap(c, p);
                c = p;
            } else {
                break;
            }
        }
        Ok(())
    }

    fn pop(&mut self) -> Option<[u32; 4]> {
        if self.heap_len == 0 {
            return None;
        }
        let mut top = [0u32; 4];
        top.copy_from_slice(&self.heap[0..4]);
        self.heap_len -= 1;
        let last = self.heap_len;
        if last > 0 {
            self.swap(0, last);
            let mut p = 0;
            loop {
                let (l, r) = (2 * p + 1, 2 * p + 2);
                let mut m = p;
                if l < last && self.less(l, m) {
                    m = l;
                }
                if r < last && self.less(r, m) {
                    m = r;
                }
                if m == p {
                    break;
                }
                self.swap(p, m);
                p = m;
            }
        }
        Some(top)
    }

    /// Links `n` symbols, one per unit of `unit_len` (bytes for BPE, UTF-8 characters for SPM).
    fn link(
        &mut self,
        n: usize,
        unit_len: impl Fn(&[u32], usize) -> usize,
        id_of: impl Fn(&[u32], usize, usize) -> u32,
    ) {
        let mut pos = 0usize;
        let mut prev = NIL;
        while pos < n {
            let l = unit_len(self.bytes, pos).min(n - pos).max(1);
            let id = id_of(self.bytes, pos, l);
            let next = if pos + l >= n { NIL } else { (pos + l) as u32 };
            self.set(pos as u32, id, l as u32, prev, next);
            prev = pos as u32;
            pos += l;
        }
    }

    /// Merges the pair popped from the heap if it is still current; returns whether it was.
    fn apply(&mut self, e: [u32; 4]) -> Option<u32> {
        let left = e[1];
        let (ll, rl) = (e[2] >> 16, e[2] & 0xFFFF);
        if self.len(left) != ll || ll == 0 {
            return None;
        }
        let right = self.next(left);
        if right == NIL || self.len(right) != rl || rl == 0 {
            return None;
        }
        let rnext = self.next(right);
        let lprev = self.prev(left);
        self.set(left, e[3], ll + rl, lprev, rnext);
        let b = 4 * right as usize;
        self.syms[b + 1] = 0;
        if rnext != NIL {
            self.syms[4 * rnext as usize + 2] = left;
        }
        Some(left)
    }
}

/// Where a merge loop's input bytes come from: the expanded length and a writer that fills
/// exactly that many bytes.
pub(crate) struct Input<F: FnOnce(&mut [u32])> {
    /// Number of bytes `fill` writes.
    pub n: usize,
    /// Writes the bytes, one per word.
    pub fill: F,
}

/// Byte-level BPE over one pre-tokenized word (its bytes as BPE sees them); emits ids.
pub(crate) fn bpe_word<F: FnOnce(&mut [u32])>(
    t: &TokenizerTables<'_>,
    input: Input<F>,
    scratch: &mut [u32],
    emit: &mut impl FnMut(u32) -> Result<(), TokenizerError>,
) -> Result<(), TokenizerError> {
    let n = input.n;
    if n == 0 {
        return Ok(());
    }
    let mut w = Work::new(scratch, n)?;
    (input.fill)(w.bytes);
    if t.ignore_merges {
        if let Some(id) = t.lookup_iter(|| w.bytes.iter().map(|&b| b as u8)) {
            return emit(id);
        }
    }
    w.link(n, |_, _| 1, |bytes, pos, _| t.byte_tokens[bytes[pos] as usize]);
    let mut i = 0u32;
    while w.next(i) != NIL {
        let j = w.next(i);
        queue_bpe(t, &mut w, i, j)?;
        i = j;
    }
    while let Some(e) = w.pop() {
        if let Some(left) = w.apply(e) {
            let p = w.prev(left);
            if p != NIL {
                queue_bpe(t, &mut w, p, left)?;
            }
            let nx = w.next(left);
            if nx != NIL {
                queue_bpe(t, &mut w, left, nx)?;
            }
        }
    }
    let mut i = 0u32;
    loop {
        let id = w.id(i);
        let (s, l) = (i as usize, w.len(i) as usize);
        if id != NO_TOKEN {
            emit(id)?;
        } else if let Some(id) = t.lookup_iter(|| w.bytes[s..s + l].iter().map(|&b| b as u8)) {
            emit(id)?;
        } else {
            // Bytes with no token of their own: each byte's token, skipping bytes the
            // vocabulary lacks (llama.cpp drops them too).
            for &b in &w.bytes[s..s + l] {
                let id = t.byte_tokens[b as usize];
                if id != NO_TOKEN {
                    emit(id)?;
                }
            }
        }
        i = w.next(i);
        if i == NIL {
            return Ok(());
        }
    }
}

fn queue_bpe(
    t: &TokenizerTables<'_>,
    w: &mut Work<'_>,
    a: u32,
    b: u32,
) -> Result<(), TokenizerError> {
    let (ia, ib) = (w.id(a), w.id(b));
    if ia == NO_TOKEN || ib == NO_TOKEN {
        return Ok(());
    }
    if let Ok(k) = t.merges.binary_search_by(|m| (m.left, m.right).cmp(&(ia, ib))) {
        let m = t.merges[k];
        w.push([m.rank, a, (w.len(a) << 16) | w.len(b), m.merged])?;
    }
    Ok(())
}

/// SentencePiece BPE over one fragment (its bytes after escaping `' '` as `▁`); emits ids.
pub(crate) fn spm_fragment<F: FnOnce(&mut [u32])>(
    t: &TokenizerTables<'_>,
    input: Input<F>,
    scratch: &mut [u32],
    emit: &mut impl FnMut(u32) -> Result<(), TokenizerError>,
) -> Result<(), TokenizerError> {
    let n = input.n;
    if n == 0 {
        return Ok(());
    }
    let mut w = Work::new(scratch, n)?;
    (input.fill)(w.bytes);
    // Symbols are UTF-8 characters by their lead byte's length, as llama.cpp cuts them.
    w.link(n, |bytes, pos| utf8_len(bytes[pos] as u8), |_, _, _| NO_TOKEN);
    let mut i = 0u32;
    while w.next(i) != NIL {
        let j = w.next(i);
        queue_spm(t, &mut w, i, j)?;
        i = j;
    }
    while let Some(e) = w.pop() {
        if let Some(left) = w.apply(e) {
            let p = w.prev(left);
            if p != NIL {
                queue_spm(t, &mut w, p, left)?;
            }
            let nx = w.next(left);
            if nx != NIL {
                queue_spm(t, &mut w, left, nx)?;
            }
        }
    }
    let mut i = 0u32;
    loop {
        let (s, l) = (i as usize, w.len(i) as usize);
        let id = if w.id(i) != NO_TOKEN {
            Some(w.id(i))
        } else {
            t.lookup_iter(|| w.bytes[s..s + l].iter().map(|&b| b as u8))
        };
        match id {
            Some(id) => emit(id)?,
            None => {
                for &b in &w.bytes[s..s + l] {
                    let id = t.byte_tokens[b as usize];
                    if id == NO_TOKEN {
                        return Err(TokenizerError::NoByteToken(b as u8));
                    }
                    emit(id)?;
                }
            }
        }
        i = w.next(i);
        if i == NIL {
            return Ok(());
        }
    }
}

fn queue_spm(
    t: &TokenizerTables<'_>,
    w: &mut Work<'_>,
    a: u32,
    b: u32,
) -> Result<(), TokenizerError> {
    let (la, lb) = (w.len(a), w.len(b));
    let s = a as usize;
    let e = s + (la + lb) as usize;
    let Some(id) = t.lookup_iter(|| w.bytes[s..e].iter().map(|&b| b as u8)) else { return Ok(()) };
    let score = t.scores.get(id as usize).copied().unwrap_or(0.0);
    // Highest score first: invert an order-preserving integer image of the float.
    let key = !f32_order_key(score);
    w.push([key, a, (la << 16) | lb, id])
}

/// A u32 whose unsigned order is the float's total order (for non-NaN values).
fn f32_order_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// UTF-8 sequence length by lead byte, as llama.cpp's `unicode_len_utf8` reads it.
fn utf8_len(b: u8) -> usize {
    match b >> 4 {
        0xC | 0xD => 2,
        0xE => 3,
        0xF => 4,
        _ => 1,
    }
}
