//! Errors of the GGUF reader: every one names the file, what is wrong and where.

use super::value::ValueType;
use crate::dequant::DequantError;
use crate::ggml::GgmlType;
use core::fmt;

/// A GGUF file could not be read, or a value in it could not be used.
///
/// `Display` gives one line: `<file>: <what is wrong> (<where>)`.
#[derive(Debug)]
pub struct Error {
    file: String,
    kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(file: &str, kind: ErrorKind) -> Error {
        Error { file: file.to_owned(), kind }
    }

    /// The file name or path the error is about (as given to the reader).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// What went wrong, for callers that match on it.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            ErrorKind::Dequant { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What is wrong. Byte offsets are from the start of the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened, sized or mapped.
    Io {
        /// The operation that failed (`"open"`, `"map"`, ...).
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file ends before a field it must contain.
    Truncated {
        /// The field being read.
        what: String,
        /// Where the field starts.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The first four bytes are not `GGUF`.
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A GGUF version this reader does not read (only 2 and 3 are read).
    UnsupportedVersion {
        /// The version field.
        version: u32,
    },
    /// The version field reads byte-swapped: a big-endian GGUF.
    BigEndian {
        /// The version field as read little-endian.
        raw: u32,
    },
    /// A count in the file is larger than the rest of the file could possibly hold.
    CountTooLarge {
        /// The field (`"tensor_count"`, `"metadata_kv_count"`, `"array length of key 'k'"`).
        field: String,
        /// The value found.
        value: u64,
        /// Where the count is stored.
        offset: u64,
        /// The most the remaining bytes can hold.
        max: u64,
    },
    /// A string (key, value, tensor name) is not valid UTF-8.
    InvalidUtf8 {
        /// Which string.
        what: String,
        /// Where its bytes start.
        offset: u64,
    },
    /// Two metadata entries have the same key.
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the second one starts.
        offset: u64,
    },
    /// Two tensor infos have the same name.
    DuplicateTensor {
        /// The name.
        name: String,
        /// Where the second one starts.
        offset: u64,
    },
    /// A metadata value type id (or array element type id) outside 0..=12.
    UnknownValueType {
        /// The key whose value (or array element) has this type.
        key: String,
        /// The type id found.
        id: u32,
        /// Where the type id is stored.
        offset: u64,
    },
    /// Arrays nested deeper than [`MAX_ARRAY_DEPTH`](super::value::MAX_ARRAY_DEPTH).
    ArrayTooDeep {
        /// The key holding the array.
        key: String,
        /// Where the too-deep array header starts.
        offset: u64,
    },
    /// A bool value that is neither 0 nor 1.
    InvalidBool {
        /// The key holding it.
        key: String,
        /// The byte found.
        value: u8,
        /// Where it is.
        offset: u64,
    },
    /// `general.alignment` is not a nonzero power of two, or not an integer.
    BadAlignment {
        /// What was found, in words.
        found: String,
    },
    /// A tensor has more than [`MAX_DIMS`](super::MAX_DIMS) dimensions.
    TooManyDims {
        /// The tensor.
        tensor: String,
        /// The dimension count found.
        n_dims: u32,
        /// Where the count is stored.
        offset: u64,
    },
    /// The product of a tensor's dimensions (or its byte size) overflows.
    DimsOverflow {
        /// The tensor.
        tensor: String,
        /// Its dimensions, ne0 first.
        dims: Vec<u64>,
    },
    /// A tensor type id that ggml does not define: its size is unknown.
    UnknownGgmlType {
        /// The tensor.
        tensor: String,
        /// The type id found.
        id: u32,
        /// Where the type id is stored.
        offset: u64,
    },
    /// A tensor's first dimension is not a whole number of its type's blocks.
    RowNotBlockAligned {
        /// The tensor.
        tensor: String,
        /// Its type.
        ty: GgmlType,
        /// Its first dimension.
        ne0: u64,
    },
    /// A tensor's data offset is not a multiple of the file's alignment.
    TensorMisaligned {
        /// The tensor.
        tensor: String,
        /// Its offset within the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor's data does not lie inside the file.
    TensorOutOfFile {
        /// The tensor.
        tensor: String,
        /// First byte of its data (from file start), if computable.
        start: Option<u64>,
        /// One past its last byte, if computable.
        end: Option<u64>,
        /// The file's length.
        file_len: u64,
    },
    /// Two tensors' data ranges overlap.
    TensorOverlap {
        /// The tensor that starts first.
        first: String,
        /// The tensor that starts inside it.
        second: String,
        /// Where the second one starts.
        offset: u64,
    },
    /// A number from the file does not fit this platform's `usize`.
    TooLargeForPlatform {
        /// What was being sized.
        what: String,
        /// The value.
        value: u64,
    },
    /// A tensor could not be dequantized.
    Dequant {
        /// The tensor.
        tensor: String,
        /// Its type.
        ty: GgmlType,
        /// The dequantizer's reason.
        source: DequantError,
    },
    /// A row range outside the tensor, or an output buffer of the wrong length.
    BadRowRange {
        /// The tensor.
        tensor: String,
        /// What is wrong, in words.
        detail: String,
    },
    /// Memory for a dequantized tensor could not be reserved.
    OutOfMemory {
        /// The tensor.
        tensor: String,
        /// Bytes requested.
        bytes: u64,
    },
    /// A metadata key the caller needs is absent.
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata value has a type the caller cannot use.
    WrongType {
        /// The key.
        key: String,
        /// What was expected, in words.
        expected: &'static str,
        /// The value's type.
        found: ValueType,
    },
    /// A metadata value has the right type but an unusable value (out of range, inconsistent).
    BadValue {
        /// The key (or keys) involved.
        key: String,
        /// What is wrong, in words.
        detail: String,
    },
    /// `general.architecture` names an architecture without a hyperparameter table.
    UnsupportedArchitecture {
        /// The architecture found.
        arch: String,
        /// The architectures this crate reads.
        supported: Vec<&'static str>,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            Io { op, source } => write!(f, "cannot {op} file: {source}"),
            Truncated { what, offset, needed, file_len } => write!(
                f,
                "truncated file: {what} at byte {offset} needs {needed} bytes, but the file ends at byte {file_len}"
            ),
            BadMagic { found } => write!(
                f,
                "not a GGUF file: the first 4 bytes are {} (\"{}\"), expected \"GGUF\"",
                hex(found),
                found.escape_ascii()
            ),
            UnsupportedVersion { version: 1 } => write!(
                f,
                "unsupported GGUF version 1 (at byte 4): v1 files (2023) use 32-bit counts; only versions 2 and 3 are read; re-convert the model with a current llama.cpp"
            ),
            UnsupportedVersion { version } => write!(
                f,
                "unsupported GGUF version {version} (at byte 4): only versions 2 and 3 are read"
            ),
            BigEndian { raw } => write!(
                f,
                "big-endian GGUF (the version field at byte 4 reads {raw:#010x}, byte-swapped {}): only little-endian files are supported",
                raw.swap_bytes()
            ),
            CountTooLarge { field, value, offset, max } => write!(
                f,
                "{field} {value} (at byte {offset}) is impossible: the rest of the file can hold at most {max}"
            ),
            InvalidUtf8 { what, offset } => write!(f, "{what} at byte {offset} is not valid UTF-8"),
            DuplicateKey { key, offset } => {
                write!(f, "duplicate metadata key '{key}' (second entry at byte {offset})")
            }
            DuplicateTensor { name, offset } => {
                write!(f, "duplicate tensor name '{name}' (second tensor info at byte {offset})")
            }
            UnknownValueType { key, id, offset } => write!(
                f,
                "metadata key '{key}': unknown value type id {id} at byte {offset} (GGUF defines 0..=12)"
            ),
            ArrayTooDeep { key, offset } => write!(
                f,
                "metadata key '{key}': arrays nested more than {} deep (array at byte {offset})",
                super::value::MAX_ARRAY_DEPTH
            ),
            InvalidBool { key, value, offset } => write!(
                f,
                "metadata key '{key}': bool byte {value} at byte {offset} is neither 0 nor 1"
            ),
            BadAlignment { found } => write!(
                f,
                "metadata key 'general.alignment' must be a nonzero power of two, found {found}"
            ),
            TooManyDims { .. }
            | DimsOverflow { .. }
            | UnknownGgmlType { .. }
            | RowNotBlockAligned { .. }
            | TensorMisaligned { .. }
            | TensorOutOfFile { .. }
            | TensorOverlap { .. }
            | TooLargeForPlatform { .. }
            | Dequant { .. }
            | BadRowRange { .. }
            | OutOfMemory { .. } => self.fmt_tensor(f),
            MissingKey { key } => write!(f, "required metadata key '{key}' is missing"),
            WrongType { key, expected, found } => write!(
                f,
                "metadata key '{key}' has type {}, expected {expected}",
                found.name()
            ),
            BadValue { key, detail } => write!(f, "metadata key '{key}': {detail}"),
            UnsupportedArchitecture { arch, supported } => write!(
                f,
                "unsupported architecture '{arch}' (general.architecture); supported: {}",
                supported.join(", ")
            ),
        }
    }
}

impl ErrorKind {
    /// The messages of the errors about one tensor's info or data.
    fn fmt_tensor(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            TooManyDims { tensor, n_dims, offset } => write!(
                f,
                "tensor '{tensor}': {n_dims} dimensions (at byte {offset}), ggml allows at most {}",
                super::MAX_DIMS
            ),
            DimsOverflow { tensor, dims } => write!(
                f,
                "tensor '{tensor}': dimensions {dims:?} overflow (element count or byte size exceeds 2^63)"
            ),
            UnknownGgmlType { tensor, id, offset } => write!(
                f,
                "tensor '{tensor}': unknown ggml type id {id} (at byte {offset}), so its size is unknown"
            ),
            RowNotBlockAligned { tensor, ty, ne0 } => write!(
                f,
                "tensor '{tensor}': first dimension {ne0} is not a multiple of the {ty} block length {}",
                ty.block_len()
            ),
            TensorMisaligned { tensor, offset, alignment } => write!(
                f,
                "tensor '{tensor}': data offset {offset} is not a multiple of the alignment {alignment}"
            ),
            TensorOutOfFile { tensor, start, end, file_len } => {
                write!(f, "tensor '{tensor}': data ")?;
                match (start, end) {
                    (Some(s), Some(e)) => write!(f, "at bytes {s}..{e}")?,
                    (Some(s), None) => write!(f, "starting at byte {s}")?,
                    _ => write!(f, "offset")?,
                }
                write!(f, " lies outside the file ({file_len} bytes)")
            }
            TensorOverlap { first, second, offset } => write!(
                f,
                "tensor '{second}' (data at byte {offset}) overlaps the data of tensor '{first}'"
            ),
            TooLargeForPlatform { what, value } => {
                write!(f, "{what} ({value}) does not fit in this platform's address space")
            }
            Dequant { tensor, ty, source } => {
                write!(f, "cannot dequantize tensor '{tensor}' (type {ty}): {source}")
            }
            BadRowRange { tensor, detail } => write!(f, "tensor '{tensor}': {detail}"),
            OutOfMemory { tensor, bytes } => {
                write!(f, "tensor '{tensor}': cannot allocate {bytes} bytes for its f32 values")
            }
            other => write!(f, "{other:?}"),
        }
    }
}

fn hex(b: &[u8; 4]) -> String {
    format!("{:02x} {:02x} {:02x} {:02x}", b[0], b[1], b[2], b[3])
}
