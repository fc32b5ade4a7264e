//! The GGUF reader against hand-built files: happy path, then every kind of broken input.
//! Each bad file must give an error naming the file, what is wrong and where — never a panic.

use npu_build::gguf::{ErrorKind, GgmlType, Gguf, RopeStyle, Value, ValueType};

// ---------------------------------------------------------------------------------------------
// A test-only GGUF writer: enough to build any valid file and to break it field by field.

/// An encoded metadata value: type id and bytes.
#[derive(Clone)]
struct V(u32, Vec<u8>);

fn gstr(s: &[u8]) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s);
    b
}
fn v_u32(x: u32) -> V {
    V(4, x.to_le_bytes().to_vec())
}
fn v_i32(x: i32) -> V {
    V(5, x.to_le_bytes().to_vec())
}
fn v_f32(x: f32) -> V {
    V(6, x.to_le_bytes().to_vec())
}
fn v_u64(x: u64) -> V {
    V(10, x.to_le_bytes().to_vec())
}
fn v_i64(x: i64) -> V {
    V(11, x.to_le_bytes().to_vec())
}
fn v_f64(x: f64) -> V {
    V(12, x.to_le_bytes().to_vec())
}
fn v_bool(x: bool) -> V {
    V(7, vec![x as u8])
}
fn v_str(s: &str) -> V {
    V(8, gstr(s.as_bytes()))
}
/// An array of already-encoded elements of type `elem`.
fn v_arr(elem: u32, items: &[V]) -> V {
    let mut b = elem.to_le_bytes().to_vec();
    b.extend((items.len() as u64).to_le_bytes());
    for it in items {
        b.extend(&it.1);
    }
    V(9, b)
}

struct T {
    name: Vec<u8>,
    dims: Vec<u64>,
    ty: u32,
    offset: u64,
}

fn t(name: &str, dims: &[u64], ty: GgmlType, offset: u64) -> T {
    T { name: name.as_bytes().to_vec(), dims: dims.to_vec(), ty: ty.id(), offset }
}

struct Builder {
    magic: [u8; 4],
    version: u32,
    tensor_count: Option<u64>,
    kv_count: Option<u64>,
    kvs: Vec<(Vec<u8>, V)>,
    tensors: Vec<T>,
    alignment: u64,
    data: Vec<u8>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            magic: *b"GGUF",
            version: 3,
            tensor_count: None,
            kv_count: None,
            kvs: vec![],
            tensors: vec![],
            alignment: 32,
            data: vec![],
        }
    }
    fn kv(mut self, key: &str, v: V) -> Builder {
        self.kvs.push((key.as_bytes().to_vec(), v));
        self
    }
    fn kv_raw_key(mut self, key: &[u8], v: V) -> Builder {
        self.kvs.push((key.to_vec(), v));
        self
    }
    fn tensor(mut self, t: T) -> Builder {
        self.tensors.push(t);
        self
    }
    fn data(mut self, d: Vec<u8>) -> Builder {
        self.data = d;
        self
    }
    /// The data section gets `alignment` padding; `general.alignment` is written separately.
    fn build(&self) -> Vec<u8> {
        let mut b = self.magic.to_vec();
        b.extend(self.version.to_le_bytes());
        b.extend(self.tensor_count.unwrap_or(self.tensors.len() as u64).to_le_bytes());
        b.extend(self.kv_count.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            b.extend(gstr(k));
            b.extend(v.0.to_le_bytes());
            b.extend(&v.1);
        }
        for t in &self.tensors {
            b.extend(gstr(&t.name));
            b.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                b.extend(d.to_le_bytes());
            }
            b.extend(t.ty.to_le_bytes());
            b.extend(t.offset.to_le_bytes());
        }
        while !(b.len() as u64).is_multiple_of(self.alignment) {
            b.push(0);
        }
        b.extend(&self.data);
        b
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A small valid file with every value type, a nested array and two tensors; the last tensor
/// ends exactly at the end of the file, so every truncation cuts something the reader needs.
fn valid() -> Builder {
    let a: Vec<f32> = (0..8).map(|i| i as f32 * 0.5 - 1.0).collect();
    let bvals: Vec<u16> = (0..32).map(|i| half::f16::from_f32(i as f32).to_bits()).collect();
    let mut data = f32_bytes(&a);
    data.resize(64, 0); // tensor b at offset 64 (aligned to 32)
    data.extend(bvals.iter().flat_map(|x| x.to_le_bytes()));
    Builder::new()
        .kv("general.architecture", v_str("llama"))
        .kv("general.alignment", v_u32(32))
        .kv("u8", V(0, vec![200]))
        .kv("i8", V(1, vec![0xff]))
        .kv("u16", V(2, 65535u16.to_le_bytes().to_vec()))
        .kv("i16", V(3, (-2i16).to_le_bytes().to_vec()))
        .kv("i32", v_i32(-7))
        .kv("f32", v_f32(1.5))
        .kv("bool", v_bool(true))
        .kv("u64", v_u64(1 << 40))
        .kv("i64", v_i64(-(1 << 40)))
        .kv("f64", v_f64(0.25))
        .kv("tokens", v_arr(8, &[v_str("a"), v_str("bc"), v_str(""), v_str("é")]))
        .kv("nested", v_arr(9, &[v_arr(4, &[v_u32(1), v_u32(2)]), v_arr(8, &[v_str("x")])]))
        .kv("empty", v_arr(6, &[]))
        .tensor(t("a", &[4, 2], GgmlType::F32, 0))
        .tensor(t("b", &[32], GgmlType::F16, 64))
        .data(data)
}

