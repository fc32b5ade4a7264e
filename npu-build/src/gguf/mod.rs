//! GGUF: the file format, read over a memory map.
//!
//! [`Gguf::open`] maps a file, validates header, metadata and tensor table in one pass, and
//! then hands out metadata [`Value`]s, [`TensorInfo`]s and tensor bytes that borrow from the
//! map — nothing is copied, so opening a 4 GB model costs the tensor table, not 4 GB of RAM.
//! [`Gguf::dequantize_rows`] turns any row range of a tensor into f32 through
//! [`crate::dequant`]; [`HParams`] and [`TokenizerSummary`] give typed access to the metadata
//! llama.cpp writes.
//!
//! ```no_run
//! # fn main() -> Result<(), npu_build::gguf::Error> {
//! let g = npu_build::gguf::Gguf::open("model.gguf")?;
//! let hp = g.hparams()?;
//! let embd = g.tensor("token_embd.weight").expect("no embedding");
//! let mut row = vec![0f32; embd.row_len() as usize];
//! g.dequantize_rows(embd, 42, 1, &mut row)?; // token 42's embedding
//! # let _ = hp; Ok(()) }
//! ```
//!
//! # The format (GGUF v2/v3, little-endian)
//!
//! Normative spec: ggml's `docs/gguf.md`. All integers are little-endian; a *string* is a
//! `u64` byte length followed by that many UTF-8 bytes (no terminator).
//!
//! | field | type | notes |
//! |---|---|---|
//! | magic | 4 bytes | `GGUF` |
//! | version | u32 | 3 (current) or 2 (same layout); 1 used u32 counts and is not read |
//! | tensor_count | u64 | |
//! | metadata_kv_count | u64 | |
//! | metadata | kv × count | key string, value type u32, value |
//! | tensor infos | × count | name string, n_dims u32 (≤ 4), dims u64 × n_dims (ne0 first), ggml type u32, offset u64 |
//! | padding | | zeros up to a multiple of `general.alignment` (u32, default 32) |
//! | tensor data | | each tensor at `data_start + offset`; offsets are multiples of the alignment |
//!
//! Value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (one byte, 0/1),
//! 8 string, 9 array (element type u32, length u64, elements; arrays may nest), 10 u64, 11 i64,
//! 12 f64. A tensor's byte size is `n_elements / block_len × block_bytes` of its ggml type
//! ([`GgmlType`]); ne0 must be a whole number of blocks.
//!
//! Big-endian GGUFs (v3 allows them; the version field then reads byte-swapped) are detected
//! and refused with a clear error: no model this project targets ships that way.
//!
//! # Why not gguf-rs
//!
//! The design named the `gguf-rs` crate. Its version 0.1.8 cannot carry any part of this job:
//!
//! - it reads metadata only: no accessor for tensor data and no dequantization;
//! - metadata arrays are truncated to 3 entries by default, so the tokenizer vocabulary is lost
//!   unless every caller remembers a special entry point;
//! - tensor sizes are guessed from the type id (block length 1, 32 or 256 by id range), which
//!   mis-sizes BF16 (1/256 of its bytes), IQ4_NL, the integer types and MXFP4;
//! - its "mmap" mode copies everything after the magic into a `Vec` (RAM = file size), and the
//!   default mode makes one read syscall per field;
//! - type id 40 (NVFP4 in current ggml) hits an `unreachable!` — a panic on input;
//! - it pulls CLI dependencies (clap, comfy-table, simple_logger, serde_json with
//!   `arbitrary_precision`) into every user's build script.
//!
//! The format is small; this reader is zero-copy, sizes tensors from the full ggml type table,
//! never truncates arrays, never panics on input, and keeps metadata in file order.
//!
//! # Hostile input
//!
//! Every error names the file, what is wrong and where (byte offset, key or tensor). No read
//! indexes a slice unchecked, all offset arithmetic is checked, and no allocation is sized by a
//! count from the file: counts are first bounded by the bytes that remain (each entry needs a
//! minimum number of bytes). A cargo-fuzz target (`npu-build/fuzz`) exercises this.

