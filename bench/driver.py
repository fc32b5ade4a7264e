"""Side-by-side measurements of npu-model and llama.cpp (run by scripts/bench.sh, which builds
everything first; run with the llama venv's python, which has gguf-py).

Per model (SmolLM2-135M, Qwen2.5-Coder-0.5B, Gemma 3 270M (--models gemma3); each from its F16
GGUF copy):
- speed: prefill tokens/s (pp, a PP-token prompt from an empty cache) and decode tokens/s (tg,
  TG tokens one at a time from an empty cache) at each thread count, medians over REPS runs.
  Ours: bench/ binaries (model embedded via #[npu_model], CpuFast backend), per scheme on the
  `cpu` target and on `rk3588` (its tiled layouts and pipelines, emulated on the CPU).
  llama.cpp: its `llama-bench` (same definitions, warm-up included) on F16, Q8_0, Q4_0 and
  Q4_K_M files made by its `llama-quantize` from the same F16 copy.
- ceiling: bytes one decode step reads (weights it multiplies by, one embedding row, the f16 KV
  cache up to the mean position of the run) and this machine's read bandwidth → the most
  tokens/s memory allows.
- startup: exec of a process to its exit after the first generated token (greedy, prompt
  "Once upon a time"), and its peak RSS (wait4). Ours: the same bench binary; llama.cpp: its
  `llama-simple -n 1`, the smallest program that loads a model and generates a token.
- quality (optional, --eval-chunks N): `npu eval` per scheme against our fp16 path, and
  `llama-perplexity --kl-divergence` per type against llama.cpp's F16 logits, both over the
  first N 512-token chunks of Moby-Dick, second half of each chunk scored.

Prints Markdown tables and writes everything measured as JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct", "smollm2-135m-instruct"),
    "qwen25": ("Qwen2.5-Coder-0.5B-Instruct", "qwen2.5-coder-0.5b-instruct"),
    "gemma3": ("Gemma-3-270M", "gemma-3-270m"),
}
SCHEMES = ["fp16", "int8", "int8_hadamard", "int4", "int4_hadamard"]
TARGETS = ["cpu", "rk3588"]
LLAMA_TYPES = ["F16", "Q8_0", "Q4_0", "Q4_K_M"]
# The llama.cpp type of the same bit width, for the ratio columns.
MATCH = {"fp16": "F16", "int8": "Q8_0", "int8_hadamard": "Q8_0", "int4": "Q4_0", "int4_hadamard": "Q4_0"}
PROMPT = "Once upon a time"


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run_json(cmd: list[str]) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds from exec to exit, and peak RSS in bytes. The RSS comes from GNU time's %M:
    a child forked from this Python process would report at least this process's RSS (Linux
    carries the pre-exec high-water mark into ru_maxrss), so the child is forked by `time`."""
    rss_file = Path(os.environ.get("TMPDIR", "/tmp")) / f".bench-rss-{os.getpid()}"
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if p.returncode != 0 or not p.stdout.strip():
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({p.returncode})")
    rss_kib = int(rss_file.read_text().split()[-1])
    rss_file.unlink()
    return dt, rss_kib * 1024


def quantize(llama_bin: Path, f16: Path, cache: Path, stem: str) -> dict[str, Path]:
    files = {"F16": f16}
    for t in LLAMA_TYPES[1:]:
        out = cache / f"{stem}-llamacpp-{t.lower()}.gguf"
        if not out.exists():
            log(f"llama-quantize {f16.name} → {out.name}")
            tmp = out.with_suffix(".tmp")
            subprocess.run([str(llama_bin / "llama-quantize"), str(f16), str(tmp), t], check=True, capture_output=True)
            tmp.rename(out)
        files[t] = out
    return files


def llama_weight_bytes(path: Path) -> int:
    """Bytes a llama.cpp decode step reads from the weights: every tensor but the embedding
    table, of which one row (the whole table when it doubles as the output head)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    names = {t.name for t in r.tensors}
    total = 0
    for t in r.tensors:
        if t.name == "token_embd.weight" and "output.weight" in names:
            total += int(t.n_bytes) // int(t.shape[-1])
        else:
            total += int(t.n_bytes)
    return total


def kv_bytes_per_position(path: Path) -> int:
    """Bytes of f16 K and V cache one position holds (both runtimes keep f16 caches)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    arch = r.fields["general.architecture"].contents()
    f = lambda k: int(r.fields[f"{arch}.{k}"].contents())  # noqa: E731
    head_dim = f("embedding_length") // f("attention.head_count")
    return 2 * f("block_count") * f("attention.head_count_kv") * head_dim * 2


