"""Writes llama.cpp's tokenizer outputs for Gemma 3 270M as test vectors
(tests/data/tokenize_gemma3.json), run with the llama-cpp-python venv's python:

    $NPU_LLAMA_PYTHON tests/llamacpp/make_tokenizer_vectors.py [-o tests/data/tokenize_gemma3.json]

Contents, from the GGUFs in $NPU_CACHE (scripts/fetch-models.sh gemma3 smollm2 qwen moby vocab):
- `cases`: texts (hand-written ones, then the inputs of llama.cpp's own tokenizer tests in
  vocab/ggml-vocab-llama-spm.gguf.inp), each tokenized with add_special and parse_special
  both ways; `text` when the input is UTF-8, else `hex`; `ids` per
  [add_special, parse_special] in the order FF, FT, TF, TT; `pieces` the hex of the
  concatenated token_to_piece(id, special=True) of the TT ids.
- `moby`: the whole Moby-Dick text with add_special, specials not parsed: the number of ids,
  the SHA-256 of all ids as little-endian u32, and the SHA-256 of each block of 10,000 ids.
- `pieces_sha256`: for special false and true, the SHA-256 over every token id in order of
  (length as little-endian u32, token_to_piece bytes).
- `eog`: per model (gemma3, smollm2, qwen2.5-coder), the ids llama_vocab_is_eog accepts.
"""
import argparse
import ctypes
import hashlib
import json
import os
import struct
from pathlib import Path

import llama_cpp
from llama_cpp import Llama

CACHE = Path(os.environ.get("NPU_CACHE", Path.home() / ".cache" / "npu-model"))
GEMMA = CACHE / "gemma-3-270m-q4_k_m.gguf"
OTHERS = {
    "smollm2": CACHE / "smollm2-135m-instruct-q4_1.gguf",
    "qwen2.5-coder": CACHE / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
}
BLOCK = 10_000

TEXTS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "  Hello  world  ",
    "Hello world\n",
    "Hello\nworld",
    "Hello\n\nworld\n\n\n",
    "\n\n\nHello",
    "a\tb\t\tc\t\t\t\td",
    "   leading spaces and trailing spaces   ",
    " " * 40 + "forty spaces",
    "\n" * 40 + "forty newlines",
    "\t" * 35 + "tabs",
    "   \n   \t  \r\n \x0b\x0c end",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() {\n\tlet v: Vec<u32> = (0..10).map(|x| x * x).collect();\n\tprintln!(\"{v:?}\");\n}\n",
    "<html><body><table><tr><td>cell</td></tr></table></body></html>",
    "<b>bold</b>, <i>italic</i>, <strong>strong</strong> and </s> and <s>",
    "Grüße aus Köln, naïve café, ½ × ¾ = ⅜",
    "你好，世界。こんにちは世界。안녕하세요 세계. Привет, мир!",
    "🦙🚀👍🏽😶‍🌫️ emoji and 𝓕𝓪𝓷𝓬𝔂 letters",
    "\u2581already escaped\u2581space ▁▁",
    "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n",
    "text <start_of_turn> inside <end_of_turn>text<eos> and <pad> and <unk>",
    "<unused0><unused99> [multimodal] <start_of_image><end_of_image>",
    "<start_of_turn><start_of_turn>\n\n<end_of_turn>  <end_of_turn>",
    "<end_of_turn", "end_of_turn>", "<<end_of_turn>>",
    "1234567890 3.14159 -42 1e10 0xFF",
    "Mr. O'Neill's isn't won't they'll I'd y'all",
    "Moby-Dick; or, The Whale.\n\nCHAPTER 1. Loomings.\n\nCall me Ishmael.",
]
RAW = [
    b"invalid \xff\xfe utf-8 \xc3",
    b"\xe2\x96",
    b"nul\x00byte",
]


def vocab_of(path):
    m = Llama(model_path=str(path), vocab_only=True, verbose=False)
    return m, llama_cpp.llama_model_get_vocab(m._model.model)


def piece(vocab, tok, special):
    buf = ctypes.create_string_buffer(512)
    n = llama_cpp.llama_token_to_piece(vocab, tok, buf, 512, 0, special)
    assert 0 <= n <= 512, (tok, n)
    return buf.raw[:n]


def spm_inputs():
    inp = (CACHE / "vocab" / "ggml-vocab-llama-spm.gguf.inp").read_bytes()
    return inp.split(b"\n__ggml_vocab_test__\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", default=str(Path(__file__).resolve().parents[2] / "tests/data/tokenize_gemma3.json"))
    a = ap.parse_args()
    m, vocab = vocab_of(GEMMA)
    texts = [t.encode() for t in TEXTS] + RAW
    texts += [t for t in spm_inputs() if t not in texts]
    cases = []
    for t in texts:
        c = {}
        try:
            c["text"] = t.decode("utf-8")
        except UnicodeDecodeError:
            c["hex"] = t.hex()
        c["ids"] = [m.tokenize(t, add_bos=b, special=s) for b in (False, True) for s in (False, True)]
        c["pieces"] = b"".join(piece(vocab, i, True) for i in c["ids"][3]).hex()
        cases.append(c)
    moby = (CACHE / "moby-dick.txt").read_bytes()
    ids = m.tokenize(moby, add_bos=True, special=False)
    packed = struct.pack(f"<{len(ids)}I", *ids)
    moby_out = {
        "n_ids": len(ids),
        "sha256": hashlib.sha256(packed).hexdigest(),
        "block": BLOCK,
        "blocks": [hashlib.sha256(packed[4 * k:4 * (k + BLOCK)]).hexdigest() for k in range(0, len(ids), BLOCK)],
    }
    n = llama_cpp.llama_vocab_n_tokens(vocab)
    digests = {}
    for special in (False, True):
        h = hashlib.sha256()
        for i in range(n):
            p = piece(vocab, i, special)
            h.update(struct.pack("<I", len(p)))
            h.update(p)
        digests[str(special).lower()] = h.hexdigest()
    eog = {"gemma3": [i for i in range(n) if llama_cpp.llama_vocab_is_eog(vocab, i)]}
    for name, path in OTHERS.items():
        _, v = vocab_of(path)
        eog[name] = [i for i in range(llama_cpp.llama_vocab_n_tokens(v)) if llama_cpp.llama_vocab_is_eog(v, i)]
    out = {
        "model": GEMMA.name,
        "n_tokens": n,
        "cases": cases,
        "moby": moby_out,
        "pieces_sha256": digests,
        "eog": eog,
    }
    # One case per line, so that a change of vectors reads as a diff.
    dump = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    lines = [f"{dump(k)}:{dump(v)}" for k, v in out.items() if k != "cases"]
    cases_text = ",\n".join(dump(c) for c in cases)
    with open(a.o, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + ',\n"cases":[\n' + cases_text + "\n]}\n")
    print(f"{a.o}: {len(cases)} texts x 4, Moby-Dick {len(ids)} ids, eog {eog}")


if __name__ == "__main__":
    main()
