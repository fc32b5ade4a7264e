//! Metadata values: their type ids and zero-copy views into the file's bytes.
//!
//! The reader validates every value once when the file is opened (types, UTF-8, bool bytes,
//! array lengths against the bytes that remain). Afterwards a [`Value`] is decoded on demand from
//! the mapped bytes; strings and arrays borrow from the file, nothing is copied.

use core::fmt;

/// Arrays may nest (an array of arrays); deeper nesting than this is refused so a crafted file
/// cannot exhaust the stack.
pub const MAX_ARRAY_DEPTH: u32 = 8;

/// A GGUF metadata value type (`gguf_metadata_value_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum ValueType {
    /// `uint8`, id 0.
    U8 = 0,
    /// `int8`, id 1.
    I8 = 1,
    /// `uint16`, id 2.
    U16 = 2,
    /// `int16`, id 3.
    I16 = 3,
    /// `uint32`, id 4.
    U32 = 4,
    /// `int32`, id 5.
    I32 = 5,
    /// `float32`, id 6.
    F32 = 6,
    /// `bool` (one byte, 0 or 1), id 7.
    Bool = 7,
    /// `string` (u64 length + UTF-8 bytes, no terminator), id 8.
    String = 8,
    /// `array` (u32 element type + u64 length + elements), id 9.
    Array = 9,
    /// `uint64`, id 10.
    U64 = 10,
    /// `int64`, id 11.
    I64 = 11,
    /// `float64`, id 12.
    F64 = 12,
}

impl ValueType {
    /// The type with this id, or `None` outside 0..=12.
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The id stored in the file.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Lower-case name as gguf-py spells it (`"uint32"`, `"string"`, ...).
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "uint8",
            I8 => "int8",
            U16 => "uint16",
            I16 => "int16",
            U32 => "uint32",
            I32 => "int32",
            F32 => "float32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "uint64",
            I64 => "int64",
            F64 => "float64",
        }
    }

    /// Encoded size of one value, for the fixed-size (scalar) types.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The fewest bytes one value of this type can occupy (an empty string is its 8-byte length,
    /// an empty array its 4-byte type and 8-byte length). Used to bound counts from the file.
    pub fn min_size(self) -> usize {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value, borrowed from the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// `string`.
    String(&'a str),
    /// `array`, possibly of arrays.
    Array(Array<'a>),
}

impl<'a> Value<'a> {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F32(_) => ValueType::F32,
            Value::F64(_) => ValueType::F64,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
        }
    }

    /// Any integer type as `u64`, if it is nonnegative. Converters disagree on signedness and
    /// width of counts (u32 vs i32 vs u64), so integer getters accept every lossless case.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type as `i64`, if it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A `float32` or `float64` as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// A `bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A `string`.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An `array`.
    pub fn as_array(&self) -> Option<Array<'a>> {
        match *self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A metadata array, borrowed from the file: element type, length and the elements' bytes.
#[derive(Clone, Copy, PartialEq)]
pub struct Array<'a> {
    elem: ValueType,
    len: u64,
    bytes: &'a [u8],
}

impl<'a> Array<'a> {
    /// The element type (every element has the same type; `Array` for nested arrays).
    pub fn elem_type(&self) -> ValueType {
        self.elem
    }

    /// Number of elements, as stored in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded elements (after the array's type and length fields).
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The elements in order. Constant time per step for scalars; strings and nested arrays are
    /// walked (their sizes are only known by reading them).
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter { elem: self.elem, left: self.len, bytes: self.bytes, pos: 0 }
    }

    /// Element `i`: constant time for scalar elements, a walk for strings and arrays.
    pub fn get(&self, i: u64) -> Option<Value<'a>> {
        if i >= self.len {
            return None;
        }
        match self.elem.fixed_size() {
            Some(size) => {
                let mut pos = usize::try_from(i).ok()?.checked_mul(size)?;
                decode(self.bytes, &mut pos, self.elem)
            }
            None => self.iter().nth(usize::try_from(i).ok()?),
        }
    }
}

impl fmt::Debug for Array<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Array<{}; {}>", self.elem.name(), self.len)
    }
}

impl<'a> IntoIterator for Array<'a> {
    type Item = Value<'a>;
    type IntoIter = ArrayIter<'a>;
    fn into_iter(self) -> ArrayIter<'a> {
        self.iter()
    }
}

/// Iterator over an [`Array`]'s elements.
#[derive(Clone, Debug)]
pub struct ArrayIter<'a> {
    elem: ValueType,
    left: u64,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        // The reader validated these bytes when the file was opened, so decoding cannot fail;
        // if it somehow did, the iteration just ends.
        let v = decode(self.bytes, &mut self.pos, self.elem);
        self.left = if v.is_some() { self.left - 1 } else { 0 };
        v
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// The array whose header (element type, length) starts at `start` and whose elements run to
/// the end of `bytes`.
pub(crate) fn array_at(bytes: &[u8], start: usize) -> Option<Array<'_>> {
    let header = bytes.get(start..start.checked_add(12)?)?;
    let elem = ValueType::from_id(u32::from_le_bytes(header.get(..4)?.try_into().ok()?))?;
    let len = u64::from_le_bytes(header.get(4..)?.try_into().ok()?);
    Some(Array { elem, len, bytes: bytes.get(start + 12..)? })
}

/// Decode one value of type `ty` at `*pos`, advancing `*pos`. `None` if the bytes are not a
/// valid value (only possible for bytes the validator has not seen).
pub(crate) fn decode<'a>(bytes: &'a [u8], pos: &mut usize, ty: ValueType) -> Option<Value<'a>> {
    fn take<const N: usize>(bytes: &[u8], pos: &mut usize) -> Option<[u8; N]> {
        let end = pos.checked_add(N)?;
        let b: [u8; N] = bytes.get(*pos..end)?.try_into().ok()?;
        *pos = end;
        Some(b)
    }
    Some(match ty {
        ValueType::U8 => Value::U8(u8::from_le_bytes(take(bytes, pos)?)),
        ValueType::I8 => Value::I8(i8::from_le_bytes(take(bytes, pos)?)),
        ValueType::U16 => Value::U16(u16::from_le_bytes(take(bytes, pos)?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(take(bytes, pos)?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(take(bytes, pos)?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(take(bytes, pos)?)),
        ValueType::U64 => Value::U64(u64::from_le_bytes(take(bytes, pos)?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(take(bytes, pos)?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(take(bytes, pos)?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(take(bytes, pos)?)),
        ValueType::Bool => match take::<1>(bytes, pos)? {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            _ => return None,
        },
        ValueType::String => {
            let len = usize::try_from(u64::from_le_bytes(take(bytes, pos)?)).ok()?;
            let end = pos.checked_add(len)?;
            let s = core::str::from_utf8(bytes.get(*pos..end)?).ok()?;
            *pos = end;
            Value::String(s)
        }
        ValueType::Array => {
            let elem = ValueType::from_id(u32::from_le_bytes(take(bytes, pos)?))?;
            let len = u64::from_le_bytes(take(bytes, pos)?);
            let start = *pos;
            match elem.fixed_size() {
                Some(size) => {
                    let n = usize::try_from(len).ok()?.checked_mul(size)?;
                    *pos = pos.checked_add(n)?;
                    if *pos > bytes.len() {
                        return None;
                    }
                }
                None => {
                    for _ in 0..len {
                        decode(bytes, pos, elem)?;
                    }
                }
            }
            Value::Array(Array { elem, len, bytes: bytes.get(start..*pos)? })
        }
    })
}