def bandwidth(bench_bin: Path, threads: int) -> float:
    r = run_json([str(bench_bin / "bandwidth"), "--threads", str(threads), "--mib", "1024", "--reps", "5"])
    return max(r["bytes_per_s"])


def llama_speed(llama_bin: Path, files: dict[str, Path], threads: list[int], pp: int, tg: int, reps: int) -> dict:
    cmd = [str(llama_bin / "llama-bench"), "-m", ",".join(str(files[t]) for t in LLAMA_TYPES), "-p", str(pp), "-n",
           str(tg), "-t", ",".join(map(str, threads)), "-r", str(reps), "-o", "jsonl"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: llama-bench failed:\n{p.stderr[-2000:]}")
    by_file = {str(v): k for k, v in files.items()}
    out: dict = {}
    for line in p.stdout.splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        typ = by_file[r["model_filename"]]
        kind = "pp" if r["n_prompt"] > 0 else "tg"
        out.setdefault(f"{typ}/{r['n_threads']}", {})[f"{kind}_tps"] = r["samples_ts"]
    return out


def parse_perplexity(text: str) -> dict:
    def grab(pat: str) -> float | None:
        m = re.search(pat, text)
        return float(m.group(1)) if m else None

    return {
        "ppl": grab(r"Mean PPL\(Q\)\s*:\s*([\d.]+)"),
        "ppl_base": grab(r"Mean PPL\(base\)\s*:\s*([\d.]+)"),
        "kl_mean": grab(r"Mean\s+KLD:\s*([-\d.e]+)"),
        "kl_max": grab(r"Maximum KLD:\s*([-\d.e]+)"),
        "top1_agree_pct": grab(r"Same top p:\s*([\d.]+)"),
    }


def med(v: list[float]) -> float:
    return statistics.median(v)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-bin", type=Path, required=True)
    ap.add_argument("--llama-bin", type=Path, required=True)
    ap.add_argument("--npu", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default="smollm2,qwen25")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--startup-reps", type=int, default=5)
    ap.add_argument("--eval-chunks", type=int, default=0, help="0: skip the quality section")
    ap.add_argument("--eval-only", action="store_true", help="only the quality section (needs --eval-chunks)")
    ap.add_argument("--llama-from", type=Path, help="take llama.cpp's figures from this earlier --out file")
    a = ap.parse_args()
    prev = json.loads(a.llama_from.read_text())["models"] if a.llama_from else {}
    threads = [int(t) for t in a.threads.split(",")]
    targets = [t for t in a.targets.split(",") if t]  # none: llama.cpp's side only
    res: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "kernel": platform.release()},
        "params": {"pp": a.pp, "tg": a.tg, "reps": a.reps, "startup_reps": a.startup_reps, "threads": threads,
                   "eval_chunks": a.eval_chunks},
        "bandwidth": {},
        "models": {},
    }
    for t in [] if a.eval_only else threads:
        res["bandwidth"][str(t)] = bandwidth(a.bench_bin, t)
        log(f"read bandwidth, {t} thread(s): {res['bandwidth'][str(t)] / 1e9:.2f} GB/s")
    for m in a.models.split(","):
        title, stem = MODELS[m]
        f16 = a.cache / f"{stem}-f16.gguf"
        files = quantize(a.llama_bin, f16, a.cache, stem)
        mr: dict = {"title": title, "ours": {}, "llama": {}}
        res["models"][m] = mr
        if a.eval_only:
            mr["kv_bytes_per_position"] = kv_bytes_per_position(f16)
            evaluate(a, m, f16, files, mr)
            a.out.write_text(json.dumps(res, indent=1))
            continue
        kv_pos = kv_bytes_per_position(f16)
        for tgt in targets:
            for s in SCHEMES:
                v = f"{m}_{tgt}_{s}"
                b = str(a.bench_bin / v)
                if not Path(b).exists():
                    log(f"{v}: no binary in {a.bench_bin}, skipped")
                    continue
                info = run_json([b, "info"])
                if info["kv_bytes_per_position"] != kv_pos:
                    raise SystemExit(f"bench: {v}: KV bytes per position {info['kv_bytes_per_position']} != {kv_pos}")
                e = mr["ours"][f"{tgt}/{s}"] = {"weight_bytes_per_token": info["weight_bytes_per_token"],
                                                "blob_bytes": info["blob_bytes"], "speed": {}}
                for t in threads:
                    log(f"{v}: speed, {t} thread(s)")
                    r = run_json([b, "speed", "--threads", str(t), "--prompt-tokens", str(a.pp), "--gen", str(a.tg),
                                  "--reps", str(a.reps)])
                    e["speed"][str(t)] = {"pp_tps": r["pp_tps"], "tg_tps": r["tg_tps"], "backend": r["backend"]}
                log(f"{v}: startup")
                runs = [timed([b, "startup", "--threads", str(max(threads)), "--prompt", PROMPT])
                        for _ in range(a.startup_reps + 1)][1:]  # the first run warms the page cache
                e["startup_s"] = [r[0] for r in runs]
                e["peak_rss_bytes"] = [r[1] for r in runs]
        mr["kv_bytes_per_position"] = kv_pos
        if m in prev:
            log(f"{m}: llama.cpp figures from {a.llama_from}")
            mr["llama"] = prev[m]["llama"]
            mr["llama_from"] = str(a.llama_from)
            if a.eval_chunks > 0:
                evaluate(a, m, f16, files, mr, prev[m].get("eval", {}).get("llama"))
            a.out.write_text(json.dumps(res, indent=1))
            continue
        log(f"{m}: llama-bench")
        sp = llama_speed(a.llama_bin, files, threads, a.pp, a.tg, a.reps)
        for typ in LLAMA_TYPES:
            e = mr["llama"][typ] = {"file": files[typ].name, "weight_bytes_per_token": llama_weight_bytes(files[typ]),
                                    "speed": {str(t): sp.get(f"{typ}/{t}", {}) for t in threads}}
            log(f"{m}: llama-simple startup, {typ}")
            cmd = [str(a.llama_bin / "llama-simple"), "-m", str(files[typ]), "-n", "1", PROMPT]
            runs = [timed(cmd) for _ in range(a.startup_reps + 1)][1:]
            e["startup_s"] = [r[0] for r in runs]
            e["peak_rss_bytes"] = [r[1] for r in runs]
        if a.eval_chunks > 0:
            evaluate(a, m, f16, files, mr)
        a.out.write_text(json.dumps(res, indent=1))
    a.out.write_text(json.dumps(res, indent=1))
    print(tables(res))


