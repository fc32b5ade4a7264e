"""Measure moby-tiny through llama.cpp and through npu-model's runtime (run with the
llama-cpp-python venv's python, $NPU_LLAMA_PYTHON, which also has numpy and gguf).

    measure.py ppl --npu target/release/npu [--model moby-tiny.gguf] [-o measured.json]
        Held-out perplexity over the trainer's windows ([BOS] + 255 text tokens, every text
        token scored) through llama.cpp (the GGUF's F16 weights) and through `npu logits` on
        target cpu for every scheme, with KL(llama.cpp || npu) and top-1 agreement per scheme,
        plus the packed blob size per target and scheme (`npu pack`).
    measure.py tokenize-check [--model moby-tiny.gguf]
        llama.cpp's ids for the held-out text equal the trainer's (heldout.ids.txt.gz); prints
        JSON {"n", "equal", "first_diff"}.

The held-out text is the tail of $NPU_CACHE/moby-dick.txt from train-metrics.json's
heldout_char_start.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("NPU_CACHE", Path.home() / ".cache" / "npu-model"))
SCHEMES = ["fp16", "int8", "int8_hadamard", "int4", "int4_hadamard"]


def metrics() -> dict:
    return json.loads((HERE / "train-metrics.json").read_text())


def heldout_ids() -> list[int]:
    with gzip.open(HERE / "heldout.ids.txt.gz", "rt") as f:
        return [int(t) for t in f.read().split(",")]


def windows(ids: list[int], ctx: int, bos: int = 0) -> np.ndarray:
    """[n, ctx]: BOS + ctx-1 text tokens each, as train.py evaluates."""
    n = len(ids) // (ctx - 1)
    chunks = np.array(ids[: n * (ctx - 1)], dtype=np.int64).reshape(n, ctx - 1)
    return np.concatenate([np.full((n, 1), bos, np.int64), chunks], axis=1)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def cmd_tokenize_check(a):
    from llama_cpp import Llama

    m = metrics()
    text = (CACHE / "moby-dick.txt").read_text(encoding="utf-8")[m["heldout_char_start"]:]
    want = heldout_ids()
    v = Llama(model_path=str(a.model), vocab_only=True, verbose=False)
    got = v.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    diff = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), None)
    print(json.dumps({"n": len(got), "n_want": len(want), "equal": got == want, "first_diff": diff}))


def cmd_ppl(a):
    from llama_cpp import Llama

    m = metrics()
    ctx = m["config"]["ctx"]
    win = windows(heldout_ids(), ctx)[: a.windows]
    n_win, vocab = len(win), m["config"]["vocab"]
    tgt = win[:, 1:]  # position j predicts text token j (= window position j+1)
    out = {"windows": n_win, "ctx": ctx, "scored_tokens": int(tgt.size), "trainer": {
        "heldout_ppl_f32": m["heldout_ppl_f32"], "heldout_ppl_f16_weights": m["heldout_ppl_f16_weights"]}}

    t0 = time.time()
    llm = Llama(model_path=str(a.model), n_ctx=ctx, n_batch=ctx, logits_all=True, verbose=False,
                n_threads=os.cpu_count() or 1, seed=0)
    ref = np.empty((n_win, ctx - 1, vocab), np.float32)
    for i, w in enumerate(win):
        llm.reset()
        llm.eval(w.tolist())
        ref[i] = log_softmax(np.array(llm.scores[: ctx - 1], dtype=np.float32))
    nll = -np.take_along_axis(ref, tgt[..., None], axis=-1)[..., 0]
    out["llama_cpp"] = {"ppl": float(np.exp(nll.mean())), "seconds": round(time.time() - t0, 1)}
    print("llama.cpp", out["llama_cpp"], file=sys.stderr, flush=True)

    with tempfile.NamedTemporaryFile("w", prefix="npu-tiny-ids-", suffix=".txt", delete=False) as f:
        f.write(",".join(map(str, win.reshape(-1).tolist())))
        ids_file = f.name
    try:
        for scheme in SCHEMES:
            t0 = time.time()
            proc = subprocess.Popen([a.npu, "logits", str(a.model), "--target", "cpu", "--quant", scheme,
                                     "--ids-file", ids_file, "--ctx", str(ctx), "-o", "-"], stdout=subprocess.PIPE)
            nll, kl, top1 = [], [], 0
            for i in range(n_win):
                raw = proc.stdout.read(ctx * vocab * 4)
                if len(raw) != ctx * vocab * 4:
                    proc.kill()
                    sys.exit(f"npu logits ({scheme}) ended early")
                lq = log_softmax(np.frombuffer(raw, dtype="<f4").reshape(ctx, vocab)[: ctx - 1])
                lp = ref[i].astype(np.float64)
                nll.append(-np.take_along_axis(lq, tgt[i][:, None], axis=-1)[:, 0])
                kl.append((np.exp(lp) * (lp - lq)).sum(-1))
                top1 += int((lp.argmax(-1) == lq.argmax(-1)).sum())
            if proc.wait() != 0:
                sys.exit(f"npu logits ({scheme}) failed")
            nll, kl = np.concatenate(nll), np.concatenate(kl)
            out[f"npu_cpu_{scheme}"] = {"ppl": float(np.exp(nll.mean())), "kl_vs_llama_cpp": float(kl.mean()),
                                        "top1_vs_llama_cpp": top1 / kl.size, "seconds": round(time.time() - t0, 1)}
            print(scheme, out[f"npu_cpu_{scheme}"], file=sys.stderr, flush=True)
    finally:
        os.unlink(ids_file)

    blobs = {}
    with tempfile.TemporaryDirectory() as d:
        for target in ["cpu", "rk3588"]:
            for scheme in SCHEMES:
                r = subprocess.run([a.npu, "pack", str(a.model), "--target", target, "--quant", scheme, "-o",
                                    f"{d}/{target}-{scheme}"], capture_output=True, text=True)
                if r.returncode == 0:
                    blobs[f"{target}/{scheme}"] = os.path.getsize(f"{d}/{target}-{scheme}/model.blob")
    out["blob_bytes"] = blobs
    text = json.dumps(out, indent=1) + "\n"
    if a.output:
        Path(a.output).write_text(text)
    print(text)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("ppl", "tokenize-check"):
        s = sub.add_parser(name)
        s.add_argument("--model", default=str(HERE / "moby-tiny.gguf"))
        if name == "ppl":
            s.add_argument("--npu", default=os.environ.get("NPU_BIN", "npu"))
            s.add_argument("-o", "--output")
            s.add_argument("--windows", type=int, help="only the first N windows (a quick check)")
    a = p.parse_args()
    {"ppl": cmd_ppl, "tokenize-check": cmd_tokenize_check}[a.cmd](a)


if __name__ == "__main__":
    main()
