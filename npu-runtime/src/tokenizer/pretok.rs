//! Pre-tokenizers: split text into the words that BPE then merges within.
//!
//! Each model family declares a list of regexes (`tokenizer.ggml.pre` names the list). A
//! general regex engine needs an allocator, so each regex is a small hand-written matcher here,
//! written to give exactly llama.cpp's split (its own hand-written matchers for the GPT-2,
//! Llama-3 and Qwen2 regexes, and its `std::regex` fallback for the others), quirks included:
//! the test vectors pin them. Regexes apply in sequence, each refining the previous one's
//! pieces; text a regex does not match stays a piece of its own.
//!
//! Positions are byte offsets into the fragment; code points are decoded leniently (see
//! [`decode_at`]) so invalid UTF-8 splits the way llama.cpp splits it.

use super::unicode::{decode_at, Flags};

/// Which pre-tokenizer (regex list) a byte-level BPE vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PreTokenizer {
    /// GPT-2's regex (`gpt-2`, `mpt`, `olmo`, `phi-2`, ...).
    Gpt2,
    /// Llama 3's regex: case-insensitive contractions, numbers in groups of up to 3
    /// (`llama-bpe`, `llama3`, `dbrx`, `smaug-bpe`, ...).
    Llama3,
    /// Qwen2's regex: Llama 3's with single-digit numbers (`qwen2`, `stablelm2`, `megrez`, ...).
    Qwen2,
    /// Qwen3.5's regex: Qwen2's with combining marks inside letter runs (`qwen35`).
    Qwen35,
    /// Every number code point isolated, then GPT-2's regex (`smollm`, `starcoder`, `refact`,
    /// `command-r`, `codeshell`, `exaone`, `minerva-7b`).
    StarCoder,
    /// Punctuation runs isolated, then GPT-2's regex, then ASCII digit triples (`falcon`).
    Falcon,
    /// llama.cpp's fallback list for BPE vocabularies without a `pre` name (`default`).
    Default,
    /// DeepSeek Coder's list: newlines, letter runs, punctuation runs, CJK runs, single numbers
    /// (`deepseek-coder`).
    DeepSeekCoder,
    /// No pre-tokenization (SentencePiece vocabularies).
    None,
}

impl PreTokenizer {
    /// The pre-tokenizer a `tokenizer.ggml.pre` value names, as llama.cpp maps the names, if
    /// this crate implements it.
    pub fn from_gguf_name(name: &str) -> Option<PreTokenizer> {
        Some(match name {
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais"
            | "trillion" | "granite-docling" | "exaone4" | "jina-v1-en" | "jina-v2-code"
            | "roberta-bpe" => PreTokenizer::Gpt2,
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" | "dbrx" | "smaug-bpe" => PreTokenizer::Llama3,
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2"
            | "hunyuan" | "solar-open" => PreTokenizer::Qwen2,
            "qwen35" => PreTokenizer::Qwen35,
            "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone"
            | "minerva-7b" | "mellum2" => PreTokenizer::StarCoder,
            "falcon" => PreTokenizer::Falcon,
            "default" | "" => PreTokenizer::Default,
            "deepseek-coder" => PreTokenizer::DeepSeekCoder,
            _ => return None,
        })
    }

    /// Every `tokenizer.ggml.pre` name [`from_gguf_name`](Self::from_gguf_name) accepts.
    pub const SUPPORTED_NAMES: &'static [&'static str] = &[
        "gpt-2",
        "phi-2",
        "jina-es",
        "jina-de",
        "gigachat",
        "jina-v2-es",
        "jina-v2-de",
        "a.x-4.0",
        "mellum",
        "modern-bert",
        "mpt",
        "olmo",
        "jais",
        "trillion",
        "granite-docling",
        "exaone4",
        "jina-v1-en",
        "jina-v2-code",
        "roberta-bpe",
        "llama3",
        "llama-v3",
        "llama-bpe",
        "falcon3",
        "falcon-h1",
        "pixtral",
        "midm-2.0",
        "lfm2",
        "jina-v5-nano",
        "dbrx",
        "smaug-bpe",
        "qwen2",
        "deepseek-r1-qwen",
        "kormo",
        "f2llmv2",
        "megrez",
        "stablelm2",
        "hunyuan",
        "solar-open",
        "qwen35",
        "starcoder",
        "refact",
        "command-r",
        "smollm",
        "codeshell",
        "exaone",
        "minerva-7b",
        "mellum2",
        "falcon",
        "default",
        "deepseek-coder",
    ];
}

