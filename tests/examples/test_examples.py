"""The examples (examples/generate, examples/chat: SmolLM2 compiled in through #[npu_model],
rk3588 / int8_hadamard) against `npu run`, which packs the same GGUF in memory at run time:
for the same model, scheme and prompt both give the same token ids, greedy and
seeded sampling alike. The chat example's second turn continues its KV cache; `npu run` gets
the whole conversation as ids, so the comparison also checks that continuing a session gives
what evaluating the history afresh gives.

Builds the examples workspace (its own Cargo workspace) into <target>/examples; the first
build packs SmolLM2 (~20 s) and compiles the generated tables.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NPU_CACHE", Path.home() / ".cache" / "npu-model"))
REQUIRE = os.environ.get("NPU_REQUIRE_MODELS") == "1"
MODEL = CACHE / "smollm2-135m-instruct-q4_1.gguf"
# What the examples declare (examples/*/src/main.rs); `npu run` must be given the same.
PACK = ["--target", "rk3588", "--quant", "int8_hadamard", "--ctx", "2048"]
MAX = "20"


def target_dir() -> Path:
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO,
                         check=True, capture_output=True, text=True).stdout
    return Path(json.loads(out)["target_directory"])


@pytest.fixture(scope="module")
def bins() -> dict[str, Path]:
    if not MODEL.exists():
        (pytest.fail if REQUIRE else pytest.skip)(f"SmolLM2: {MODEL} missing (scripts/fetch-models.sh smollm2)")
    root = target_dir()
    # The side workspaces' shared target directory (scripts/env.sh), where clippy has already
    # compiled the build scripts' npu-build.
    side = Path(os.environ.get("NPU_SIDE_TARGET_DIR", REPO / "target" / "side"))
    env = dict(os.environ, NPU_CACHE=str(CACHE), CARGO_TARGET_DIR=str(side))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path", str(REPO / "examples" / "Cargo.toml")],
                   env=env, check=True)
    if os.environ.get("NPU_ORACLE_BUILD") != "0":
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "npu-cli", "--bin", "npu"], cwd=REPO, check=True)
    rel = side / "release"
    return {"generate": rel / "generate", "chat": rel / "chat", "npu": root / "release" / "npu"}


def run(cmd, stdin: str | None = None) -> list[str]:
    p = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}"
    return p.stdout.splitlines()


def ids(line: str) -> list[int]:
    return [int(x) for x in line.split()]


def npu_run(bins, *args) -> list[list[int]]:
    out = run([bins["npu"], "run", MODEL, *PACK, "--max-tokens", MAX, "--print-ids", *args])
    assert len(out) == 2, out
    return [ids(line) for line in out]


@pytest.mark.parametrize("prompt", ["Once upon a time", "Der Fuchs 🦊 sprang über den Zaun, und dann"])
def test_generate_greedy_matches_npu_run(bins, prompt):
    want = npu_run(bins, "--prompt", prompt, "--greedy")
    got = [ids(line) for line in run([bins["generate"], "--prompt", prompt, "--greedy", "--print-ids", "--max-tokens", MAX])]
    assert got == want
    assert len(got[1]) == int(MAX), "greedy run ended early: the comparison would be weaker than it looks"


def test_generate_sampled_matches_npu_run(bins):
    knobs = ["--temp", "0.9", "--top-k", "40", "--top-p", "0.95", "--min-p", "0.02", "--repeat-penalty", "1.1", "--seed", "7"]
    want = npu_run(bins, "--prompt", "The whale", *knobs)
    got = [ids(line) for line in run([bins["generate"], "--prompt", "The whale", "--print-ids", "--max-tokens", MAX, *knobs])]
    assert got == want
    other = [ids(line) for line in run([bins["generate"], "--prompt", "The whale", "--print-ids", "--max-tokens", MAX,
                                        *knobs[:-1], "8"])]
    assert other[0] == want[0] and other[1] != want[1], "the seed should change a sampled continuation"


def test_generate_text_is_the_decoded_ids(bins):
    text = "\n".join(run([bins["generate"], "--prompt", "Once upon a time", "--greedy", "--max-tokens", MAX]))
    assert len(text.strip()) > 20


def test_chat_turns_match_npu_run(bins):
    system = "You are a helpful assistant."
    first, second = "What is the capital of France?", "And of Italy? Answer in one sentence."
    out = run([bins["chat"], "--system", system, "--greedy", "--print-ids", "--max-tokens", MAX], stdin=f"{first}\n{second}\n")
    assert len(out) == 4, out
    fed1, reply1, fed2, reply2 = map(ids, out)
    # Turn 1: the same ChatML text and tokens as `npu run --chat`.
    assert [fed1, reply1] == npu_run(bins, "--chat", "--system", system, "--prompt", first, "--greedy")
    # Turn 2 continued the cache; `npu run` evaluates the whole history from scratch.
    history = fed1 + reply1 + fed2
    want = npu_run(bins, "--prompt-ids", ",".join(map(str, history)), "--greedy")
    assert want == [history, reply2]


def test_bad_arguments_exit_with_usage(bins):
    p = subprocess.run([str(bins["generate"]), "--max-tokens", "lots", "--prompt", "x"], capture_output=True, text=True)
    assert p.returncode == 2 and "not a valid number" in p.stderr
    p = subprocess.run([str(bins["chat"]), "--frobnicate"], capture_output=True, text=True, input="")
    assert p.returncode == 2 and "unknown option" in p.stderr
