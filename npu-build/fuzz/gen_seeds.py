#!/usr/bin/env python3
"""Write the fuzz seed corpus: tiny valid GGUFs made by gguf-py's writer (llama.cpp's reference
implementation), covering every metadata value type and the common tensor types.

    ~/.cache/npu-model/venv/bin/python npu-build/fuzz/gen_seeds.py npu-build/fuzz/corpus/seed

Deterministic (fixed RNG seed). Each file stays under 4 KB. Quantized tensors are random block
bytes with a small finite f16 scale written over the first two bytes of each block.
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1234)


def quant(ty, rows, ne0):
    block_len, block_bytes = gguf.GGML_QUANT_SIZES[ty]
    blocks = rows * ne0 // block_len
    b = rng.integers(0, 256, size=(blocks, block_bytes), dtype=np.uint8)
    b[:, 0:2] = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)
    return b.reshape(rows, ne0 // block_len * block_bytes)


def write(name, arch, build):
    path = os.path.join(out, name)
    w = gguf.GGUFWriter(path, arch=arch)
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    size = os.path.getsize(path)
    assert size < 4096, (name, size)
    print(f"{path}: {size} bytes")


def llama(w):
    w.add_context_length(64)
    w.add_embedding_length(32)
    w.add_block_count(1)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["a", "b", "<s>", "</s>"])
    w.add_bos_token_id(2)
    w.add_eos_token_id(3)
    w.add_tensor("token_embd.weight", quant(Q.Q8_0, 4, 32), raw_dtype=Q.Q8_0)
    w.add_tensor("blk.0.attn_norm.weight", rng.standard_normal(32).astype(np.float32))
    w.add_tensor("blk.0.attn_q.weight", quant(Q.Q4_0, 2, 32), raw_dtype=Q.Q4_0)
    w.add_tensor("blk.0.attn_k.weight", quant(Q.Q4_1, 2, 32), raw_dtype=Q.Q4_1)
    w.add_tensor("blk.0.attn_v.weight", quant(Q.Q5_0, 1, 32), raw_dtype=Q.Q5_0)
    w.add_tensor("blk.0.attn_output.weight", quant(Q.Q5_1, 1, 32), raw_dtype=Q.Q5_1)


def kquants(w):
    w.add_custom_alignment(64)
    for ty in (Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K):
        w.add_tensor(f"k.{ty.name.lower()}", quant(ty, 1, 256), raw_dtype=ty)


def iquants(w):
    w.add_tensor("iq4_nl", quant(Q.IQ4_NL, 2, 32), raw_dtype=Q.IQ4_NL)
    w.add_tensor("iq4_xs", quant(Q.IQ4_XS, 1, 256), raw_dtype=Q.IQ4_XS)
    w.add_tensor("iq2_xxs", quant(Q.IQ2_XXS, 1, 256), raw_dtype=Q.IQ2_XXS)
    w.add_tensor("q8_k", quant(Q.Q8_K, 1, 256), raw_dtype=Q.Q8_K)


def floats(w):
    w.add_tensor("f32", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal((2, 7)).astype(np.float16))
    bf = rng.integers(0, 65536, size=(2, 4), dtype=np.uint16).view(np.uint8).reshape(2, 8)
    w.add_tensor("bf16", bf, raw_dtype=Q.BF16)
    w.add_tensor("scalar", np.array([1.0], dtype=np.float32))


def values(w):
    w.add_uint8("u8", 7)
    w.add_int8("i8", -7)
    w.add_uint16("u16", 700)
    w.add_int16("i16", -700)
    w.add_uint32("u32", 70000)
    w.add_int32("i32", -70000)
    w.add_float32("f32", 0.5)
    w.add_uint64("u64", 1 << 40)
    w.add_int64("i64", -(1 << 40))
    w.add_float64("f64", 0.25)
    w.add_bool("bool", True)
    w.add_string("str", "héllo")
    w.add_array("arr.u32", [1, 2, 3])
    w.add_array("arr.str", ["x", "yy", ""])
    w.add_array("arr.bool", [True, False])
    w.add_array("arr.nested", [[1, 2], ["a"], [[True]]])


write("llama-q4", "llama", llama)
write("kquants", "qwen2", kquants)
write("iquants", "llama", iquants)
write("floats", "llama", floats)
write("values", "llama", values)