def evaluate(a, m: str, f16: Path, files: dict[str, Path], mr: dict, llama_prev: dict | None = None) -> None:
    text = a.cache / "moby-dick.txt"
    mr["eval"] = {"ours": {}, "llama": {}}
    for tgt in [t for t in a.targets.split(",") if t]:
        for s in SCHEMES[1:]:
            log(f"{m}: npu eval {tgt}/{s}")
            mr["eval"]["ours"][f"{tgt}/{s}"] = run_json([str(a.npu), "eval", str(f16), "--text", str(text), "--target",
                                                         tgt, "--quant", s, "--chunks", str(a.eval_chunks), "--json"])
    if llama_prev:
        mr["eval"]["llama"] = llama_prev
        return
    base = a.out.parent / f".{m}-f16.kld"
    ppl = [str(a.llama_bin / "llama-perplexity"), "-f", str(text), "-c", "512", "--chunks", str(a.eval_chunks), "-t",
           str(os.cpu_count() or 1)]
    log(f"{m}: llama-perplexity F16 (base logits)")
    p = subprocess.run(ppl + ["-m", str(f16), "--kl-divergence-base", str(base)], capture_output=True, text=True)
    fin = re.search(r"Final estimate: PPL = ([\d.]+)", p.stdout + p.stderr)
    mr["eval"]["llama"]["F16"] = {"ppl": float(fin.group(1)) if fin else None}
    for typ in LLAMA_TYPES[1:]:
        log(f"{m}: llama-perplexity {typ} --kl-divergence")
        p = subprocess.run(ppl + ["-m", str(files[typ]), "--kl-divergence-base", str(base), "--kl-divergence"],
                           capture_output=True, text=True)
        mr["eval"]["llama"][typ] = parse_perplexity(p.stdout + p.stderr)
    base.unlink(missing_ok=True)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def tables(res: dict) -> str:
    p = res["params"]
    pp, tg = p["pp"], p["tg"]
    bw = res["bandwidth"]
    out = [f"Measured {res['date']} on {res['machine']['cpu']} ({res['machine']['cores']} cores); medians of "
           f"{p['reps']} runs (speed) and {p['startup_reps']} runs (startup). Read bandwidth: "
           + ", ".join(f"{float(v) / 1e9:.1f} GB/s at {t} thread(s)" for t, v in bw.items()) + "."]
    for m, mr in res["models"].items():
        kv = mr["kv_bytes_per_position"] * (tg + 1) / 2  # mean KV bytes read per step of a tg run

        def ceiling(wb: float, t: str) -> float:
            return float(bw[t]) / (wb + kv)

        out.append(f"\n### {mr['title']}: speed (tokens/s; pp{pp} = prefill of {pp} tokens, tg{tg} = decode of "
                   f"{tg})\n")
        out.append(f"| npu-model | thr | pp{pp} | tg{tg} | vs llama.cpp | pp ratio | tg ratio | MB/token | ceiling "
                   f"tg/s | tg % of ceiling |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for key, e in mr["ours"].items():
            lt = MATCH[key.split("/")[1]]
            for t, s in e["speed"].items():
                ls = mr["llama"][lt]["speed"].get(t, {})
                ppv, tgv = med(s["pp_tps"]), med(s["tg_tps"])
                lpp = med(ls["pp_tps"]) if ls.get("pp_tps") else float("nan")
                ltg = med(ls["tg_tps"]) if ls.get("tg_tps") else float("nan")
                c = ceiling(e["weight_bytes_per_token"], t)
                out.append(f"| {key} | {t} | {ppv:.1f} | {tgv:.1f} | {lt} | {ppv / lpp:.2f} | {tgv / ltg:.2f} | "
                           f"{(e['weight_bytes_per_token'] + kv) / 1e6:.1f} | {c:.1f} | {100 * tgv / c:.0f}% |")
        out.append(f"\n| llama.cpp | thr | pp{pp} | tg{tg} | MB/token | ceiling tg/s | tg % of ceiling |")
        out.append("|---|---|---|---|---|---|---|")
        for typ, e in mr["llama"].items():
            for t, s in e["speed"].items():
                if not s:
                    continue
                tgv = med(s["tg_tps"])
                c = ceiling(e["weight_bytes_per_token"], t)
                out.append(f"| {typ} | {t} | {med(s['pp_tps']):.1f} | {tgv:.1f} | "
                           f"{(e['weight_bytes_per_token'] + kv) / 1e6:.1f} | {c:.1f} | {100 * tgv / c:.0f}% |")
        out.append(f"\n### {mr['title']}: startup (exec → first token → exit; peak RSS)\n")
        out.append("| program | seconds | peak RSS MB | time vs llama.cpp | RSS vs llama.cpp |")
        out.append("|---|---|---|---|---|")
        for typ, e in mr["llama"].items():
            out.append(f"| llama-simple {typ} | {med(e['startup_s']):.3f} | {med(e['peak_rss_bytes']) / 1e6:.0f} | | |")
        for key, e in mr["ours"].items():
            le = mr["llama"][MATCH[key.split("/")[1]]]
            out.append(f"| npu-bench {key} | {med(e['startup_s']):.3f} | {med(e['peak_rss_bytes']) / 1e6:.0f} | "
                       f"{med(e['startup_s']) / med(le['startup_s']):.2f} | "
                       f"{med(e['peak_rss_bytes']) / med(le['peak_rss_bytes']):.2f} |")
        ev = mr.get("eval")
        if ev:
            out.append(f"\n### {mr['title']}: quality over {p['eval_chunks']} chunks of 512 Moby-Dick tokens "
                       f"(vs the same runtime's fp16 / F16)\n")
            out.append("| runtime | scheme / type | PPL | PPL of fp16/F16 | mean KL | top-1 agree % |")
            out.append("|---|---|---|---|---|---|")
            for key, e in ev["ours"].items():
                out.append(f"| npu-model | {key} | {e['ppl']:.3f} | {e['ppl_base']:.3f} | {e['kl_mean']:.5f} | "
                           f"{e['top1_agree_pct']:.2f} |")
            for typ, e in ev["llama"].items():
                if typ == "F16":
                    continue
                f = lambda k, d: "n/a" if e.get(k) is None else f"{e[k]:.{d}f}"  # noqa: E731
                out.append(f"| llama.cpp | {typ} | {f('ppl', 3)} | {f('ppl_base', 3)} | {f('kl_mean', 5)} | "
                           f"{f('top1_agree_pct', 2)} |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--tables":
        print(tables(json.loads(Path(sys.argv[2]).read_text())))
    else:
        main()
