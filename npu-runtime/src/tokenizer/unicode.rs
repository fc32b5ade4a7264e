//! Unicode facts the pre-tokenizers need, without an allocator.
//!
//! Category data comes from the `unicode-general-category` crate (no_std, a compact generated
//! table, Unicode 16; code points new in Unicode 16 count as unassigned, as in llama.cpp's older
//! table). The categories are folded into the coarse classes the pre-tokenizer
//! regexes use (`\p{L}`, `\p{N}`, `\p{P}`, `\p{M}`, `\p{S}`, `\s`), the way llama.cpp folds them:
//! unassigned code points are "undefined", surrogates and private use count as control, and
//! `\s` is the Unicode White_Space property (the same set as `char::is_whitespace`).

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// Coarse class of a code point, as the pre-tokenizer regexes see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flags(u16);

impl Flags {
    pub(crate) const NONE: Flags = Flags(0);
    const UNDEFINED: u16 = 1;
    const NUMBER: u16 = 2;
    const LETTER: u16 = 4;
    const SEPARATOR: u16 = 8;
    const MARK: u16 = 16;
    const PUNCT: u16 = 32;
    const SYMBOL: u16 = 64;
    const CONTROL: u16 = 128;
    const WHITESPACE: u16 = 256;

    #[inline]
    pub(crate) fn of(cpt: u32) -> Flags {
        // Most text is ASCII: a 128-entry table saves the general-category search.
        if cpt < 0x80 {
            return Flags(ASCII_FLAGS[cpt as usize]);
        }
        Self::of_slow(cpt)
    }

    fn of_slow(cpt: u32) -> Flags {
        if LLAMA_CPP_UNASSIGNED
            .binary_search_by(|&(lo, hi)| {
                if hi < cpt {
                    core::cmp::Ordering::Less
                } else if lo > cpt {
                    core::cmp::Ordering::Greater
                } else {
                    core::cmp::Ordering::Equal
                }
            })
            .is_ok()
        {
            return Flags(Self::UNDEFINED);
        }
        let Some(c) = char::from_u32(cpt) else {
            // Surrogates (which llama.cpp's lenient decoder can produce) are category Cs;
            // anything past U+10FFFF has no category at all.
            return if (0xD800..=0xDFFF).contains(&cpt) {
                Flags(Self::CONTROL)
            } else {
                Flags(Self::UNDEFINED)
            };
        };
        let cat = match get_general_category(c) {
            G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter => Self::LETTER,
            G::NonspacingMark | G::SpacingMark | G::EnclosingMark => Self::MARK,
            G::DecimalNumber | G::LetterNumber | G::OtherNumber => Self::NUMBER,
            G::ConnectorPunctuation
            | G::DashPunctuation
            | G::OpenPunctuation
            | G::ClosePunctuation
            | G::InitialPunctuation
            | G::FinalPunctuation
            | G::OtherPunctuation => Self::PUNCT,
            G::MathSymbol | G::CurrencySymbol | G::ModifierSymbol | G::OtherSymbol => Self::SYMBOL,
            G::SpaceSeparator | G::LineSeparator | G::ParagraphSeparator => Self::SEPARATOR,
            G::Control | G::Format | G::Surrogate | G::PrivateUse => Self::CONTROL,
            // Unassigned, and any category a later crate version adds.
            _ => Self::UNDEFINED,
        };
        let ws = if c.is_whitespace() { Self::WHITESPACE } else { 0 };
        Flags(cat | ws)
    }

    pub(crate) fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }
    pub(crate) fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }
    pub(crate) fn is_mark(self) -> bool {
        self.0 & Self::MARK != 0
    }
    pub(crate) fn is_punct(self) -> bool {
        self.0 & Self::PUNCT != 0
    }
    pub(crate) fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }
    /// Whether the code point exists at all (positions past a segment's end have no flags).
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }
}

