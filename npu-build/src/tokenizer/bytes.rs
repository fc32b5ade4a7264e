//! The tables as one byte file, and the Rust source that borrows it in place.
//!
//! Generated code does not spell the tables out as literals (hundreds of thousands of them
//! for a 150k-token vocabulary, which rustc spends minutes and a GiB on): the build writes
//! the slices into one file, `include_bytes!`s it into a [`TOKENIZER_ALIGN`]-aligned static,
//! and the generated `TokenizerTables` names only each slice's offset and length.
//!
//! File layout: one section per slice of `TokenizerTables`, in [`OwnedTokenizerTables::parts`]
//! order (4-byte elements first: `u32`, `f32`, [`BpeMerge`] as four `u32`; then bytes), each
//! starting on a [`TOKENIZER_ALIGN`] boundary, zero bytes between; integers and floats in the
//! compilation target's byte order.

use super::OwnedTokenizerTables;
use npu_runtime::tokenizer::{BpeMerge, TokenizerKind};
use std::fmt::Write as _;

/// Alignment of the tokenizer file's storage and of each of its sections.
pub const TOKENIZER_ALIGN: usize = 16;

/// One slice of the tables, by element type.
enum Part<'a> {
    Words(&'a [u32]),
    Floats(&'a [f32]),
    Merges(&'a [BpeMerge]),
    Bytes(&'a [u8]),
}

impl Part<'_> {
    /// Number of elements.
    fn len(&self) -> usize {
        match self {
            Part::Words(v) => v.len(),
            Part::Floats(v) => v.len(),
            Part::Merges(v) => v.len(),
            Part::Bytes(v) => v.len(),
        }
    }

    /// Bytes in the file (`BpeMerge` is `repr(C)`: four `u32`).
    fn byte_len(&self) -> usize {
        match self {
            Part::Words(_) | Part::Floats(_) => 4 * self.len(),
            Part::Merges(_) => 16 * self.len(),
            Part::Bytes(_) => self.len(),
        }
    }

    /// Appends the elements in the given byte order.
    fn write(&self, out: &mut Vec<u8>, little_endian: bool) {
        let mut word = |w: u32| {
            out.extend_from_slice(&if little_endian { w.to_le_bytes() } else { w.to_be_bytes() })
        };
        match self {
            Part::Words(v) => v.iter().for_each(|&w| word(w)),
            Part::Floats(v) => v.iter().for_each(|x| word(x.to_bits())),
            Part::Merges(v) => {
                v.iter().flat_map(|m| [m.left, m.right, m.rank, m.merged]).for_each(word)
            }
            Part::Bytes(v) => out.extend_from_slice(v),
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

fn align_up(at: usize) -> usize {
    at.div_ceil(TOKENIZER_ALIGN) * TOKENIZER_ALIGN
}

impl OwnedTokenizerTables {
    /// Every slice of the tables with its field name and element type, in file order.
    fn parts(&self) -> [(&'static str, &'static str, Part<'_>); 9] {
        [
            ("token_offsets", "u32", Part::Words(&self.token_offsets)),
            ("sorted_ids", "u32", Part::Words(&self.sorted_ids)),
            ("merges", "::npu_runtime::tokenizer::BpeMerge", Part::Merges(&self.merges)),
            ("scores", "f32", Part::Floats(&self.scores)),
            ("specials", "u32", Part::Words(&self.specials)),
            ("eog", "u32", Part::Words(&self.eog)),
            ("byte_tokens", "u32", Part::Words(&self.byte_tokens)),
            ("token_bytes", "u8", Part::Bytes(&self.token_bytes)),
            ("token_attrs", "u8", Part::Bytes(&self.token_attrs)),
        ]
    }

    /// The sections of [`to_bytes`](Self::to_bytes), in file order.
    pub fn sections(&self) -> Vec<Section> {
        let mut at = 0usize;
        self.parts()
            .into_iter()
            .map(|(field, ty, part)| {
                let offset = align_up(at);
                at = offset + part.byte_len();
                Section { field, ty, offset, len: part.len() }
            })
            .collect()
    }

    /// The tables' slices as one file (layout: see the module), integers and floats in
    /// little- or big-endian order. Deterministic.
    pub fn to_bytes(&self, little_endian: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, _, part) in self.parts() {
            out.resize(align_up(out.len()), 0);
            part.write(&mut out, little_endian);
        }
        out
    }

    /// Rust source for the tables over the bytes of [`to_bytes`](Self::to_bytes):
    /// `const {PREFIX}_LEN: usize` (the file's length) and
    /// `static {PREFIX}: npu_runtime::tokenizer::TokenizerTables<'static>` whose slices borrow
    /// `{PREFIX}_STORE.0`, a `[u8; {PREFIX}_LEN]` in an aligned wrapper that the including
    /// code defines ([`store_source`]). rustc checks every section's bounds and alignment when
    /// it evaluates the static. Deterministic.
    pub fn to_rust_source(&self, prefix: &str) -> String {
        let rt = "::npu_runtime::tokenizer";
        let sections = self.sections();
        let ends =
            self.parts().into_iter().zip(&sections).map(|((.., p), s)| s.offset + p.byte_len());
        let total = ends.max().unwrap_or(0);
        let mut s = String::new();
        let _ = writeln!(s, "// Tokenizer tables: {} tokens, {} merges, borrowed from {prefix}_STORE ({total} bytes).", self.token_offsets.len().saturating_sub(1), self.merges.len());
        let _ = writeln!(s, "const {prefix}_LEN: usize = {total};");
        s.push_str(SECTION_FN);
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
        for f in &sections {
            let _ = writeln!(
                s,
                "    {}: npu_tok_section::<{}>(&{prefix}_STORE.0, {}, {}),",
                f.field, f.ty, f.offset, f.len
            );
        }
        let opt = |o: Option<u32>| o.map_or("None".to_owned(), |v| format!("Some({v})"));
        for (name, v) in [
            ("bos", self.bos),
            ("eos", self.eos),
            ("eot", self.eot),
            ("eom", self.eom),
            ("pad", self.pad),
        ] {
            let _ = writeln!(s, "    {name}: {},", opt(v));
        }
        let _ = writeln!(s, "    add_bos: {},", self.add_bos);
        let _ = writeln!(s, "    add_eos: {},", self.add_eos);
        let _ = writeln!(s, "    add_space_prefix: {},", self.add_space_prefix);
        let _ = writeln!(s, "    ignore_merges: {},", self.ignore_merges);
        let _ = writeln!(s, "}};");
        s
    }
}

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
/// `{prefix}_STORE`, the file `OUT_DIR/{file}` included into a [`TOKENIZER_ALIGN`]-aligned
/// static.
pub fn store_source(prefix: &str, file: &str) -> String {
    format!(
        "#[repr(C, align({TOKENIZER_ALIGN}))]\nstruct NpuTokStore<T: ?Sized>(T);\nstatic {prefix}_STORE: NpuTokStore<[u8; {prefix}_LEN]> = NpuTokStore(*::core::include_bytes!(::core::concat!(::core::env!(\"OUT_DIR\"), \"/{file}\")));\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::TokenizerSource;

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

    /// The 4-byte words of `bytes`, read the way the target reads them.
    fn words(bytes: &[u8], le: bool) -> Vec<u32> {
        let word = |w: &[u8]| {
            let w = [w[0], w[1], w[2], w[3]];
            if le {
                u32::from_le_bytes(w)
            } else {
                u32::from_be_bytes(w)
            }
        };
        bytes.chunks_exact(4).map(word).collect()
    }

    #[test]
    fn bytes_hold_every_table_at_its_section() {
        let mut t = small();
        t.scores = vec![-1.5, 0.0, f32::from_bits(0x7fc0_0001)];
        assert!(!t.merges.is_empty() && !t.specials.is_empty());
        for le in [true, false] {
            let bytes = t.to_bytes(le);
            let secs = t.sections();
            for ((field, _, part), s) in t.parts().iter().zip(&secs) {
                assert_eq!((s.field, s.offset % TOKENIZER_ALIGN), (*field, 0));
                let at = &bytes[s.offset..s.offset + part.byte_len()];
                match part {
                    Part::Words(v) => assert_eq!(&words(at, le), v, "{field}"),
                    Part::Floats(v) => {
                        let bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
                        assert_eq!(words(at, le), bits, "{field}");
                    }
                    Part::Merges(v) => {
                        let m: Vec<BpeMerge> = words(at, le)
                            .chunks_exact(4)
                            .map(|c| BpeMerge { left: c[0], right: c[1], rank: c[2], merged: c[3] })
                            .collect();
                        assert_eq!(&m, v);
                    }
                    Part::Bytes(v) => assert_eq!(&at, v, "{field}"),
                }
            }
            let last = secs.last().unwrap();
            assert_eq!(bytes.len(), last.offset + last.len, "the file ends with a byte section");
        }
        assert_ne!(t.to_bytes(true), t.to_bytes(false));
        assert_eq!(small().to_bytes(true), small().to_bytes(true), "deterministic");
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
        let len = format!("const TOK_LEN: usize = {};", t.to_bytes(true).len());
        assert!(src.contains(&len), "{src}");
        assert!(store_source("TOK", "npu-model/X.tok").contains("\"/npu-model/X.tok\""));
    }
}
