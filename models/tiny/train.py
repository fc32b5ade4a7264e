"""Train moby-tiny: a ~1M-parameter llama-architecture model on Moby-Dick, exported to GGUF.

    python train.py --text ~/.cache/npu-model/moby-dick.txt --out models/tiny [--steps N] [--seed S]

Steps, all deterministic for a given seed and package set (requirements.txt):
1. Split the text at the first line break after 90% of its characters: the head trains the
   tokenizer and the model, the tail (held-out) is only ever evaluated.
2. Byte-level BPE (HF `tokenizers`, GPT-2 pre-tokenizer regex) with 1024 tokens, id 0 the
   `<|endoftext|>` special (BOS = EOS).
3. A llama block stack in JAX: RMSNorm, GQA attention with llama.cpp's NORM rope (adjacent
   pairs (2i, 2i+1), as ggml applies it for arch=llama, so the weights need no permutation),
   SwiGLU FFN, tied embeddings. Windows of `ctx` ids: BOS + ctx-1 text tokens.
4. AdamW with warmup + cosine decay.
5. Held-out perplexity over windows [BOS] + (ctx-1) tokens, every text token scored.
6. Export: GGUF (arch llama, F16 matrices, F32 norms) with the tokenizer, `tokenizer.json`,
   the held-out ids (gzip, for the tokenizer conformance tests) and `metrics.json`.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

# Fixed hyperparameters: the model must fit an MCU (int8 blob <= 2 MB, arena with an f16 KV
# cache of 256 positions well under 512 KB), see README.md.
CONFIG = dict(vocab=1024, d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, ff=384, ctx=256,
              rope_base=10000.0, rms_eps=1e-5)
TRAIN = dict(batch=16, lr=3e-3, min_lr_frac=0.1, warmup=50, weight_decay=0.1, b1=0.9, b2=0.95,
             clip=1.0, init_std=0.02)
HELDOUT_FRAC = 0.10
EOT = "<|endoftext|>"


def split_text(text: str) -> int:
    """Character offset where the held-out tail starts: after the first newline past 90%."""
    cut = int(len(text) * (1 - HELDOUT_FRAC))
    nl = text.index("\n", cut)
    return nl + 1


def train_tokenizer(train_text: str, vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    # GPT-2's regex, no prefix space: exactly llama.cpp's "gpt-2" pre-tokenizer.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([train_text], trainer=trainer)
    assert tok.get_vocab_size() == vocab, tok.get_vocab_size()
    assert tok.token_to_id(EOT) == 0
    return tok


def encode(tok, text: str) -> np.ndarray:
    return np.array(tok.encode(text, add_special_tokens=False).ids, dtype=np.int32)


# ---------------------------------------------------------------- model (JAX)

def init_params(key, c):
    import jax
    import jax.numpy as jnp

    d, hd = c["d_model"], c["d_model"] // c["n_heads"]
    kv = c["n_kv_heads"] * hd
    std = TRAIN["init_std"]
    # Residual projections scaled down by depth (GPT-2 style) for a stable start.
    std_out = std / math.sqrt(2 * c["n_layers"])
    keys = iter(jax.random.split(key, 1 + 7 * c["n_layers"]))

    def normal(shape, s):
        return s * jax.random.normal(next(keys), shape, dtype=jnp.float32)

    p = {"tok_embd": normal((c["vocab"], d), std), "output_norm": jnp.ones((d,), jnp.float32), "blocks": []}
    for _ in range(c["n_layers"]):
        # Matrices in GGUF/torch order (out, in): y = x @ W.T.
        p["blocks"].append({
            "attn_norm": jnp.ones((d,), jnp.float32),
            "attn_q": normal((d, d), std), "attn_k": normal((kv, d), std), "attn_v": normal((kv, d), std),
            "attn_output": normal((d, d), std_out),
            "ffn_norm": jnp.ones((d,), jnp.float32),
            "ffn_gate": normal((c["ff"], d), std), "ffn_up": normal((c["ff"], d), std),
            "ffn_down": normal((d, c["ff"]), std_out),
        })
    return p


def rope_tables(c, T):
    hd = c["d_model"] // c["n_heads"]
    # theta_i = base^(-2i/hd), as ggml_rope computes it (theta_scale = base^(-2/n_dims)).
    inv = c["rope_base"] ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def apply_rope(x, cos, sin):
    """NORM rope: rotate adjacent pairs (x[2i], x[2i+1]). x: [B, T, H, hd]."""
    import jax.numpy as jnp

    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    y0 = x0 * c - x1 * s
    y1 = x0 * s + x1 * c
    return jnp.stack([y0, y1], axis=-1).reshape(x.shape)


def rmsnorm(x, w, eps):
    import jax.numpy as jnp

    return x * (1.0 / jnp.sqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)) * w


def forward(p, ids, c, cos, sin):
    """Logits [B, T, vocab] for ids [B, T]."""
    import jax
    import jax.numpy as jnp

    B, T = ids.shape
    H, KVH = c["n_heads"], c["n_kv_heads"]
    hd = c["d_model"] // H
    x = p["tok_embd"][ids]
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))
    for b in p["blocks"]:
        h = rmsnorm(x, b["attn_norm"], c["rms_eps"])
        q = (h @ b["attn_q"].T).reshape(B, T, H, hd)
        k = (h @ b["attn_k"].T).reshape(B, T, KVH, hd)
        v = (h @ b["attn_v"].T).reshape(B, T, KVH, hd)
        q, k = apply_rope(q, cos[:T], sin[:T]), apply_rope(k, cos[:T], sin[:T])
        # GQA: query head h reads kv head h // (H / KVH), as ggml's broadcast does.
        k = jnp.repeat(k, H // KVH, axis=2)
        v = jnp.repeat(v, H // KVH, axis=2)
        att = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
        att = jnp.where(mask[None, None], att, -1e30)
        att = jax.nn.softmax(att, axis=-1)
        o = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(B, T, H * hd)
        x = x + o @ b["attn_output"].T
        h = rmsnorm(x, b["ffn_norm"], c["rms_eps"])
        x = x + (jax.nn.silu(h @ b["ffn_gate"].T) * (h @ b["ffn_up"].T)) @ b["ffn_down"].T
    x = rmsnorm(x, p["output_norm"], c["rms_eps"])
    return x @ p["tok_embd"].T


def token_nll(p, inp, tgt, c, cos, sin):
    """Per-position negative log-likelihood of tgt [B, T] after inp [B, T]."""
    import jax
    import jax.numpy as jnp

    lp = jax.nn.log_softmax(forward(p, inp, c, cos, sin), axis=-1)
    return -jnp.take_along_axis(lp, tgt[..., None], axis=-1)[..., 0]


def windows(ids: np.ndarray, ctx: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping evaluation windows of ctx ids, [BOS] + ctx-1 text tokens each. Returns
    (ids [n, ctx], targets [n, ctx-1]): position j predicts text token j, so every text token
    is scored once; the last position's prediction lies outside the window and is unscored."""
    n = len(ids) // (ctx - 1)
    chunks = ids[: n * (ctx - 1)].reshape(n, ctx - 1)
    inp = np.concatenate([np.zeros((n, 1), np.int32), chunks], axis=1)  # BOS = 0
    return inp, chunks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", default=os.path.join(os.environ.get("NPU_CACHE", os.path.expanduser("~/.cache/npu-model")),
                                                   "moby-dick.txt"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1851)  # Moby-Dick's year
    ap.add_argument("--eval-every", type=int, default=100)
    a = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = Path(a.text).read_bytes()
    text = raw.decode("utf-8")
    cut = split_text(text)
    train_text, held_text = text[:cut], text[cut:]
    c = CONFIG
    t0 = time.time()
    tok = train_tokenizer(train_text, c["vocab"])
    train_ids, held_ids = encode(tok, train_text), encode(tok, held_text)
    print(f"tokenizer: {c['vocab']} tokens; train {len(train_ids)} ids ({len(train_text)} chars), "
          f"held-out {len(held_ids)} ids ({len(held_text)} chars); {time.time() - t0:.1f} s", flush=True)

    ctx = c["ctx"]
    cos, sin = rope_tables(c, ctx)
    cos, sin = jnp.asarray(cos), jnp.asarray(sin)
    key = jax.random.PRNGKey(a.seed)
    key, k_init = jax.random.split(key)
    params = init_params(k_init, c)
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params))
    print(f"params: {n_params}", flush=True)

    sched = optax.warmup_cosine_decay_schedule(0.0, TRAIN["lr"], min(TRAIN["warmup"], a.steps // 10), a.steps,
                                               TRAIN["lr"] * TRAIN["min_lr_frac"])
    # Decay matrices only (not norms, not the embedding).
    decay_mask = jax.tree_util.tree_map_with_path(
        lambda path, x: x.ndim == 2 and "tok_embd" not in jax.tree_util.keystr(path), params)
    opt = optax.chain(optax.clip_by_global_norm(TRAIN["clip"]),
                      optax.adamw(sched, b1=TRAIN["b1"], b2=TRAIN["b2"], weight_decay=TRAIN["weight_decay"],
                                  mask=decay_mask))
    state = opt.init(params)

    def loss_fn(p, inp, tgt):
        return token_nll(p, inp, tgt, c, cos, sin).mean()

    @jax.jit
    def step(p, s, inp, tgt):
        loss, g = jax.value_and_grad(loss_fn)(p, inp, tgt)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    @jax.jit
    def eval_nll(p, inp, tgt):
        return token_nll(p, inp, tgt, c, cos, sin).sum()

    h_inp, h_tgt = windows(held_ids, ctx)

    def heldout_ppl(p):
        tot, n = 0.0, 0
        for i in range(0, len(h_inp), 16):
            tot += float(eval_nll(p, jnp.asarray(h_inp[i:i + 16, :-1]), jnp.asarray(h_tgt[i:i + 16])))
            n += h_tgt[i:i + 16].size
        return math.exp(tot / n), n

    # Training windows: [BOS] + ctx-1 tokens from a random offset of the training ids; the
    # model sees BOS at position 0 as in evaluation and generation (add_bos_token = true).
    rng = np.random.default_rng(a.seed)
    max_start = len(train_ids) - ctx
    t_train = time.time()
    losses = []
    for it in range(1, a.steps + 1):
        starts = rng.integers(0, max_start, size=TRAIN["batch"])
        seq = np.stack([train_ids[s:s + ctx] for s in starts])  # ctx tokens: ctx-1 inputs + targets
        inp = np.concatenate([np.zeros((TRAIN["batch"], 1), np.int32), seq[:, :-1]], axis=1)
        params, state, loss = step(params, state, jnp.asarray(inp), jnp.asarray(seq))
        losses.append(float(loss))
        if it % 50 == 0 or it == 1:
            el = time.time() - t_train
            print(f"step {it}/{a.steps} loss {np.mean(losses[-50:]):.4f} lr {float(sched(it)):.2e} {el:.0f} s", flush=True)
        if it % a.eval_every == 0 and it != a.steps:
            print(f"  held-out ppl {heldout_ppl(params)[0]:.3f}", flush=True)
            # A usable snapshot in case a long run is cut short (not the committed model).
            export_gguf(out / "checkpoint.gguf", jax.tree_util.tree_map(np.asarray, params), tok, c, a.seed)
    train_s = time.time() - t_train
    ppl, n_scored = heldout_ppl(params)
    print(f"final held-out ppl {ppl:.4f} over {n_scored} tokens ({len(h_inp)} windows); trained {train_s:.0f} s",
          flush=True)

    # The F16 copy's perplexity, the figure the GGUF itself should give.
    p16 = jax.tree_util.tree_map(lambda x: x if x.ndim == 1 else x.astype(jnp.float16).astype(jnp.float32), params)
    ppl16, _ = heldout_ppl(p16)
    print(f"held-out ppl with F16-rounded matrices {ppl16:.4f}", flush=True)

    name = "moby-tiny"
    gguf_path = out / f"{name}.gguf"
    export_gguf(gguf_path, jax.tree_util.tree_map(np.asarray, params), tok, c, a.seed)
    tok.save(str(out / "tokenizer.json"))
    with gzip.GzipFile(out / "heldout.ids.txt.gz", "wb", mtime=0) as f:
        f.write(",".join(map(str, held_ids.tolist())).encode())
    sha = hashlib.sha256(gguf_path.read_bytes()).hexdigest()
    (out / f"{name}.gguf.sha256").write_text(f"{sha}  {name}.gguf\n")
    metrics = {
        "model": f"{name}.gguf", "sha256": sha, "params": n_params, "config": c, "train": TRAIN,
        "steps": a.steps, "seed": a.seed, "train_seconds": round(train_s, 1),
        "text_sha256": hashlib.sha256(raw).hexdigest(), "text_chars": len(text), "heldout_char_start": cut,
        "train_tokens": int(len(train_ids)), "heldout_tokens": int(len(held_ids)),
        "heldout_windows": int(len(h_inp)), "heldout_scored_tokens": n_scored,
        "final_train_loss_last50": float(np.mean(losses[-50:])),
        "heldout_ppl_f32": round(ppl, 4), "heldout_ppl_f16_weights": round(ppl16, 4),
        "versions": {"jax": jax.__version__, "optax": optax.__version__, "python": platform.python_version()},
    }
    (out / "train-metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps(metrics))


def export_gguf(path: Path, p, tok, c, seed):
    import gguf

    vocab = json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(vocab["vocab"].items(), key=lambda kv: kv[1])]
    assert len(tokens) == c["vocab"] and tokens[0] == EOT
    merges = [m if isinstance(m, str) else " ".join(m) for m in vocab["merges"]]
    types = [gguf.TokenType.CONTROL] + [gguf.TokenType.NORMAL] * (len(tokens) - 1)

    hd = c["d_model"] // c["n_heads"]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("moby-tiny")
    w.add_description(f"~1M-parameter llama trained on Moby-Dick (public domain) by models/tiny/train.py, seed {seed}")
    w.add_license("public-domain text; model weights CC0")
    w.add_context_length(c["ctx"])
    w.add_embedding_length(c["d_model"])
    w.add_block_count(c["n_layers"])
    w.add_feed_forward_length(c["ff"])
    w.add_head_count(c["n_heads"])
    w.add_head_count_kv(c["n_kv_heads"])
    w.add_layer_norm_rms_eps(c["rms_eps"])
    w.add_rope_freq_base(c["rope_base"])
    w.add_rope_dimension_count(hd)
    w.add_vocab_size(c["vocab"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def mat(x):  # (out, in) numpy → GGUF ne = [in, out]
        return np.ascontiguousarray(x, dtype=np.float16)

    def vec(x):  # llama.cpp keeps norms in F32
        return np.ascontiguousarray(x, dtype=np.float32)

    w.add_tensor("token_embd.weight", mat(p["tok_embd"]))
    for i, b in enumerate(p["blocks"]):
        w.add_tensor(f"blk.{i}.attn_norm.weight", vec(b["attn_norm"]))
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(f"blk.{i}.{n}.weight", mat(b[n]))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", vec(b["ffn_norm"]))
        for n in ("ffn_gate", "ffn_up", "ffn_down"):
            w.add_tensor(f"blk.{i}.{n}.weight", mat(b[n]))
    w.add_tensor("output_norm.weight", vec(p["output_norm"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
