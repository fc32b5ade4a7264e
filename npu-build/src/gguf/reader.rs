//! The parser: one pass over header, metadata and tensor infos that validates everything and
//! records positions, so later accesses can decode straight from the mapped bytes.
//!
//! Every read goes through [`Cursor`], which bounds-checks with `get()` and checked arithmetic;
//! every count read from the file is checked against the bytes that remain before it drives a
//! loop, and nothing is ever preallocated from a count.

use super::error::ErrorKind;
use super::tensor::TensorInfo;
use super::value::{ValueType, MAX_ARRAY_DEPTH};
use super::{GgmlType, DEFAULT_ALIGNMENT, MAX_DIMS};
use std::collections::BTreeMap;

/// Header magic, `GGUF` in file byte order.
const MAGIC: [u8; 4] = *b"GGUF";
/// Bytes of the fixed header: magic, version, tensor count, metadata count.
const HEADER_LEN: u64 = 24;
/// Fewest bytes one metadata entry can take: key length, empty key, type, one-byte value.
const MIN_KV_LEN: u64 = 8 + 4 + 1;
/// Fewest bytes one tensor info can take: name length, empty name, n_dims 0, type, offset.
const MIN_TENSOR_INFO_LEN: u64 = 8 + 4 + 4 + 8;

/// A metadata entry: its key and where its value's bytes are.
#[derive(Clone, Debug)]
pub(crate) struct MetaEntry {
    pub key: String,
    pub ty: ValueType,
    /// Byte range of the encoded value (for arrays: from the element-type field on).
    pub start: usize,
    pub end: usize,
}

/// Everything the parser learns about a file.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub data_start: u64,
    pub meta: Vec<MetaEntry>,
    pub meta_index: BTreeMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: BTreeMap<String, usize>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> u64 {
        (self.buf.len().saturating_sub(self.pos)) as u64
    }

    fn truncated(&self, what: &dyn Fn() -> String, needed: u64) -> ErrorKind {
        ErrorKind::Truncated {
            what: what(),
            offset: self.offset(),
            needed,
            file_len: self.buf.len() as u64,
        }
    }

    /// `n` bytes, or a truncation error naming `what` (built lazily: the happy path allocates
    /// no message).
    fn bytes(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], ErrorKind> {
        let got = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .and_then(|end| self.buf.get(self.pos..end).map(|s| (s, end)));
        match got {
            Some((s, end)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(self.truncated(what, n)),
        }
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], ErrorKind> {
        let b = self.bytes(N as u64, what)?;
        // `bytes` returned exactly N bytes.
        b.try_into().map_err(|_| self.truncated(what, N as u64))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, ErrorKind> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, ErrorKind> {
        self.array::<8>(what).map(u64::from_le_bytes)
    }

    /// A GGUF string (u64 length + bytes), validated as UTF-8.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<&'a str, ErrorKind> {
        let len = self.u64(&|| format!("length of {}", what()))?;
        let start = self.offset();
        let b = self.bytes(len, what)?;
        core::str::from_utf8(b).map_err(|_| ErrorKind::InvalidUtf8 { what: what(), offset: start })
    }

    /// Check (without reading) the value of type `ty` for `key`, advancing past it.
    fn skip_value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<(), ErrorKind> {
        let what = || format!("value of metadata key '{key}'");
        match ty {
            ValueType::Bool => {
                let off = self.offset();
                let [b] = self.array::<1>(&what)?;
                if b > 1 {
                    return Err(ErrorKind::InvalidBool {
                        key: key.to_owned(),
                        value: b,
                        offset: off,
                    });
                }
            }
            ValueType::String => {
                self.string(&what)?;
            }
            ValueType::Array => {
                let header_at = self.offset();
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(ErrorKind::ArrayTooDeep { key: key.to_owned(), offset: header_at });
                }
                let id = self.u32(&|| format!("array element type of metadata key '{key}'"))?;
                let elem = ValueType::from_id(id).ok_or_else(|| ErrorKind::UnknownValueType {
                    key: key.to_owned(),
                    id,
                    offset: header_at,
                })?;
                let len_at = self.offset();
                let len = self.u64(&|| format!("array length of metadata key '{key}'"))?;
                let max = self.remaining() / elem.min_size() as u64;
                if len > max {
                    return Err(ErrorKind::CountTooLarge {
                        field: format!(
                            "array length of metadata key '{key}' ({} elements)",
                            elem.name()
                        ),
                        value: len,
                        offset: len_at,
                        max,
                    });
                }
                match elem {
                    // Bools must each be checked; other scalars are skipped in one step.
                    ValueType::Bool | ValueType::String | ValueType::Array => {
                        for _ in 0..len {
                            self.skip_value(elem, key, depth + 1)?;
                        }
                    }
                    _ => {
                        let size = elem.fixed_size().unwrap_or(1) as u64;
                        // len <= remaining / size, so this neither overflows nor truncates.
                        self.bytes(len * size, &what)?;
                    }
                }
            }
            scalar => {
                self.bytes(scalar.fixed_size().unwrap_or(1) as u64, &what)?;
            }
        }
        Ok(())
    }
}