/// Sentinel for "past the segment's end", as llama.cpp's matchers use it.
const OUT: u32 = u32::MAX;

/// One segment `[.., end)` of the fragment, read with lookahead that stops at `end`.
#[derive(Clone, Copy)]
struct Seg<'t> {
    t: &'t [u8],
    end: usize,
}

impl Seg<'_> {
    /// (code point, byte length) at `pos`, or `(OUT, 0)` at or past the end.
    #[inline]
    fn at(&self, pos: usize) -> (u32, usize) {
        if pos >= self.end {
            (OUT, 0)
        } else {
            decode_at(self.t, pos)
        }
    }
    #[inline]
    fn flags(&self, pos: usize) -> Flags {
        if pos >= self.end {
            Flags::NONE
        } else {
            Flags::of(decode_at(self.t, pos).0)
        }
    }
    /// Position after the code point at `pos`.
    #[inline]
    fn next(&self, pos: usize) -> usize {
        pos + self.at(pos).1
    }
}

/// Emits the pieces `[start, end)` of a pass; returns the caller's error unchanged.
struct Out<'e, F> {
    prev: usize,
    emit: &'e mut F,
}

impl<F: FnMut(usize, usize) -> Result<(), E>, E> Out<'_, F> {
    #[inline]
    fn add(&mut self, end: usize) -> Result<(), E> {
        if end > self.prev {
            (self.emit)(self.prev, end)?;
        }
        self.prev = end;
        Ok(())
    }
}