/// Code points assigned in Unicode 16 (the crate's data) but unassigned in the older table
/// llama.cpp 0c1e570 splits by: they count as unassigned, so text using them splits as
/// llama.cpp splits it. Found by comparing both tables over every code point (5,185 differ,
/// all of them in these ranges; no other difference).
const LLAMA_CPP_UNASSIGNED: &[(u32, u32)] = &[
    (0x897, 0x897),
    (0x1B4E, 0x1B4F),
    (0x1B7F, 0x1B7F),
    (0x1C89, 0x1C8A),
    (0x2427, 0x2429),
    (0x31E4, 0x31E5),
    (0xA7CB, 0xA7CD),
    (0xA7DA, 0xA7DC),
    (0x105C0, 0x105F3),
    (0x10D40, 0x10D65),
    (0x10D69, 0x10D85),
    (0x10D8E, 0x10D8F),
    (0x10EC2, 0x10EC4),
    (0x10EFC, 0x10EFC),
    (0x11380, 0x11389),
    (0x1138B, 0x1138B),
    (0x1138E, 0x1138E),
    (0x11390, 0x113B5),
    (0x113B7, 0x113C0),
    (0x113C2, 0x113C2),
    (0x113C5, 0x113C5),
    (0x113C7, 0x113CA),
    (0x113CC, 0x113D5),
    (0x113D7, 0x113D8),
    (0x113E1, 0x113E2),
    (0x116D0, 0x116E3),
    (0x11BC0, 0x11BE1),
    (0x11BF0, 0x11BF9),
    (0x11F5A, 0x11F5A),
    (0x13460, 0x143FA),
    (0x16100, 0x16139),
    (0x16D40, 0x16D79),
    (0x18CFF, 0x18CFF),
    (0x1CC00, 0x1CCF9),
    (0x1CD00, 0x1CEB3),
    (0x1E5D0, 0x1E5FA),
    (0x1E5FF, 0x1E5FF),
    (0x1F8B2, 0x1F8BB),
    (0x1F8C0, 0x1F8C1),
    (0x1FA89, 0x1FA89),
    (0x1FA8F, 0x1FA8F),
    (0x1FABE, 0x1FABE),
    (0x1FAC6, 0x1FAC6),
    (0x1FADC, 0x1FADC),
    (0x1FADF, 0x1FADF),
    (0x1FAE9, 0x1FAE9),
    (0x1FBCB, 0x1FBEF),
];

/// Flags of the ASCII code points (Unicode categories: `$+<=>^`|~` are symbols, the other
/// printable non-alphanumerics punctuation, C0 controls and DEL control; `\t`..`\r` and space
/// are whitespace).
const ASCII_FLAGS: [u16; 128] = {
    let mut t = [0u16; 128];
    let mut c = 0usize;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() {
            Flags::LETTER
        } else if b.is_ascii_digit() {
            Flags::NUMBER
        } else if b == b' ' {
            Flags::SEPARATOR | Flags::WHITESPACE
        } else if b < 0x20 || b == 0x7F {
            Flags::CONTROL | if b >= 0x09 && b <= 0x0D { Flags::WHITESPACE } else { 0 }
        } else if matches!(b, b'$' | b'+' | b'<' | b'=' | b'>' | b'^' | b'`' | b'|' | b'~') {
            Flags::SYMBOL
        } else {
            Flags::PUNCT
        };
        c += 1;
    }
    t
};

/// Decodes one code point at `pos` the lenient way llama.cpp does: a lead byte whose
/// continuation bytes are missing or wrong, or a stray continuation byte, becomes U+FFFD and
/// consumes one byte; overlong forms and surrogates decode to their value unchecked.
/// Returns (code point, bytes consumed); `pos` must be `< text.len()`.
#[inline]
pub(crate) fn decode_at(text: &[u8], pos: usize) -> (u32, usize) {
    let b0 = text[pos];
    if b0 < 0x80 {
        return (b0 as u32, 1);
    }
    let cont = |k: usize| text.get(pos + k).is_some_and(|&b| b & 0xC0 == 0x80);
    let c = |k: usize| (text[pos + k] & 0x3F) as u32;
    if b0 & 0x40 == 0 {
        (0xFFFD, 1)
    } else if b0 & 0x20 == 0 {
        if cont(1) {
            (((b0 as u32 & 0x1F) << 6) | c(1), 2)
        } else {
            (0xFFFD, 1)
        }
    } else if b0 & 0x10 == 0 {
        if cont(1) && cont(2) {
            (((b0 as u32 & 0x0F) << 12) | (c(1) << 6) | c(2), 3)
        } else {
            (0xFFFD, 1)
        }
    } else if b0 & 0x08 == 0 {
        if cont(1) && cont(2) && cont(3) {
            (((b0 as u32 & 0x07) << 18) | (c(1) << 12) | (c(2) << 6) | c(3), 4)
        } else {
            (0xFFFD, 1)
        }
    } else {
        (0xFFFD, 1)
    }
}