mod error;

mod hparams;
mod reader;
mod tensor;
mod value;
mod writer;

pub use crate::ggml::GgmlType;
pub use error::{Error, ErrorKind};
pub use hparams::{rope_style_name, HParams, RopeStyle, TokenizerSummary};
pub use tensor::TensorInfo;
pub use value::{Array, ArrayIter, Value, ValueType, MAX_ARRAY_DEPTH};
pub use writer::GgufWriter;

use reader::{MetaEntry, Parsed};
use std::path::Path;

/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Most dimensions a tensor may have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// The bytes a [`Gguf`] reads from.
enum Storage<'a> {
    Mmap(memmap2::Mmap),
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Storage<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Borrowed(b) => b,
            Storage::Owned(v) => v,
        }
    }
}

/// An opened, validated GGUF file.
///
/// `Gguf<'static>` owns its bytes (a memory map from [`Gguf::open`] or a `Vec` from
/// [`Gguf::from_vec`]); [`Gguf::from_bytes`] borrows them.
pub struct Gguf<'a> {
    name: String,
    storage: Storage<'a>,
    parsed: Parsed,
}

impl core::fmt::Debug for Gguf<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Gguf")
            .field("name", &self.name)
            .field("version", &self.parsed.version)
            .field("metadata", &self.parsed.meta.len())
            .field("tensors", &self.parsed.tensors.len())
            .finish()
    }
}

impl Gguf<'static> {
    /// Map and validate the file at `path`. Errors name the path as given.
    ///
    /// The file must not be modified while the returned value lives (the map would change
    /// under it); build scripts read model files that nothing else writes.
    pub fn open(path: impl AsRef<Path>) -> Result<Gguf<'static>, Error> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |op, source| Error::new(&name, ErrorKind::Io { op, source });
        let file = std::fs::File::open(path).map_err(|e| io("open", e))?;
        let meta = file.metadata().map_err(|e| io("stat", e))?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
            let reason = std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            return Err(io("open", reason));
        }
        let len = meta.len();
        let storage = if len == 0 {
            // Mapping an empty file fails on some platforms; an empty Vec gives the same
            // "truncated" error as any other short file.
            Storage::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and private to this value; the documented contract
            // is that the file is not modified while mapped (a concurrent writer could change
            // bytes after validation, which is the one risk mmap readers accept).
            Storage::Mmap(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io("map", e))?)
        };
        Self::with_storage(name, storage)
    }

    /// Validate an in-memory GGUF image that the result owns.
    pub fn from_vec(name: &str, bytes: Vec<u8>) -> Result<Gguf<'static>, Error> {
        Self::with_storage(name.to_owned(), Storage::Owned(bytes))
    }
}

impl<'a> Gguf<'a> {
    /// Validate an in-memory GGUF image without copying it. `name` is used in error messages.
    pub fn from_bytes(name: &str, bytes: &'a [u8]) -> Result<Gguf<'a>, Error> {
        Self::with_storage(name.to_owned(), Storage::Borrowed(bytes))
    }

    fn with_storage(name: String, storage: Storage<'a>) -> Result<Gguf<'a>, Error> {
        match reader::parse(storage.bytes()) {
            Ok(parsed) => Ok(Gguf { name, storage, parsed }),
            Err(kind) => Err(Error::new(&name, kind)),
        }
    }

    pub(crate) fn err(&self, kind: ErrorKind) -> Error {
        Error::new(&self.name, kind)
    }

    /// The name errors use: the path given to [`Gguf::open`] or the name given with the bytes.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// The file's length in bytes.
    pub fn file_len(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.parsed.version
    }

    /// Tensor data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.parsed.alignment
    }

    /// Offset of the tensor data section from the start of the file.
    pub fn data_start(&self) -> u64 {
        self.parsed.data_start
    }

    fn value_of(&self, e: &MetaEntry) -> Option<Value<'_>> {
        let bytes = self.bytes().get(..e.end)?;
        if e.ty == ValueType::Array {
            // The parser recorded where the array ends: no need to walk a 150k-token
            // vocabulary again just to find its end.
            return value::array_at(bytes, e.start).map(Value::Array);
        }
        let mut pos = e.start;
        value::decode(bytes, &mut pos, e.ty)
    }

