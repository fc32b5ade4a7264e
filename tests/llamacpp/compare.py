"""Compare npu-model's runtime with llama.cpp (run with the llama-cpp-python venv's python).

    compare.py kl --ref-model F16.gguf --model SRC.gguf --target T --quant Q --ids IDS --ctx 512 --n 2048
        Next-token distributions over windows of `ctx` ids (each from an empty cache, as
        llama-perplexity does), every position of every window: prints JSON
        {"kl_mean", "kl_p99", "top1", "n"} with KL(llama.cpp || npu). With --bos ID each window
        is that token followed by the next ctx - 1 ids (models such as Gemma expect it).
    compare.py greedy --ref-model F16.gguf --prompt-ids 1,2,3 --steps 32 -o OUT.json
        llama.cpp's greedy continuation with its top-5 logits per step (cached: an existing
        OUT.json is kept), in the format of tests/data/greedy_*.json.

The npu side runs `npu logits` (env NPU_BIN) and streams raw f32 logits through a pipe.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def read_ids(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt") as f:
        text = f.read()
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return [int(t) for t in text.replace(",", " ").split()]


def llama(path, n_ctx, logits_all):
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=n_ctx, n_batch=n_ctx, logits_all=logits_all, verbose=False,
                 n_threads=os.cpu_count() or 1, seed=0)


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def tokenize_text(model, text):
    from llama_cpp import Llama

    v = Llama(model_path=model, vocab_only=True, verbose=False)
    return v.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def cmd_kl(a):
    if a.text:
        with open(a.text, encoding="utf-8") as f:
            ids = tokenize_text(a.ref_model, f.read(a.n * 8))
    else:
        ids = read_ids(a.ids)
    if a.bos is not None:
        step = a.ctx - 1
        ids = [t for w0 in range(0, a.n // a.ctx * step, step) for t in [a.bos] + ids[w0:w0 + step]]
    ids = ids[: a.n // a.ctx * a.ctx]
    # A private file per run: several comparisons (tests, report.py, other checkouts) may run
    # at once and must not read each other's ids.
    with tempfile.NamedTemporaryFile("w", prefix="npu-kl-ids-", suffix=".txt", delete=False) as f:
        f.write(",".join(map(str, ids)))
        tmp = f.name
    npu = os.environ.get("NPU_BIN", "npu")
    try:
        proc = subprocess.Popen([npu, "logits", a.model, "--target", a.target, "--quant", a.quant, "--ids-file", tmp,
                                 "--ctx", str(a.ctx), "-o", "-"], stdout=subprocess.PIPE)
        _kl_windows(a, ids, proc)
    finally:
        os.unlink(tmp)


def _kl_windows(a, ids, proc):
    llm = llama(a.ref_model, a.ctx, True)
    vocab = llm.n_vocab()
    kls, agree = [], 0
    for w0 in range(0, len(ids), a.ctx):
        win = ids[w0:w0 + a.ctx]
        llm.reset()
        llm.eval(win)
        ref = np.array(llm.scores[: len(win)], dtype=np.float32)
        raw = proc.stdout.read(len(win) * vocab * 4)
        if len(raw) != len(win) * vocab * 4:
            proc.kill()
            sys.exit(f"npu logits ended early (got {len(raw)} bytes)")
        ours = np.frombuffer(raw, dtype="<f4").reshape(len(win), vocab)
        lp, lq = log_softmax(ref), log_softmax(ours)
        kls.extend((np.exp(lp) * (lp - lq)).sum(axis=-1).tolist())
        agree += int((ref.argmax(-1) == ours.argmax(-1)).sum())
    if proc.wait() != 0:
        sys.exit("npu logits failed")
    kl = np.array(kls)
    print(json.dumps({"kl_mean": float(kl.mean()), "kl_p99": float(np.percentile(kl, 99)),
                      "top1": agree / len(kl), "n": len(kl)}))


def _eog(llm):
    """End-of-generation ids as llama.cpp's vocabulary marks them (EOS, EOT, <|im_end|>...)."""
    import llama_cpp

    if not hasattr(llm, "_npu_eog"):
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        llm._npu_eog = {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)}
    return llm._npu_eog


def cmd_greedy(a):
    if os.path.exists(a.output):
        return
    ids = tokenize_text(a.ref_model, a.prompt_text) if a.prompt_text else [int(t) for t in a.prompt_ids.split(",")]
    # logits_all: llama-cpp-python keeps no per-position scores otherwise (they read as zeros).
    llm = llama(a.ref_model, max(512, len(ids) + a.steps + 8), True)
    llm.eval(ids)
    steps, gen = [], []
    for s in range(a.steps):
        lg = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        top = np.argsort(-lg, kind="stable")[:5]
        tok = int(top[0])
        steps.append({"step": s, "id": tok, "top5": [[int(i), float(lg[i])] for i in top]})
        gen.append(tok)
        if llm.token_eos() == tok or tok in a.stop or tok in _eog(llm):
            break
        llm.eval([tok])
    out = {"prompt_ids": ids, "steps": steps, "generated_ids": gen, "n_generated": len(gen)}
    tmp = a.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, a.output)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kl")
    k.add_argument("--ref-model", required=True)
    k.add_argument("--model", required=True)
    k.add_argument("--target", default="cpu")
    k.add_argument("--quant", default="fp16")
    k.add_argument("--ids")
    k.add_argument("--text", help="tokenize the start of this text file with llama.cpp instead")
    k.add_argument("--ctx", type=int, default=512)
    k.add_argument("--n", type=int, default=2048)
    k.add_argument("--bos", type=int, help="start every window with this token id")
    g = sub.add_parser("greedy")
    g.add_argument("--ref-model", required=True)
    g.add_argument("--prompt-ids")
    g.add_argument("--prompt-text")
    g.add_argument("--steps", type=int, default=32)
    g.add_argument("--stop", type=int, nargs="*", default=[])
    g.add_argument("-o", "--output", required=True)
    a = p.parse_args()
    {"kl": cmd_kl, "greedy": cmd_greedy}[a.cmd](a)


if __name__ == "__main__":
    main()
