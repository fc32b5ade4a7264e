"""Write a synthetic Llama GGUF with seeded random weights, for measuring what packing a big
model costs without downloading one.

    source scripts/env.sh; npu_venv
    $NPU_PYTHON scripts/synth-gguf.py [--shape llama3-8b|tiny] [--type q4_0|q8_0|f16]
                                      [--seed N] [-o FILE]

Shapes: `llama3-8b` has Llama-3-8B's dimensions (32 blocks, n_embd 4096, 32 heads, 8 KV heads,
ff 14336, vocab 128256, rope base 500000, untied output); `tiny` is a two-block model of the
same structure for fast tests. Matmul weights and the token embedding are stored in the
chosen type as random blocks (uniform codes, scales around a 0.02 weight spread); norms are
F32 near 1. The vocabulary is byte-level BPE (`gpt2`, pre-tokenizer `llama-bpe`): the 256 byte
tokens, merges of seeded random token pairs up to the vocabulary size less 256, then 256
control tokens (`<|begin_of_text|>`, `<|end_of_text|>`, `<|eot_id|>`, reserved ones).

The file depends only on the shape, the type and the seed. Tensors are written a few MiB at
a time, so memory stays small whatever the shape. Default output:
`$NPU_CACHE/synth/<shape>-<type>-s<seed>.gguf` (written to a temporary name and renamed; an
existing file is kept). Never commit these files.
"""
import argparse
import os
import random
import sys

import numpy as np

import gguf

SHAPES = {
    "llama3-8b": dict(blocks=32, embd=4096, heads=32, kv_heads=8, ff=14336, vocab=128256,
                      context=8192),
    "tiny": dict(blocks=2, embd=256, heads=4, kv_heads=2, ff=768, vocab=1024, context=512),
}
TYPES = {
    "q4_0": gguf.GGMLQuantizationType.Q4_0,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
    "f16": gguf.GGMLQuantizationType.F16,
}
N_SPECIAL = 256
WEIGHT_STD = 0.02
CHUNK_ELEMS = 4 << 20  # values generated per write


def byte_chars():
    """GPT-2's byte-to-character table: printable bytes map to themselves, the rest to 256+."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def vocabulary(n_vocab, seed):
    """Tokens, token types and merges of a byte-level BPE vocabulary of `n_vocab` entries."""
    rng = random.Random(seed)
    tokens = byte_chars()
    known = set(tokens)
    merges = []
    n_normal = n_vocab - N_SPECIAL
    while len(tokens) < n_normal:
        a = tokens[rng.randrange(len(tokens))]
        b = tokens[rng.randrange(len(tokens))]
        t = a + b
        if len(t) <= 12 and t not in known:
            known.add(t)
            tokens.append(t)
            merges.append(f"{a} {b}")
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
             "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
             "<|eot_id|>"]
    names += [f"<|reserved_special_token_{i}|>" for i in range(2, 2 + N_SPECIAL - len(names))]
    tokens += names
    types = [1] * n_normal + [3] * N_SPECIAL
    return tokens, types, merges


def tensor_list(s):
    """(name, dims innermost first, is_matrix) in llama.cpp's file order."""
    e, ff = s["embd"], s["ff"]
    kv = e // s["heads"] * s["kv_heads"]
    out = [("token_embd.weight", (e, s["vocab"]), True)]
    for i in range(s["blocks"]):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", (e,), False),
            (p + "attn_q.weight", (e, e), True),
            (p + "attn_k.weight", (e, kv), True),
            (p + "attn_v.weight", (e, kv), True),
            (p + "attn_output.weight", (e, e), True),
            (p + "ffn_norm.weight", (e,), False),
            (p + "ffn_gate.weight", (e, ff), True),
            (p + "ffn_up.weight", (e, ff), True),
            (p + "ffn_down.weight", (ff, e), True),
        ]
    out += [("output_norm.weight", (e,), False), ("output.weight", (e, s["vocab"]), True)]
    return out


def nbytes(dims, ty):
    block, size = gguf.GGML_QUANT_SIZES[ty]
    n = int(np.prod(dims))
    return n // block * size


def chunks(dims, ty, rng):
    """The tensor's bytes, a few MiB at a time."""
    n = int(np.prod(dims))
    if ty == gguf.GGMLQuantizationType.F32:
        yield (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype("<f4").tobytes()
        return
    done = 0
    while done < n:
        m = min(CHUNK_ELEMS, n - done)
        if ty == gguf.GGMLQuantizationType.F16:
            v = rng.standard_normal(m, dtype=np.float32) * WEIGHT_STD
            yield v.astype("<f2").tobytes()
        else:
            blocks = m // 32
            q4 = ty == gguf.GGMLQuantizationType.Q4_0
            # Uniform codes: std 4.6 for q4 (-8..7), 73 for q8 (-127..127).
            base = WEIGHT_STD / (4.6 if q4 else 73.0)
            d = (base * rng.uniform(0.5, 1.5, blocks)).astype("<f2")
            out = np.empty((blocks, 18 if q4 else 34), dtype=np.uint8)
            out[:, :2] = d.view(np.uint8).reshape(blocks, 2)
            if q4:
                out[:, 2:] = rng.integers(0, 256, (blocks, 16), dtype=np.uint8)
            else:
                out[:, 2:] = rng.integers(-127, 128, (blocks, 32), dtype=np.int8).view(np.uint8)
            yield out.tobytes()
        done += m


def write(path, shape, ty_name, seed):
    s = SHAPES[shape]
    ty = TYPES[ty_name]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(f"synthetic {shape} {ty_name} seed {seed}")
    w.add_context_length(s["context"])
    w.add_embedding_length(s["embd"])
    w.add_block_count(s["blocks"])
    w.add_feed_forward_length(s["ff"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_dimension_count(s["embd"] // s["heads"])
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(s["vocab"])
    w.add_file_type({"q4_0": 2, "q8_0": 7, "f16": 1}[ty_name])
    tokens, types, merges = vocabulary(s["vocab"], seed)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    n_normal = s["vocab"] - N_SPECIAL
    w.add_bos_token_id(n_normal)
    w.add_eos_token_id(n_normal + 1)
    w.add_eot_token_id(n_normal + 9)
    tensors = tensor_list(s)
    types_of = []
    for name, dims, matrix in tensors:
        t = ty if matrix else gguf.GGMLQuantizationType.F32
        types_of.append(t)
        # Shapes outermost first, as gguf-py takes them.
        w.add_tensor_info(name, tuple(reversed(dims)), np.dtype(np.float32), nbytes(dims, t),
                          raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    f = w.fout[0]
    align = w.data_alignment
    pad = lambda: f.write(b"\0" * (-f.tell() % align))
    pad()
    for i, ((name, dims, _), t) in enumerate(zip(tensors, types_of)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, i])))
        written = 0
        for b in chunks(dims, t, rng):
            f.write(b)
            written += len(b)
        assert written == nbytes(dims, t), name
        pad()
        print(f"synth-gguf: {name} {dims} {t.name}", file=sys.stderr) if i % 50 == 0 else None
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=SHAPES, default="llama3-8b")
    ap.add_argument("--type", choices=TYPES, default="q4_0")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output")
    a = ap.parse_args()
    out = a.output
    if out is None:
        cache = os.environ.get("NPU_CACHE") or os.path.expanduser("~/.cache/npu-model")
        out = os.path.join(cache, "synth", f"{a.shape}-{a.type}-s{a.seed}.gguf")
    if os.path.exists(out):
        print(out)
        return
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    write(tmp, a.shape, a.type, a.seed)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