/// Splits `text` into pre-tokenized words, calling `emit(start, end)` for each in order.
pub(crate) fn split<E>(
    pre: PreTokenizer,
    text: &[u8],
    emit: &mut impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let n = text.len();
    match pre {
        PreTokenizer::None => {
            if n > 0 {
                emit(0, n)?;
            }
            Ok(())
        }
        PreTokenizer::Gpt2 => gpt2(text, 0, n, emit),
        PreTokenizer::Llama3 => llama3_family(text, 0, n, 3, false, emit),
        PreTokenizer::Qwen2 => llama3_family(text, 0, n, 1, false, emit),
        PreTokenizer::Qwen35 => llama3_family(text, 0, n, 1, true, emit),
        PreTokenizer::StarCoder => {
            isolate_each(text, 0, n, |_, f| f.is_number(), &mut |a, b| gpt2(text, a, b, emit))
        }
        PreTokenizer::Falcon => runs(text, 0, n, |c, f| punct_class(c, f, true), &mut |a, b| {
            gpt2(text, a, b, &mut |c, d| ascii_digit_triples(text, c, d, emit))
        }),
        PreTokenizer::Default => runs(text, 0, n, |c, f| punct_class(c, f, false), &mut |a, b| {
            gpt2(text, a, b, &mut |c, d| {
                runs(text, c, d, |_, f| f.is_number(), &mut |e, g| {
                    ascii_digit_triples(text, e, g, emit)
                })
            })
        }),
        PreTokenizer::DeepSeekCoder => {
            isolate_each(text, 0, n, |c, _| c == 0x0D || c == 0x0A, &mut |a, b| {
                matches(text, a, b, ws_opt_then_run(Flags::is_letter), &mut |c, d| {
                    matches(text, c, d, ws_opt_then_run(Flags::is_punct), &mut |e, g| {
                        runs(text, e, g, cjk_class, &mut |h, i| {
                            isolate_each(text, h, i, |_, f| f.is_number(), emit)
                        })
                    })
                })
            })
        }
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`, plus a trailing
/// `\s+` and single-code-point pieces for what nothing matches, as llama.cpp splits it.
fn gpt2<E>(
    t: &[u8],
    ini: usize,
    end: usize,
    emit: &mut impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let s = Seg { t, end };
    let mut out = Out { prev: ini, emit };
    let mut pos = ini;
    while pos < end {
        let (cpt, len) = s.at(pos);
        let flags = Flags::of(cpt);
        if cpt == '\'' as u32 && pos + len < end {
            let p1 = pos + len;
            let (c1, l1) = s.at(p1);
            if matches!(c1, 0x73 | 0x74 | 0x6D | 0x64) {
                pos = p1 + l1;
                out.add(pos)?;
                continue;
            }
            if p1 + l1 < end {
                let (c2, l2) = s.at(p1 + l1);
                if matches!((c1, c2), (0x72, 0x65) | (0x76, 0x65) | (0x6C, 0x6C)) {
                    pos = p1 + l1 + l2;
                    out.add(pos)?;
                    continue;
                }
            }
        }
        let (f2, body) =
            if cpt == ' ' as u32 { (s.flags(pos + len), pos + len) } else { (flags, pos) };
        if f2.is_letter() || f2.is_number() {
            let letter = f2.is_letter();
            pos = body;
            loop {
                let f = s.flags(pos);
                if (letter && f.is_letter()) || (!letter && f.is_number()) {
                    pos = s.next(pos);
                } else {
                    break;
                }
            }
            out.add(pos)?;
            continue;
        }
        if !(f2.is_whitespace() || f2.is_letter() || f2.is_number()) && f2.any() {
            pos = body;
            loop {
                let f = s.flags(pos);
                if !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.any() {
                    pos = s.next(pos);
                } else {
                    break;
                }
            }
            out.add(pos)?;
            continue;
        }
        let (n_ws, last_ws, after_ws, _) = whitespace_run(&s, pos);
        if n_ws > 1 && after_ws < end {
            pos = last_ws;
            out.add(pos)?;
            continue;
        }
        if n_ws > 0 {
            pos = after_ws;
            out.add(pos)?;
            continue;
        }
        pos += len;
        out.add(pos)?;
    }
    Ok(())
}

/// Scans the whitespace run at `pos`: (count, start of its last code point, end of the run,
/// end of its last `\r`/`\n` if any).
#[inline]
fn whitespace_run(s: &Seg<'_>, pos: usize) -> (usize, usize, usize, Option<usize>) {
    let mut n = 0;
    let mut p = pos;
    let mut last = pos;
    let mut last_nl = None;
    loop {
        let (c, l) = s.at(p);
        if c == OUT || !Flags::of(c).is_whitespace() {
            break;
        }
        if c == 0x0D || c == 0x0A {
            last_nl = Some(p + l);
        }
        last = p;
        p += l;
        n += 1;
    }
    (n, last, p, last_nl)
}

/// Llama 3's regex `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
/// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`, with `max_digits` 3 (Llama 3) or 1
/// (Qwen2's `\p{N}`), and `marks` making `\p{M}` count with letters (Qwen3.5).
fn llama3_family<E>(
    t: &[u8],
    ini: usize,
    end: usize,
    max_digits: usize,
    marks: bool,
    emit: &mut impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let s = Seg { t, end };
    let mut out = Out { prev: ini, emit };
    let mut pos = ini;
    let letterish = |f: Flags| f.is_letter() || (marks && f.is_mark());
    while pos < end {
        let (cpt, len) = s.at(pos);
        let flags = Flags::of(cpt);
        if cpt == '\'' as u32 {
            if let Some(p) = contraction_end(&s, pos + len, end) {
                pos = p;
                out.add(pos)?;
                continue;
            }
        }
        if !(cpt == 0x0D || cpt == 0x0A || flags.is_number())
            && (letterish(flags) || letterish(s.flags(pos + len)))
        {
            pos += len;
            while letterish(s.flags(pos)) {
                pos = s.next(pos);
            }
            out.add(pos)?;
            continue;
        }
        if flags.is_number() {
            let mut group = 0;
            while s.flags(pos).is_number() {
                pos = s.next(pos);
                group += 1;
                if group >= max_digits {
                    out.add(pos)?;
                    group = 0;
                }
            }
            out.add(pos)?;
            continue;
        }
        let (f2, body) =
            if cpt == ' ' as u32 { (s.flags(pos + len), pos + len) } else { (flags, pos) };
        // llama.cpp tests the current code point's flags (not the lookahead's) for "defined" here.
        if not_word(f2, marks) && flags.any() {
            pos = punct_run_end(&s, body, marks);
            out.add(pos)?;
            continue;
        }
        let (n_ws, last_ws, after_ws, last_nl) = whitespace_run(&s, pos);
        if let Some(p) = last_nl {
            pos = p;
            out.add(pos)?;
            continue;
        }
        if n_ws > 1 && after_ws < end {
            pos = last_ws;
            out.add(pos)?;
            continue;
        }
        if n_ws > 0 {
            pos = after_ws;
            out.add(pos)?;
            continue;
        }
        pos += len;
        out.add(pos)?;
    }
    Ok(())
}

/// After an apostrophe, the end of `'s|'t|'re|'ve|'m|'ll|'d` (any case) starting at `p1`.
fn contraction_end(s: &Seg<'_>, p1: usize, end: usize) -> Option<usize> {
    if p1 >= end {
        return None;
    }
    let (c1, l1) = s.at(p1);
    let c1 = ascii_lower(c1);
    if matches!(c1, 0x73 | 0x74 | 0x6D | 0x64) {
        return Some(p1 + l1);
    }
    if p1 + l1 < end {
        let (c2, l2) = s.at(p1 + l1);
        if matches!((c1, ascii_lower(c2)), (0x72, 0x65) | (0x76, 0x65) | (0x6C, 0x6C)) {
            return Some(p1 + l1 + l2);
        }
    }
    None
}

/// `[^\s\p{L}\p{N}]` (with `marks`, `\p{M}` counts as a letter).
fn not_word(f: Flags, marks: bool) -> bool {
    !(f.is_whitespace() || f.is_letter() || (marks && f.is_mark()) || f.is_number())
}

/// The end of `[^\s\p{L}\p{N}]+[\r\n]*` starting at `pos` (defined code points only).
fn punct_run_end(s: &Seg<'_>, mut pos: usize, marks: bool) -> usize {
    loop {
        let f = s.flags(pos);
        if not_word(f, marks) && f.any() {
            pos = s.next(pos);
        } else {
            break;
        }
    }
    loop {
        let (c, l) = s.at(pos);
        if c == 0x0D || c == 0x0A {
            pos += l;
        } else {
            break;
        }
    }
    pos
}

#[inline]
fn ascii_lower(c: u32) -> u32 {
    if (0x41..=0x5A).contains(&c) {
        c + 0x20
    } else {
        c
    }
}

/// A one-code-point regex (`\p{N}`, `[\r\n]`): each matching code point is its own piece, and
/// so is each stretch between them.
fn isolate_each<E>(
    t: &[u8],
    ini: usize,
    end: usize,
    class: impl Fn(u32, Flags) -> bool,
    emit: &mut impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let mut out = Out { prev: ini, emit };
    let mut pos = ini;
    while pos < end {
        let (c, l) = decode_at(t, pos);
        if class(c, Flags::of(c)) {
            out.add(pos)?;
            out.add(pos + l)?;
        }
        pos += l;
    }
    out.add(end)
}

/// A `[class]+` regex: each maximal run of matching code points is a piece, and so is each
/// stretch between them.
fn runs<E>(
    t: &[u8],
    ini: usize,
    end: usize,
    class: impl Fn(u32, Flags) -> bool,
    emit: &mut impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let mut out = Out { prev: ini, emit };
    let mut pos = ini;
    let mut in_run = false;
    while pos < end {
        let (c, l) = decode_at(t, pos);
        let m = class(c, Flags::of(c));
        if m != in_run {
            out.add(pos)?;
            in_run = m;
        }
        pos += l;
    }
    out.add(end)
}

/// A general leftmost-first regex given as "length of the match at `pos`, if any".
fn matches<E>(
    t: &[u8],
    ini: usize,
    end: usize,
    at: impl Fn(&[u8], usize, usize) -> Option<usize>,
    emit: &mut impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let mut out = Out { prev: ini, emit };
    let mut pos = ini;
    while pos < end {
        match at(t, pos, end) {
            Some(m) if m > pos => {
                out.add(pos)?;
                out.add(m)?;
                pos = m;
            }
            _ => pos += decode_at(t, pos).1,
        }
    }
    out.add(end)
}

/// `\s?X+` for a class X (through llama.cpp's collapsed-text `std::regex` path, where `\s` is
/// the White_Space set and X is its Unicode class).
fn ws_opt_then_run(class: fn(Flags) -> bool) -> impl Fn(&[u8], usize, usize) -> Option<usize> {
    move |t, pos, end| {
        let s = Seg { t, end };
        let (c, l) = s.at(pos);
        let mut p =
            if Flags::of(c).is_whitespace() && class(s.flags(pos + l)) { pos + l } else { pos };
        let start = p;
        while class(s.flags(p)) {
            p = s.next(p);
        }
        (p > start).then_some(p)
    }
}

/// `[\p{P}\$\+<=>\^~\|]` (and `` ` `` for Falcon) as llama.cpp's collapsed-text regex sees it:
/// ASCII by its own set, everything else by category.
fn punct_class(c: u32, f: Flags, backtick: bool) -> bool {
    if c < 0x80 {
        let b = c as u8;
        b.is_ascii_punctuation() && (b != b'`' || backtick)
    } else {
        !f.is_whitespace() && f.is_punct()
    }
}

/// `[一-龥ࠀ-一가-퟿]`, matched on code points after llama.cpp replaces non-ASCII whitespace.
fn cjk_class(c: u32, f: Flags) -> bool {
    ((0x4E00..=0x9FA5).contains(&c)
        || (0x0800..=0x4E00).contains(&c)
        || (0xAC00..=0xD7FF).contains(&c))
        && !f.is_whitespace()
}

/// `[0-9][0-9][0-9]` on code points: leftmost non-overlapping ASCII digit triples.
fn ascii_digit_triples<E>(
    t: &[u8],
    ini: usize,
    end: usize,
    emit: &mut impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    matches(
        t,
        ini,
        end,
        |t, pos, end| {
            (pos + 3 <= end && t[pos..pos + 3].iter().all(u8::is_ascii_digit)).then_some(pos + 3)
        },
        emit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(pre: PreTokenizer, text: &str) -> ([(usize, usize); 64], usize) {
        let mut v = [(0, 0); 64];
        let mut n = 0;
        split::<()>(pre, text.as_bytes(), &mut |a, b| {
            v[n] = (a, b);
            n += 1;
            Ok(())
        })
        .unwrap();
        (v, n)
    }

    fn words(pre: PreTokenizer, text: &str) -> std::vec::Vec<&str> {
        let (v, n) = pieces(pre, text);
        v[..n].iter().map(|&(a, b)| &text[a..b]).collect()
    }

    extern crate std;

    #[test]
    fn gpt2_split() {
        assert_eq!(words(PreTokenizer::Gpt2, "Hello world"), ["Hello", " world"]);
        assert_eq!(words(PreTokenizer::Gpt2, "   Hello"), ["  ", " Hello"]);
        assert_eq!(words(PreTokenizer::Gpt2, "I'm 33!!\n\n"), ["I", "'m", " 33", "!!", "\n\n"]);
        assert_eq!(words(PreTokenizer::Gpt2, "a\tb"), ["a", "\t", "b"]);
    }

    #[test]
    fn llama3_split() {
        assert_eq!(
            words(PreTokenizer::Llama3, "I'M 12345 ok\n\n  x"),
            ["I", "'M", " ", "123", "45", " ok", "\n\n", " ", " x"]
        );
        assert_eq!(words(PreTokenizer::Qwen2, "x 123"), ["x", " ", "1", "2", "3"]);
    }

    #[test]
    fn starcoder_split() {
        assert_eq!(words(PreTokenizer::StarCoder, "ab 12"), ["ab", " ", "1", "2"]);
    }
}