/// Parse and validate a whole GGUF image.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed, ErrorKind> {
    let file_len = buf.len() as u64;
    let mut c = Cursor { buf, pos: 0 };
    let (version, tensor_count, kv_count) = header(&mut c, file_len)?;
    let (meta, meta_index) = metadata(&mut c, kv_count)?;
    let alignment = alignment(buf, &meta, &meta_index)?;
    let (mut tensors, tensor_index) = tensor_infos(&mut c, tensor_count, alignment)?;
    // The data section starts at the next multiple of the alignment. It may lie past the end of
    // a file without tensor data; only tensors' ranges must be inside the file.
    let data_start = place_tensors(c.offset(), alignment, file_len, &mut tensors)?;
    check_overlap(&tensors)?;
    Ok(Parsed { version, alignment, data_start, meta, meta_index, tensors, tensor_index })
}

/// Magic, version and the two counts, each count bounded by the bytes that remain.
fn header(c: &mut Cursor<'_>, file_len: u64) -> Result<(u32, u64, u64), ErrorKind> {
    let magic = c.array::<4>(&|| "magic".to_owned())?;
    if magic != MAGIC {
        return Err(ErrorKind::BadMagic { found: magic });
    }
    let version = c.u32(&|| "version".to_owned())?;
    match version {
        2 | 3 => {}
        v if v > 0xffff && matches!(v.swap_bytes(), 1..=3) => {
            return Err(ErrorKind::BigEndian { raw: v });
        }
        v => return Err(ErrorKind::UnsupportedVersion { version: v }),
    }
    let tensor_count = c.u64(&|| "tensor_count".to_owned())?;
    let kv_count = c.u64(&|| "metadata_kv_count".to_owned())?;
    let rest = file_len.saturating_sub(HEADER_LEN);
    if kv_count > rest / MIN_KV_LEN {
        return Err(ErrorKind::CountTooLarge {
            field: "metadata_kv_count".to_owned(),
            value: kv_count,
            offset: 16,
            max: rest / MIN_KV_LEN,
        });
    }
    if tensor_count > rest / MIN_TENSOR_INFO_LEN {
        return Err(ErrorKind::CountTooLarge {
            field: "tensor_count".to_owned(),
            value: tensor_count,
            offset: 8,
            max: rest / MIN_TENSOR_INFO_LEN,
        });
    }
    Ok((version, tensor_count, kv_count))
}

type MetaTable = (Vec<MetaEntry>, BTreeMap<String, usize>);

/// The metadata entries, in file order, with an index by key (duplicate keys are errors).
fn metadata(c: &mut Cursor<'_>, kv_count: u64) -> Result<MetaTable, ErrorKind> {
    let mut meta: Vec<MetaEntry> = Vec::new();
    let mut meta_index = BTreeMap::new();
    for i in 0..kv_count {
        let entry_at = c.offset();
        let key = c.string(&|| format!("key of metadata entry #{i}"))?;
        let type_at = c.offset();
        let id = c.u32(&|| format!("value type of metadata key '{key}'"))?;
        let ty = ValueType::from_id(id).ok_or_else(|| ErrorKind::UnknownValueType {
            key: key.to_owned(),
            id,
            offset: type_at,
        })?;
        let start = c.pos;
        c.skip_value(ty, key, 0)?;
        if meta_index.insert(key.to_owned(), meta.len()).is_some() {
            return Err(ErrorKind::DuplicateKey { key: key.to_owned(), offset: entry_at });
        }
        meta.push(MetaEntry { key: key.to_owned(), ty, start, end: c.pos });
    }
    Ok((meta, meta_index))
}

type TensorTable = (Vec<TensorInfo>, BTreeMap<String, usize>);