/// Parse `bytes` expecting an error; return its message, checking it names the file.
fn err(bytes: &[u8]) -> String {
    match Gguf::from_bytes("bad.gguf", bytes) {
        Ok(_) => panic!("malformed file was accepted"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("bad.gguf: "), "error does not name the file: {msg}");
            msg
        }
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} lacks {p:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Happy path.

#[test]
fn valid_file_reads_back() {
    let bytes = valid().build();
    let g = Gguf::from_bytes("ok.gguf", &bytes).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    let keys: Vec<&str> = g.metadata().map(|(k, _)| k).collect();
    assert_eq!(keys[..3], ["general.architecture", "general.alignment", "u8"]);
    assert_eq!(keys.len(), 15);
    assert_eq!(g.get("u8"), Some(Value::U8(200)));
    assert_eq!(g.get("i8"), Some(Value::I8(-1)));
    assert_eq!(g.get("u16"), Some(Value::U16(65535)));
    assert_eq!(g.get("i16"), Some(Value::I16(-2)));
    assert_eq!(g.get("i32"), Some(Value::I32(-7)));
    assert_eq!(g.get_f32("f32").unwrap(), Some(1.5));
    assert_eq!(g.get_bool("bool").unwrap(), Some(true));
    assert_eq!(g.get_u64("u64").unwrap(), Some(1 << 40));
    assert_eq!(g.get_i64("i64").unwrap(), Some(-(1 << 40)));
    assert_eq!(g.get("f64"), Some(Value::F64(0.25)));
    assert_eq!(g.get_str("general.architecture").unwrap(), Some("llama"));
    assert_eq!(g.get_str_array("tokens").unwrap().unwrap(), ["a", "bc", "", "é"]);
    assert_eq!(g.get_array("tokens").unwrap().unwrap().get(3), Some(Value::String("é")));
    assert_eq!(g.get_u32("missing").unwrap(), None);

    let nested = g.get_array("nested").unwrap().unwrap();
    assert_eq!(nested.elem_type(), ValueType::Array);
    let inner: Vec<_> = nested.iter().map(|v| v.as_array().unwrap()).collect();
    assert_eq!(inner.len(), 2);
    assert_eq!(inner[0].iter().collect::<Vec<_>>(), [Value::U32(1), Value::U32(2)]);
    assert_eq!(inner[1].get(0), Some(Value::String("x")));
    assert!(g.get_array("empty").unwrap().unwrap().is_empty());

    // Typed getters: a wrong type is an error naming the key and both types.
    let e = g.get_str("u8").unwrap_err().to_string();
    assert_has(&e, &["ok.gguf", "'u8'", "uint8", "expected a string"]);
    let e = g.get_u32("i32").unwrap_err().to_string();
    assert_has(&e, &["'i32'", "does not fit"]);

    let names: Vec<&str> = g.tensors().iter().map(|t| t.name()).collect();
    assert_eq!(names, ["a", "b"]);
    let a = g.tensor("a").unwrap();
    assert_eq!((a.dims(), a.row_len(), a.n_rows(), a.n_bytes()), (&[4u64, 2][..], 4, 2, 32));
    assert_eq!(a.file_offset(), g.data_start());
    assert_eq!(g.dequantize(a).unwrap(), [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    let mut row = [0f32; 4];
    g.dequantize_rows(a, 1, 1, &mut row).unwrap();
    assert_eq!(row, [1.0, 1.5, 2.0, 2.5]);
    let b = g.tensor("b").unwrap();
    assert_eq!(b.file_offset() + b.n_bytes(), bytes.len() as u64);
    assert_eq!(g.dequantize(b).unwrap(), (0..32).map(|i| i as f32).collect::<Vec<_>>());
    assert_eq!(g.tensor_data(b).len(), 64);
}

#[test]
fn version_2_reads_like_3() {
    let mut b = valid();
    b.version = 2;
    let bytes = b.build();
    assert_eq!(Gguf::from_bytes("v2.gguf", &bytes).unwrap().version(), 2);
}

#[test]
fn row_range_errors() {
    let bytes = valid().build();
    let g = Gguf::from_bytes("ok.gguf", &bytes).unwrap();
    let a = g.tensor("a").unwrap();
    let e = g.dequantize_rows(a, 1, 2, &mut [0.0; 8]).unwrap_err().to_string();
    assert_has(&e, &["ok.gguf", "tensor 'a'", "exceed its 2 rows"]);
    let e = g.dequantize_rows(a, 0, 1, &mut [0.0; 3]).unwrap_err().to_string();
    assert_has(&e, &["tensor 'a'", "output holds 3 values"]);
    let e = g.dequantize_rows(a, u64::MAX, 2, &mut [0.0; 8]).unwrap_err().to_string();
    assert_has(&e, &["tensor 'a'", "exceed"]);
}

#[test]
fn undequantizable_type_opens_but_fails_on_dequantize() {
    let ty = GgmlType::ALL
        .into_iter()
        .find(|&t| !npu_build::dequant::supported(t))
        .expect("every type supported");
    let n = ty.block_len();
    let bytes = Builder::new()
        .tensor(t("blk.0.ffn_up.weight", &[n], ty, 0))
        .data(vec![0; ty.block_bytes() as usize])
        .build();
    let g = Gguf::from_bytes("iq.gguf", &bytes).unwrap();
    let ti = g.tensor("blk.0.ffn_up.weight").unwrap();
    assert_eq!(ti.n_bytes(), ty.block_bytes());
    let e = g.dequantize(ti).unwrap_err().to_string();
    assert_has(&e, &["iq.gguf", "blk.0.ffn_up.weight", ty.name(), "supported", "F32"]);
    assert!(matches!(g.dequantize(ti).unwrap_err().kind(), ErrorKind::Dequant { .. }));
}

#[test]
fn no_tensors_and_data_start_past_eof_is_fine() {
    let mut bytes = Builder::new().kv("k", v_u32(1)).build();
    // Drop the padding: a file without tensors need not reach the data section.
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes.extend([0, 0, 0]); // restore the u32 value's high bytes
    let g = Gguf::from_bytes("x.gguf", &bytes).unwrap();
    assert_eq!(g.get_u32("k").unwrap(), Some(1));
    assert!(g.data_start() > bytes.len() as u64);
}

// ---------------------------------------------------------------------------------------------
// Broken files.

#[test]
fn truncated_at_every_offset() {
    let bytes = valid().build();
    for len in 0..bytes.len() {
        let r =
            std::panic::catch_unwind(|| Gguf::from_bytes("trunc.gguf", &bytes[..len]).map(|_| ()));
        match r {
            Ok(Err(e)) => assert!(e.to_string().starts_with("trunc.gguf: "), "{e}"),
            Ok(Ok(())) => panic!("file truncated to {len} of {} bytes was accepted", bytes.len()),
            Err(_) => panic!("panic on file truncated to {len} bytes"),
        }
    }
    // Representative messages: in the header, in a key, in tensor data.
    assert_has(&err(&bytes[..6]), &["truncated file", "version", "at byte 4", "ends at byte 6"]);
    assert_has(&err(&bytes[..10]), &["truncated file", "tensor_count at byte 8"]);
    assert_has(&err(&bytes[..30]), &["metadata_kv_count", "impossible"]);
    assert_has(&err(&bytes[..bytes.len() - 1]), &["tensor 'b'", "outside the file"]);
}

#[test]
fn truncated_inside_a_key_names_it() {
    // A file whose counts are small enough to pass the count bound, cut inside the value.
    let full = Builder::new().kv("general.name", v_str("a fairly long model name here")).build();
    let cut = &full[..full.len() - 20];
    assert_has(&err(cut), &["truncated file", "value of metadata key 'general.name'", "at byte"]);
}

#[test]
fn wrong_magic() {
    let mut bytes = valid().build();
    bytes[..4].copy_from_slice(b"GGML");
    assert_has(&err(&bytes), &["not a GGUF file", "\"GGML\"", "47 47 4d 4c"]);
}

#[test]
fn unsupported_versions() {
    for (v, parts) in [
        (1u32, &["unsupported GGUF version 1", "only versions 2 and 3"][..]),
        (4, &["unsupported GGUF version 4", "at byte 4"]),
        (0, &["unsupported GGUF version 0"]),
        (0x0300_0000, &["big-endian", "0x03000000", "byte-swapped 3", "little-endian"]),
        (0x0200_0000, &["big-endian"]),
    ] {
        let mut b = valid();
        b.version = v;
        assert_has(&err(&b.build()), parts);
    }
}

#[test]
fn tensor_data_outside_file() {
    let bytes = valid().tensor(t("c", &[8], GgmlType::F32, 1 << 20)).build();
    assert_has(
        &err(&bytes),
        &["tensor 'c'", "outside the file", &format!("({} bytes)", bytes.len())],
    );
    // An offset so large that data_start + offset overflows.
    let bytes = valid().tensor(t("d", &[8], GgmlType::F32, u64::MAX - 31)).build();
    assert_has(&err(&bytes), &["tensor 'd'", "outside the file"]);
}

#[test]
fn misaligned_offset() {
    let bytes = valid().tensor(t("c", &[1], GgmlType::F32, 4)).build();
    assert_has(&err(&bytes), &["tensor 'c'", "data offset 4", "alignment 32"]);
}

#[test]
fn overlapping_tensors() {
    let bytes = valid().tensor(t("c", &[4], GgmlType::F32, 0)).build();
    assert_has(&err(&bytes), &["overlaps", "'a'", "'c'"]);
}

#[test]
fn dims_product_overflow() {
    let bytes = valid().tensor(t("big", &[1 << 32, 1 << 32], GgmlType::F32, 128)).build();
    assert_has(&err(&bytes), &["tensor 'big'", "overflow", "4294967296"]);
    // Elements fit u64 but not ggml's i64.
    let bytes = valid().tensor(t("big2", &[1 << 62, 4], GgmlType::F32, 128)).build();
    assert_has(&err(&bytes), &["tensor 'big2'", "overflow"]);
    // ne0 = 0 hides an overflow of the other dimensions in the full product.
    let bytes = valid().tensor(t("zero", &[0, u64::MAX, u64::MAX], GgmlType::F32, 128)).build();
    assert_has(&err(&bytes), &["tensor 'zero'", "overflow"]);
}

#[test]
fn too_many_dims() {
    let bytes = valid().tensor(t("t5", &[1, 1, 1, 1, 1], GgmlType::F32, 128)).build();
    assert_has(&err(&bytes), &["tensor 't5'", "5 dimensions", "at most 4"]);
}

#[test]
fn row_not_whole_blocks() {
    let bytes = valid().tensor(t("q", &[16, 2], GgmlType::Q4_0, 128)).build();
    assert_has(&err(&bytes), &["tensor 'q'", "first dimension 16", "Q4_0 block length 32"]);
}

#[test]
fn absurd_counts() {
    let mut b = valid();
    b.tensor_count = Some(1 << 60);
    assert_has(&err(&b.build()), &["tensor_count 1152921504606846976", "at byte 8", "impossible"]);
    let mut b = valid();
    b.kv_count = Some(1 << 60);
    assert_has(
        &err(&b.build()),
        &["metadata_kv_count 1152921504606846976", "at byte 16", "impossible"],
    );
    let mut b = valid();
    b.kv_count = Some(u64::MAX);
    assert_has(&err(&b.build()), &["metadata_kv_count 18446744073709551615"]);
    // An array claiming 2^60 elements.
    let mut arr = 8u32.to_le_bytes().to_vec();
    arr.extend((1u64 << 60).to_le_bytes());
    let bytes = Builder::new().kv("tokenizer.ggml.tokens", V(9, arr)).build();
    assert_has(
        &err(&bytes),
        &[
            "array length of metadata key 'tokenizer.ggml.tokens'",
            "1152921504606846976",
            "impossible",
        ],
    );
}

#[test]
fn invalid_utf8() {
    let bytes = Builder::new().kv("ok", v_u32(1)).kv_raw_key(b"bad\xff", v_u32(1)).build();
    assert_has(&err(&bytes), &["key of metadata entry #1", "at byte 50", "not valid UTF-8"]);
    let bytes = Builder::new().kv("general.name", V(8, gstr(b"\xc3\x28"))).build();
    assert_has(&err(&bytes), &["value of metadata key 'general.name'", "not valid UTF-8"]);
    let bytes = Builder::new().kv("toks", v_arr(8, &[v_str("ok"), V(8, gstr(b"\x80"))])).build();
    assert_has(&err(&bytes), &["metadata key 'toks'", "not valid UTF-8"]);
    let mut b = valid();
    b.tensors[1].name = b"b\xfe".to_vec();
    assert_has(&err(&b.build()), &["name of tensor info #1", "not valid UTF-8"]);
}

#[test]
fn duplicates() {
    let bytes = valid().tensor(t("a", &[8], GgmlType::F32, 128)).build();
    assert_has(&err(&bytes), &["duplicate tensor name 'a'"]);
    let bytes = valid().kv("u8", V(0, vec![1])).build();
    assert_has(&err(&bytes), &["duplicate metadata key 'u8'"]);
}

#[test]
fn bad_value_types() {
    let bytes = Builder::new().kv("k", V(13, vec![0; 8])).build();
    assert_has(&err(&bytes), &["metadata key 'k'", "unknown value type id 13", "at byte"]);
    let bytes = Builder::new().kv("arr", v_arr(99, &[])).build();
    assert_has(&err(&bytes), &["metadata key 'arr'", "unknown value type id 99"]);
    // Unknown element type inside a nested array.
    let bytes = Builder::new().kv("nest", v_arr(9, &[v_arr(200, &[])])).build();
    assert_has(&err(&bytes), &["metadata key 'nest'", "unknown value type id 200"]);
    // Nested too deep.
    let mut v = v_arr(4, &[]);
    for _ in 0..npu_build::gguf::MAX_ARRAY_DEPTH {
        v = v_arr(9, &[v]);
    }
    let bytes = Builder::new().kv("deep", v).build();
    assert_has(&err(&bytes), &["metadata key 'deep'", "nested more than 8 deep"]);
    // Exactly at the limit is fine.
    let mut v = v_arr(4, &[v_u32(5)]);
    for _ in 1..npu_build::gguf::MAX_ARRAY_DEPTH {
        v = v_arr(9, &[v]);
    }
    let bytes = Builder::new().kv("deep", v).build();
    assert!(Gguf::from_bytes("ok.gguf", &bytes).is_ok());
    // A bool that is not 0/1, alone and inside an array.
    let bytes = Builder::new().kv("flag", V(7, vec![2])).build();
    assert_has(&err(&bytes), &["metadata key 'flag'", "bool byte 2", "neither 0 nor 1"]);
    let bytes = Builder::new().kv("flags", v_arr(7, &[v_bool(true), V(7, vec![9])])).build();
    assert_has(&err(&bytes), &["metadata key 'flags'", "bool byte 9"]);
}

#[test]
fn unknown_ggml_type() {
    for id in [4u32, 5, 31, 42, 1000] {
        let mut b = valid();
        b.tensors[1].ty = id;
        assert_has(
            &err(&b.build()),
            &["tensor 'b'", &format!("unknown ggml type id {id}"), "at byte"],
        );
    }
}

#[test]
fn bad_alignment() {
    for (v, found) in [
        (v_u32(0), "found 0"),
        (v_u32(48), "found 48"),
        (v_str("32"), "type string"),
        (v_i32(-32), "type int32"),
    ] {
        let bytes = Builder::new().kv("general.alignment", v).build();
        assert_has(&err(&bytes), &["general.alignment", "nonzero power of two", found]);
    }
    // A power of two other than 32 moves the data section.
    let mut b =
        Builder::new().kv("general.alignment", v_u32(64)).tensor(t("x", &[2], GgmlType::F32, 0));
    b.alignment = 64;
    b.data = f32_bytes(&[3.0, 4.0]);
    let bytes = b.build();
    let g = Gguf::from_bytes("a64.gguf", &bytes).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.data_start() % 64, 0);
    assert_eq!(g.dequantize(g.tensor("x").unwrap()).unwrap(), [3.0, 4.0]);
}

// ---------------------------------------------------------------------------------------------
// Hyperparameters on synthetic files.

fn llama_like(arch: &str) -> Builder {
    let k = |s: &str| format!("{arch}.{s}");
    Builder::new()
        .kv("general.architecture", v_str(arch))
        .kv(&k("context_length"), v_u32(256))
        .kv(&k("embedding_length"), v_u32(64))
        .kv(&k("block_count"), v_u32(2))
        .kv(&k("feed_forward_length"), v_u32(128))
        .kv(&k("attention.head_count"), v_u32(4))
        .kv(&k("attention.head_count_kv"), v_u32(2))
        .kv(&k("attention.layer_norm_rms_epsilon"), v_f32(1e-5))
        .kv("tokenizer.ggml.model", v_str("gpt2"))
        .kv("tokenizer.ggml.tokens", v_arr(8, &[v_str("a"), v_str("b"), v_str("c")]))
        .kv("tokenizer.ggml.eos_token_id", v_u32(2))
}

#[test]
fn hparams_defaults_and_derived() {
    let bytes = llama_like("llama").build();
    let g = Gguf::from_bytes("l.gguf", &bytes).unwrap();
    let h = g.hparams().unwrap();
    assert_eq!((h.head_dim, h.head_count_kv, h.rope_dimension_count), (16, 2, 16));
    assert_eq!((h.rope_freq_base, h.rope_style, h.vocab_size), (10000.0, RopeStyle::Normal, 3));
    assert!(h.tied_output && !h.qkv_bias);
    let tok = g.tokenizer().unwrap();
    assert_eq!(
        (tok.model, tok.n_tokens, tok.eos_id, tok.bos_id),
        (Some("gpt2"), Some(3), Some(2), None)
    );
    assert!(!tok.has_chat_template);

    let bytes = llama_like("qwen2")
        .tensor(t("blk.0.attn_q.bias", &[64], GgmlType::F32, 0))
        .tensor(t("output.weight", &[64, 3], GgmlType::F32, 256))
        .data(vec![0; 256 + 64 * 3 * 4])
        .build();
    let h = Gguf::from_bytes("q.gguf", &bytes).unwrap().hparams().unwrap();
    assert_eq!(h.rope_style, RopeStyle::Neox);
    assert!(h.qkv_bias && !h.tied_output);
}

#[test]
fn hparams_sliding_window_and_soft_caps() {
    let hp = |b: Builder| Gguf::from_bytes("g.gguf", &b.build()).unwrap().hparams();
    // gemma3 without a window: every layer global, no caps; q/k norms and post-norms.
    let h = hp(llama_like("gemma3")).unwrap();
    assert_eq!((h.sliding_window, h.swa_layers, h.rope_style), (0, 0, RopeStyle::Neox));
    assert!(h.qk_norm && h.post_norms);
    assert_eq!(
        (h.attn_logit_softcapping, h.final_logit_softcapping, h.query_scale_dim),
        (0.0, 0.0, 16)
    );
    // A window: period 6 makes both blocks local; local rope base 10000 by default.
    let h = hp(llama_like("gemma3")
        .kv("gemma3.attention.sliding_window", v_u32(4))
        .kv("gemma3.rope.freq_base", v_f32(1e6)))
    .unwrap();
    assert_eq!((h.sliding_window, h.swa_layers, h.rope_freq_base_swa), (4, 0b11, 10000.0));
    // One bool per block, an explicit local base and an output cap.
    let h = hp(llama_like("gemma3")
        .kv("gemma3.attention.sliding_window", v_u32(4))
        .kv("gemma3.attention.sliding_window_pattern", v_arr(7, &[v_bool(false), v_bool(true)]))
        .kv("gemma3.rope.freq_base_swa", v_f32(500.0))
        .kv("gemma3.final_logit_softcapping", v_f32(30.0)))
    .unwrap();
    assert_eq!(
        (h.swa_layers, h.rope_freq_base_swa, h.final_logit_softcapping),
        (0b10, 500.0, 30.0)
    );
    // gemma2 defaults: window 4096 on even blocks, the global base, caps 50 and 30.
    let h = hp(llama_like("gemma2").kv("gemma2.rope.freq_base", v_f32(20000.0))).unwrap();
    assert_eq!((h.sliding_window, h.swa_layers, h.rope_freq_base_swa), (4096, 0b01, 20000.0));
    assert_eq!((h.attn_logit_softcapping, h.final_logit_softcapping), (50.0, 30.0));
    assert!(!h.qk_norm && h.post_norms);
    // llama and qwen2 read none of these keys.
    let h = hp(llama_like("llama").kv("llama.attention.sliding_window", v_u32(4))).unwrap();
    assert_eq!((h.sliding_window, h.swa_layers, h.final_logit_softcapping), (0, 0, 0.0));

    for (b, want) in [
        (
            llama_like("gemma3")
                .kv("gemma3.attention.sliding_window", v_u32(4))
                .kv("gemma3.attention.sliding_window_pattern", v_arr(7, &[v_bool(true)])),
            &["gemma3.attention.sliding_window_pattern", "one bool per block (2)"][..],
        ),
        (
            llama_like("gemma3").kv("gemma3.attention.value_length", v_u32(8)),
            &["gemma3.attention.value_length", "differs from the key head size 16"][..],
        ),
        (
            llama_like("gemma2").kv("gemma2.attn_logit_softcapping", v_f32(-1.0)),
            &["gemma2.attn_logit_softcapping", "-1"][..],
        ),
        (
            llama_like("gemma3").kv("gemma3.attention.sliding_window", v_u32(u32::MAX)),
            &["gemma3.attention.sliding_window", "2^24"][..],
        ),
    ] {
        assert_has(&hp(b).unwrap_err().to_string(), want);
    }
}

#[test]
fn hparams_errors() {
    let bytes = llama_like("gpt2").build();
    let e = Gguf::from_bytes("g.gguf", &bytes).unwrap().hparams().unwrap_err().to_string();
    assert_has(&e, &["g.gguf", "unsupported architecture 'gpt2'", "llama, qwen2"]);

    let bytes = llama_like("llama").kv("llama.attention.head_count_kv", v_u32(3)).build();
    // (duplicate key: that is an open error, not an hparams one)
    assert_has(&err(&bytes), &["duplicate metadata key"]);

    let mut b = llama_like("llama");
    b.kvs[6].1 = v_u32(3);
    let e = Gguf::from_bytes("h.gguf", &b.build()).unwrap().hparams().unwrap_err().to_string();
    assert_has(
        &e,
        &[
            "h.gguf",
            "llama.attention.head_count_kv",
            "head_count 4 is not a multiple of head_count_kv 3",
        ],
    );

    let mut b = llama_like("llama");
    b.kvs[5].1 = v_u32(5);
    b.kvs[6].1 = v_u32(5);
    let e = Gguf::from_bytes("h.gguf", &b.build()).unwrap().hparams().unwrap_err().to_string();
    assert_has(&e, &["embedding_length 64 is not a multiple of head_count 5"]);

    let mut b = llama_like("llama");
    b.kvs[3].1 = v_u32(0);
    let e = Gguf::from_bytes("h.gguf", &b.build()).unwrap().hparams().unwrap_err().to_string();
    assert_has(&e, &["'llama.block_count'", "nonzero"]);

    let mut b = llama_like("llama");
    b.kvs.remove(4);
    let e = Gguf::from_bytes("h.gguf", &b.build()).unwrap().hparams().unwrap_err().to_string();
    assert_has(&e, &["required metadata key 'llama.feed_forward_length' is missing"]);

    let mut b = llama_like("llama");
    b.kvs[2].1 = v_str("64");
    let e = Gguf::from_bytes("h.gguf", &b.build()).unwrap().hparams().unwrap_err().to_string();
    assert_has(&e, &["'llama.embedding_length' has type string"]);

    let bytes = llama_like("llama")
        .tensor(t("token_embd.weight", &[64, 4], GgmlType::F32, 0))
        .data(vec![0; 1024])
        .build();
    let e = Gguf::from_bytes("h.gguf", &bytes).unwrap().hparams().unwrap_err().to_string();
    assert_has(&e, &["token_embd.weight", "[64, 4]", "vocab 3"]);

    let bytes = Builder::new().build();
    let e = Gguf::from_bytes("h.gguf", &bytes).unwrap().hparams().unwrap_err().to_string();
    assert_has(&e, &["'general.architecture' is missing"]);
}