/// UTF-8 encoding of a code point into `out`, returning its length. Values past U+10FFFF (which
/// llama.cpp cannot re-encode either) are written as U+FFFD.
#[inline]
pub(crate) fn encode_utf8(cpt: u32, out: &mut [u8; 4]) -> usize {
    match cpt {
        0..=0x7F => {
            out[0] = cpt as u8;
            1
        }
        0x80..=0x7FF => {
            out[0] = 0xC0 | (cpt >> 6) as u8;
            out[1] = 0x80 | (cpt & 0x3F) as u8;
            2
        }
        0x800..=0xFFFF => {
            out[0] = 0xE0 | (cpt >> 12) as u8;
            out[1] = 0x80 | ((cpt >> 6) & 0x3F) as u8;
            out[2] = 0x80 | (cpt & 0x3F) as u8;
            3
        }
        0x10000..=0x10FFFF => {
            out[0] = 0xF0 | (cpt >> 18) as u8;
            out[1] = 0x80 | ((cpt >> 12) & 0x3F) as u8;
            out[2] = 0x80 | ((cpt >> 6) & 0x3F) as u8;
            out[3] = 0x80 | (cpt & 0x3F) as u8;
            4
        }
        _ => encode_utf8(0xFFFD, out),
    }
}

/// Whether byte `b` maps to itself in GPT-2's byte-to-unicode table (the printable Latin-1
/// bytes); the other 68 bytes map to U+0100 + their rank among the non-printable ones.
const fn gpt2_printable(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// GPT-2's byte → code point table.
pub const GPT2_BYTE_TO_CPT: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut n = 0u16;
    let mut b = 0usize;
    while b < 256 {
        t[b] = if gpt2_printable(b as u8) {
            b as u16
        } else {
            n += 1;
            255 + n
        };
        b += 1;
    }
    t
};

/// GPT-2's code point → byte table, inverse of [`GPT2_BYTE_TO_CPT`]: the code point of a byte-level
/// BPE token character, if it is one of the 256 that stand for bytes.
pub fn gpt2_cpt_to_byte(cpt: u32) -> Option<u8> {
    match cpt {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(cpt as u8),
        0x100..=0x143 => {
            // The k-th non-printable byte (k = cpt - 0x100), in byte order.
            let mut k = cpt - 0x100;
            let mut b = 0usize;
            while b < 256 {
                if !gpt2_printable(b as u8) {
                    if k == 0 {
                        return Some(b as u8);
                    }
                    k -= 1;
                }
                b += 1;
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_table_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(gpt2_cpt_to_byte(GPT2_BYTE_TO_CPT[b as usize] as u32), Some(b));
        }
        assert_eq!(GPT2_BYTE_TO_CPT[b' ' as usize], 0x120); // 'Ġ'
        assert_eq!(GPT2_BYTE_TO_CPT[b'\n' as usize], 0x10A); // 'Ċ'
        assert_eq!(gpt2_cpt_to_byte(0x20), None);
    }

    #[test]
    fn lenient_decode() {
        assert_eq!(decode_at("é".as_bytes(), 0), (0xE9, 2));
        assert_eq!(decode_at(&[0xE2, 0x82], 0), (0xFFFD, 1));
        assert_eq!(decode_at(&[0x80], 0), (0xFFFD, 1));
        assert_eq!(decode_at(&[0xF8, 0x80], 0), (0xFFFD, 1));
        assert_eq!(decode_at(&[0xED, 0xA0, 0x80], 0), (0xD800, 3));
    }

    #[test]
    fn ascii_table_agrees_with_the_category_data() {
        for c in 0..128u32 {
            assert_eq!(Flags::of(c), Flags::of_slow(c), "U+{c:04X}");
        }
    }

    #[test]
    fn classes() {
        assert!(Flags::of('a' as u32).is_letter());
        assert!(Flags::of('٣' as u32).is_number());
        assert!(Flags::of('\u{3000}' as u32).is_whitespace());
        assert!(Flags::of('\u{85}' as u32).is_whitespace());
        assert!(!Flags::of('\u{1C}' as u32).is_whitespace());
        assert!(Flags::of('\u{301}' as u32).is_mark());
        assert!(Flags::of('«' as u32).is_punct());
        assert!(Flags::of(0x10FFFF).any());
        // New in Unicode 16, unassigned for llama.cpp.
        assert_eq!(Flags::of(0x1C89), Flags(Flags::UNDEFINED));
        assert!(LLAMA_CPP_UNASSIGNED.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(!Flags::NONE.any());
    }
}