/// The tensor infos, in file order, with an index by name; offsets relative to the data section.
fn tensor_infos(
    c: &mut Cursor<'_>,
    tensor_count: u64,
    alignment: u64,
) -> Result<TensorTable, ErrorKind> {
    let mut tensors: Vec<TensorInfo> = Vec::new();
    let mut tensor_index = BTreeMap::new();
    for i in 0..tensor_count {
        let info_at = c.offset();
        let name = c.string(&|| format!("name of tensor info #{i}"))?;
        let dims_at = c.offset();
        let n_dims = c.u32(&|| format!("dimension count of tensor '{name}'"))?;
        if n_dims as usize > MAX_DIMS {
            return Err(ErrorKind::TooManyDims {
                tensor: name.to_owned(),
                n_dims,
                offset: dims_at,
            });
        }
        let mut dims = [1u64; MAX_DIMS];
        for (d, dim) in dims.iter_mut().enumerate().take(n_dims as usize) {
            *dim = c.u64(&|| format!("dimension {d} of tensor '{name}'"))?;
        }
        let type_at = c.offset();
        let type_id = c.u32(&|| format!("type of tensor '{name}'"))?;
        let offset = c.u64(&|| format!("data offset of tensor '{name}'"))?;
        let ty = GgmlType::from_id(type_id).ok_or_else(|| ErrorKind::UnknownGgmlType {
            tensor: name.to_owned(),
            id: type_id,
            offset: type_at,
        })?;
        let t = TensorInfo::new(name, &dims[..n_dims as usize], ty, offset)?;
        if !offset.is_multiple_of(alignment) {
            return Err(ErrorKind::TensorMisaligned { tensor: name.to_owned(), offset, alignment });
        }
        if tensor_index.insert(name.to_owned(), tensors.len()).is_some() {
            return Err(ErrorKind::DuplicateTensor { name: name.to_owned(), offset: info_at });
        }
        tensors.push(t);
    }
    Ok((tensors, tensor_index))
}

/// Start of the data section (after the infos ending at `infos_end`); sets every tensor's
/// absolute file offset, checking that its bytes are inside the file.
fn place_tensors(
    infos_end: u64,
    alignment: u64,
    file_len: u64,
    tensors: &mut [TensorInfo],
) -> Result<u64, ErrorKind> {
    let data_start =
        infos_end.checked_next_multiple_of(alignment).ok_or(ErrorKind::BadAlignment {
            found: format!("{alignment} (data section start overflows)"),
        })?;
    for t in tensors.iter_mut() {
        let start = data_start.checked_add(t.offset());
        let end = start.and_then(|s| s.checked_add(t.n_bytes()));
        match (start, end) {
            (Some(s), Some(e)) if e <= file_len => t.set_file_offset(s),
            _ => {
                return Err(ErrorKind::TensorOutOfFile {
                    tensor: t.name().to_owned(),
                    start,
                    end,
                    file_len,
                })
            }
        }
    }
    Ok(data_start)
}

/// `general.alignment`, if present: any nonnegative integer type that is a nonzero power of two
/// (ggml writes uint32).
fn alignment(
    buf: &[u8],
    meta: &[MetaEntry],
    index: &BTreeMap<String, usize>,
) -> Result<u64, ErrorKind> {
    let Some(e) = index.get("general.alignment").and_then(|&i| meta.get(i)) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let mut pos = e.start;
    let v = super::value::decode(buf, &mut pos, e.ty);
    match v.as_ref().and_then(|v| v.as_u64()) {
        Some(a) if a.is_power_of_two() => Ok(a),
        Some(a) => Err(ErrorKind::BadAlignment { found: a.to_string() }),
        None => Err(ErrorKind::BadAlignment {
            found: match v {
                Some(v) => format!("a value of type {}", v.value_type().name()),
                None => "an unreadable value".to_owned(),
            },
        }),
    }
}

/// Tensors whose data ranges overlap are an error (a crafted or corrupted table would otherwise
/// let one tensor's writes alias another's). Sorting costs O(n log n) on a copy of the ranges.
fn check_overlap(tensors: &[TensorInfo]) -> Result<(), ErrorKind> {
    let mut ranges: Vec<(u64, u64, usize)> = tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| t.n_bytes() > 0)
        // Both fit: every range was checked to end inside the file.
        .map(|(i, t)| (t.file_offset(), t.file_offset().saturating_add(t.n_bytes()), i))
        .collect();
    ranges.sort_unstable();
    let name = |i: usize| tensors.get(i).map_or_else(String::new, |t| t.name().to_owned());
    for w in ranges.windows(2) {
        if let [a, b] = w {
            if b.0 < a.1 {
                return Err(ErrorKind::TensorOverlap {
                    first: name(a.2),
                    second: name(b.2),
                    offset: b.0,
                });
            }
        }
    }
    Ok(())
}
