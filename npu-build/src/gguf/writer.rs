//! A GGUF v3 writer: metadata and tensors in, file bytes out.
//!
//! For synthetic models (tests, fuzzing, benchmarks) and for editing a real model's tensor
//! table; the reader ([`super::Gguf`]) is the definition of what it must produce. Values are
//! written exactly as given — including strings that are not UTF-8 and tensor bytes that do
//! not match their shape — so a caller can build broken files on purpose.

use super::{GgmlType, ValueType};

/// One tensor to write: name, dims (innermost first), ggml type id, data.
#[derive(Clone, Debug)]
struct TensorEntry {
    name: Vec<u8>,
    dims: Vec<u64>,
    ty: u32,
    data: Vec<u8>,
}

/// A GGUF file under construction.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    kvs: Vec<(Vec<u8>, u32, Vec<u8>)>,
    tensors: Vec<TensorEntry>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter::new()
    }
}

fn put_str(o: &mut Vec<u8>, s: &[u8]) {
    o.extend((s.len() as u64).to_le_bytes());
    o.extend(s);
}

impl GgufWriter {
    /// An empty file with the default alignment (32).
    pub fn new() -> GgufWriter {
        GgufWriter { kvs: Vec::new(), tensors: Vec::new(), alignment: 32 }
    }

    /// A metadata entry of type `ty` whose value is `bytes`, already encoded.
    pub fn kv_raw(&mut self, key: &str, ty: ValueType, bytes: Vec<u8>) -> &mut Self {
        self.kvs.push((key.as_bytes().to_vec(), ty as u32, bytes));
        self
    }
    /// A `uint32` entry.
    pub fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.kv_raw(key, ValueType::U32, v.to_le_bytes().to_vec())
    }
    /// A `float32` entry.
    pub fn kv_f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.kv_raw(key, ValueType::F32, v.to_le_bytes().to_vec())
    }
    /// A `bool` entry.
    pub fn kv_bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.kv_raw(key, ValueType::Bool, vec![u8::from(v)])
    }
    /// A `string` entry (bytes as given, UTF-8 or not).
    pub fn kv_str(&mut self, key: &str, v: impl AsRef<[u8]>) -> &mut Self {
        let mut b = Vec::new();
        put_str(&mut b, v.as_ref());
        self.kv_raw(key, ValueType::String, b)
    }
    /// An array of strings.
    pub fn kv_strs<S: AsRef<[u8]>>(&mut self, key: &str, v: &[S]) -> &mut Self {
        let mut b = (ValueType::String as u32).to_le_bytes().to_vec();
        b.extend((v.len() as u64).to_le_bytes());
        for s in v {
            put_str(&mut b, s.as_ref());
        }
        self.kv_raw(key, ValueType::Array, b)
    }
    /// An array of `int32`.
    pub fn kv_i32s(&mut self, key: &str, v: &[i32]) -> &mut Self {
        let mut b = (ValueType::I32 as u32).to_le_bytes().to_vec();
        b.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|x| b.extend(x.to_le_bytes()));
        self.kv_raw(key, ValueType::Array, b)
    }
    /// An array of `float32`.
    pub fn kv_f32s(&mut self, key: &str, v: &[f32]) -> &mut Self {
        let mut b = (ValueType::F32 as u32).to_le_bytes().to_vec();
        b.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|x| b.extend(x.to_le_bytes()));
        self.kv_raw(key, ValueType::Array, b)
    }

    /// A tensor of type `ty` with `dims` (innermost first) and its raw bytes.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> &mut Self {
        let name = name.as_bytes().to_vec();
        self.tensors.push(TensorEntry { name, dims: dims.to_vec(), ty: ty.id(), data });
        self
    }
    /// An F32 tensor.
    pub fn tensor_f32(&mut self, name: &str, dims: &[u64], values: &[f32]) -> &mut Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, GgmlType::F32, data)
    }

    /// The file: header, metadata, tensor table, padding, tensor data (each tensor at the
    /// next multiple of the alignment).
    pub fn to_bytes(&self) -> Vec<u8> {
        let a = self.alignment;
        let mut o = b"GGUF".to_vec();
        o.extend(3u32.to_le_bytes());
        o.extend((self.tensors.len() as u64).to_le_bytes());
        o.extend((self.kvs.len() as u64).to_le_bytes());
        for (k, ty, v) in &self.kvs {
            put_str(&mut o, k);
            o.extend(ty.to_le_bytes());
            o.extend(v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            put_str(&mut o, &t.name);
            o.extend((t.dims.len() as u32).to_le_bytes());
            t.dims.iter().for_each(|d| o.extend(d.to_le_bytes()));
            o.extend(t.ty.to_le_bytes());
            o.extend(offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.data.len() as u64).div_ceil(a) * a;
        }
        o.resize((o.len() as u64).div_ceil(a) as usize * a as usize, 0);
        let start = o.len();
        for (t, off) in self.tensors.iter().zip(offsets) {
            o.resize(start + off as usize, 0);
            o.extend(&t.data);
        }
        o
    }
}