    /// Every metadata entry `(key, value)`, in file order.
    pub fn metadata(&self) -> impl ExactSizeIterator<Item = (&str, Value<'_>)> + '_ {
        self.parsed.meta.iter().map(move |e| {
            // Validated at open, so decoding cannot fail; a (never reached) failure would show
            // as a zero byte rather than a panic.
            let v = self.value_of(e).unwrap_or(Value::U8(0));
            (e.key.as_str(), v)
        })
    }

    /// Number of metadata entries.
    pub fn metadata_len(&self) -> usize {
        self.parsed.meta.len()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<Value<'_>> {
        let e = self.parsed.meta.get(*self.parsed.meta_index.get(key)?)?;
        self.value_of(e)
    }

    fn typed<'s, T>(
        &'s self,
        key: &str,
        expected: &'static str,
        conv: impl FnOnce(&Value<'s>) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match conv(&v) {
                Some(t) => Ok(Some(t)),
                None => Err(self.wrong_type(key, expected, &v)),
            },
        }
    }

    fn wrong_type(&self, key: &str, expected: &'static str, v: &Value<'_>) -> Error {
        // An integer of the right kind but out of range is a bad value, not a wrong type.
        let kind = match (v.as_i64(), v.as_u64()) {
            (Some(_), _) | (_, Some(_)) if expected.contains("integer") => ErrorKind::BadValue {
                key: key.to_owned(),
                detail: format!("{v:?} does not fit {expected}"),
            },
            _ => ErrorKind::WrongType { key: key.to_owned(), expected, found: v.value_type() },
        };
        self.err(kind)
    }

    /// `key` as a `u32`: `None` if absent; an error if it is not an integer in range.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, Error> {
        self.typed(key, "an integer in 0..=4294967295", |v| {
            v.as_u64().and_then(|n| u32::try_from(n).ok())
        })
    }

    /// `key` as a `u64`: `None` if absent; an error if it is not a nonnegative integer.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, Error> {
        self.typed(key, "a nonnegative integer", |v| v.as_u64())
    }

    /// `key` as an `i64`: `None` if absent; an error if it is not an integer that fits.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, Error> {
        self.typed(key, "an integer in the i64 range", |v| v.as_i64())
    }

    /// `key` as an `f32`: `None` if absent; an error if it is not a float32 (float64 values are
    /// rounded to f32).
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>, Error> {
        self.typed(key, "a float", |v| v.as_f64().map(|x| x as f32))
    }

    /// `key` as a `bool`: `None` if absent; an error if it is not a bool.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        self.typed(key, "a bool", |v| v.as_bool())
    }

    /// `key` as a string borrowed from the file: `None` if absent; an error if not a string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, Error> {
        self.typed(key, "a string", |v| v.as_str())
    }

    /// `key` as an array: `None` if absent; an error if not an array.
    pub fn get_array(&self, key: &str) -> Result<Option<Array<'_>>, Error> {
        self.typed(key, "an array", |v| v.as_array())
    }

    /// `key` as an array of strings, collected (every element, never truncated).
    pub fn get_str_array(&self, key: &str) -> Result<Option<Vec<&str>>, Error> {
        let Some(a) = self.get_array(key)? else { return Ok(None) };
        if a.elem_type() != ValueType::String {
            return Err(self.err(ErrorKind::WrongType {
                key: key.to_owned(),
                expected: "an array of strings",
                found: a.elem_type(),
            }));
        }
        Ok(Some(a.iter().filter_map(|v| v.as_str()).collect()))
    }

    /// Every tensor info, in the order of the file's tensor table.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.parsed.tensors
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.parsed.tensors.get(*self.parsed.tensor_index.get(name)?)
    }

    /// The tensor's raw bytes (ggml blocks), borrowed from the file.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        self.byte_range(t.file_offset(), t.n_bytes()).unwrap_or(&[])
    }

    fn byte_range(&self, start: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(start).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.bytes().get(start..end)
    }

    /// The whole tensor as f32, in ggml element order (ne0 fastest).
    ///
    /// For big tensors prefer [`Gguf::dequantize_rows`] in chunks.
    pub fn dequantize(&self, t: &TensorInfo) -> Result<Vec<f32>, Error> {
        self.check_dequantizable(t)?;
        let n = self.to_usize(t.n_elements(), t, "element count")?;
        let mut out = Vec::new();
        out.try_reserve_exact(n).map_err(|_| {
            self.err(ErrorKind::OutOfMemory {
                tensor: t.name().to_owned(),
                bytes: t.n_elements().saturating_mul(4),
            })
        })?;
        out.resize(n, 0.0);
        self.dequantize_rows(t, 0, t.n_rows(), &mut out)?;
        Ok(out)
    }

    /// Dequantize rows `first_row .. first_row + n_rows` of `t` into `out`, which must hold
    /// exactly `n_rows * t.row_len()` values. A row is ne0 consecutive elements; rows are
    /// indexed over all the dimensions after ne0 flattened (ggml order).
    pub fn dequantize_rows(
        &self,
        t: &TensorInfo,
        first_row: u64,
        n_rows: u64,
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.check_dequantizable(t)?;
        let bad = |detail: String| {
            self.err(ErrorKind::BadRowRange { tensor: t.name().to_owned(), detail })
        };
        let end_row =
            first_row.checked_add(n_rows).filter(|&e| e <= t.n_rows()).ok_or_else(|| {
                bad(format!(
                    "rows {first_row}..{first_row}+{n_rows} exceed its {} rows",
                    t.n_rows()
                ))
            })?;
        let want = n_rows.checked_mul(t.row_len());
        if want != Some(out.len() as u64) {
            return Err(bad(format!(
                "output holds {} values, {n_rows} rows of {} need {}",
                out.len(),
                t.row_len(),
                want.map_or("more than 2^64".to_owned(), |w| w.to_string())
            )));
        }
        // Within the tensor (checked at open), so none of this overflows.
        let src = first_row
            .checked_mul(t.row_bytes())
            .and_then(|s| s.checked_add(t.file_offset()))
            .zip(n_rows.checked_mul(t.row_bytes()))
            .and_then(|(start, len)| self.byte_range(start, len))
            .ok_or_else(|| bad(format!("rows {first_row}..{end_row} lie outside the file")))?;
        crate::dequant::dequantize(t.ty(), src, out).map_err(|source| {
            self.err(ErrorKind::Dequant { tensor: t.name().to_owned(), ty: t.ty(), source })
        })
    }

    /// `Ok` if [`crate::dequant`] handles `t`'s type; otherwise the error [`Gguf::dequantize`]
    /// would give (naming the file, the tensor, its type and the supported types).
    pub fn check_dequantizable(&self, t: &TensorInfo) -> Result<(), Error> {
        if crate::dequant::supported(t.ty()) {
            Ok(())
        } else {
            Err(self.err(ErrorKind::Dequant {
                tensor: t.name().to_owned(),
                ty: t.ty(),
                source: crate::dequant::DequantError::Unsupported(t.ty()),
            }))
        }
    }

    fn to_usize(&self, v: u64, t: &TensorInfo, what: &str) -> Result<usize, Error> {
        usize::try_from(v).map_err(|_| {
            self.err(ErrorKind::TooLargeForPlatform {
                what: format!("{what} of tensor '{}'", t.name()),
                value: v,
            })
        })
    }

    /// Metadata keys in sorted (byte) order, for output that must not depend on file order.
    pub fn sorted_keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.parsed.meta_index.keys().map(String::as_str)
    }
}
