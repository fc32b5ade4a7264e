"""The repo's default model, models/tiny/moby-tiny.gguf, against llama.cpp.

- The committed GGUF is the file its .sha256 names.
- llama.cpp tokenizes the whole held-out tail of Moby-Dick exactly as the trainer's HF
  tokenizer did (models/tiny/heldout.ids.txt.gz; our tokenizer is checked against the same ids
  in npu-build/tests/tiny_model.rs).
- Our fp16 logits on two held-out windows ([BOS] + 255 tokens each) match llama.cpp's on the
  F16 GGUF: mean KL < 1e-3, top-1 agreement >= 99%.
Cheap (a ~1M-parameter model): seconds.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from test_llamacpp import CACHE, REPO, compare, llama_py, need, npu  # noqa: F401 (fixtures)

TINY = REPO / "models" / "tiny"
GGUF = TINY / "moby-tiny.gguf"


def test_tiny_sha256():
    want = (TINY / "moby-tiny.gguf.sha256").read_text().split()[0]
    assert hashlib.sha256(GGUF.read_bytes()).hexdigest() == want
    assert json.loads((TINY / "train-metrics.json").read_text())["sha256"] == want


def test_tiny_llamacpp_tokenizes_heldout_like_the_trainer(llama_py):
    need(CACHE / "moby-dick.txt", "Moby-Dick text")
    out = subprocess.run([llama_py, str(TINY / "measure.py"), "tokenize-check", "--model", str(GGUF)],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["equal"] and r["n"] == r["n_want"], r


def test_tiny_kl_fp16(llama_py, npu, tmp_path):
    with gzip.open(TINY / "heldout.ids.txt.gz", "rt") as f:
        held = [int(t) for t in f.read().split(",")]
    ids = [0, *held[:255], 0, *held[255:510]]  # two windows: BOS + 255 held-out tokens
    p = tmp_path / "ids.txt"
    p.write_text(",".join(map(str, ids)))
    r = json.loads(compare(llama_py, npu, "kl", "--ref-model", GGUF, "--model", GGUF, "--ids", p,
                           "--ctx", 256, "--n", 512))
    print("moby-tiny fp16/cpu vs llama.cpp F16:", r, file=sys.stderr)
    assert r["n"] == 512
    assert r["kl_mean"] < 1e-3 and r["top1"] >= 0.99, r
