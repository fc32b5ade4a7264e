//! Streaming UTF-8: token pieces in, text out, never a split character.
//!
//! Byte-level BPE and SPM byte fallback cut characters across tokens (an emoji is often three
//! or four tokens). [`Utf8Stream`] holds back the bytes of an incomplete character until the
//! next piece completes it. Invalid bytes become U+FFFD, one per maximal invalid subpart (the
//! Unicode / WHATWG "replacement" rule, what `String::from_utf8_lossy` does). llama.cpp itself
//! hands out raw bytes and leaves this to the caller, so text that is valid UTF-8 overall comes
//! out byte-identical to llama.cpp's detokenization, and invalid bytes are the only difference.

/// A streaming UTF-8 decoder with a 3-byte carry-over and no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Stream {
    pending: [u8; 4],
    len: u8,
}

const REPLACEMENT: &str = "\u{FFFD}";

impl Utf8Stream {
    /// An empty decoder.
    pub const fn new() -> Utf8Stream {
        Utf8Stream { pending: [0; 4], len: 0 }
    }

    /// Bytes held back waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending[..self.len as usize]
    }

    /// Feeds `bytes`; calls `emit` with each run of complete text (possibly several times).
    pub fn push<E>(
        &mut self,
        mut bytes: &[u8],
        emit: &mut impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), E> {
        // First complete (or reject) the character carried over from the previous piece.
        while self.len > 0 {
            let Some((&b, rest)) = bytes.split_first() else { return Ok(()) };
            let need = seq_len(self.pending[0]);
            if !valid_next(&self.pending[..self.len as usize], b) {
                // The carried prefix can never complete: one U+FFFD for it, then re-read `b`.
                self.len = 0;
                emit(REPLACEMENT)?;
                break;
            }
            self.pending[self.len as usize] = b;
            self.len += 1;
            bytes = rest;
            if self.len as usize == need {
                let n = self.len as usize;
                self.len = 0;
                let buf = self.pending;
                match core::str::from_utf8(&buf[..n]) {
                    Ok(s) => emit(s)?,
                    Err(_) => emit(REPLACEMENT)?,
                }
            }
        }
        while !bytes.is_empty() {
            match core::str::from_utf8(bytes) {
                Ok(s) => return emit(s),
                Err(e) => {
                    let good = e.valid_up_to();
                    if good > 0 {
                        // Safe: `from_utf8` just said this prefix is valid.
                        emit(core::str::from_utf8(&bytes[..good]).unwrap_or(REPLACEMENT))?;
                    }
                    match e.error_len() {
                        Some(bad) => {
                            emit(REPLACEMENT)?;
                            bytes = &bytes[good + bad..];
                        }
                        None => {
                            // A valid but incomplete character at the end: keep it for later.
                            let tail = &bytes[good..];
                            self.pending[..tail.len()].copy_from_slice(tail);
                            self.len = tail.len() as u8;
                            return Ok(());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the stream: an incomplete character left over becomes U+FFFD.
    pub fn finish<E>(&mut self, emit: &mut impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        if self.len > 0 {
            self.len = 0;
            emit(REPLACEMENT)?;
        }
        Ok(())
    }
}

/// Sequence length announced by a lead byte (1 for anything that is not a lead byte).
fn seq_len(b: u8) -> usize {
    match b {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

/// Whether `b` may follow the valid incomplete prefix `prefix` (the second-byte ranges of
/// RFC 3629 exclude overlongs, surrogates and values past U+10FFFF).
fn valid_next(prefix: &[u8], b: u8) -> bool {
    if prefix.len() == 1 {
        let (lo, hi) = match prefix[0] {
            0xE0 => (0xA0, 0xBF),
            0xED => (0x80, 0x9F),
            0xF0 => (0x90, 0xBF),
            0xF4 => (0x80, 0x8F),
            _ => (0x80, 0xBF),
        };
        (lo..=hi).contains(&b)
    } else {
        b & 0xC0 == 0x80
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn run(pieces: &[&[u8]]) -> String {
        let mut s = Utf8Stream::new();
        let mut out = String::new();
        for p in pieces {
            s.push::<()>(p, &mut |t| {
                out.push_str(t);
                Ok(())
            })
            .unwrap();
        }
        s.finish::<()>(&mut |t| {
            out.push_str(t);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn splits_multibyte_characters_across_pieces() {
        let text = "a🦙é€ b";
        let bytes = text.as_bytes();
        // Every way of cutting the text into single bytes, and into two pieces.
        let singles: std::vec::Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&singles), text);
        for cut in 0..=bytes.len() {
            assert_eq!(run(&[&bytes[..cut], &bytes[cut..]]), text);
        }
    }

    #[test]
    fn never_emits_a_partial_character() {
        let mut s = Utf8Stream::new();
        let mut got = String::new();
        s.push::<()>(&[0xF0, 0x9F], &mut |t| {
            got.push_str(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, "");
        assert_eq!(s.pending(), &[0xF0, 0x9F]);
        s.push::<()>(&[0xA6, 0x99, b'!'], &mut |t| {
            got.push_str(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, "🦙!");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(run(&[b"a\xFFb"]), "a\u{FFFD}b");
        assert_eq!(run(&[b"a\xE2\x82", b"b"]), "a\u{FFFD}b");
        assert_eq!(run(&[b"a\xE2"]), "a\u{FFFD}");
        assert_eq!(run(&[b"\xED", b"\xA0\x80"]), "\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(String::from_utf8_lossy(b"\xED\xA0\x80"), "\u{FFFD}\u{FFFD}\u{FFFD}");
    }
}
