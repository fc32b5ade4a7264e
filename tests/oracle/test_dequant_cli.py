"""End to end through the project's own GGUF reader: `npu dequant FILE TENSOR -o -` compared bit
for bit (uint32 views) with gguf-py's `gguf.dequantize`, on

  * generated files of every supported type (random finite and extreme scales, odd shapes),
  * a few real tensors of both models: the smallest of each type, plus one tensor bigger than
    the CLI's 4 Mi-value chunk so chunked row reads are covered.

The bulk agreement tests (every tensor of both models) are in test_dequant_models.py; they
use gguf-py's reader for offsets so they hold even when the project's reader is broken.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import gguf

from dequant_oracle import SUPPORTED, cargo_release_exe, open_reader, oracle_dequantize
from test_dequant_generated import make_file
from test_dequant_models import MODELS, model_path


@pytest.fixture(scope="module")
def npu():
    return cargo_release_exe("npu-cli", "bin", "npu")


def check_tensor(npu, path, t) -> None:
    out = subprocess.run([str(npu), "dequant", str(path), t.name, "-o", "-"],
                         check=True, capture_output=True).stdout
    got = np.frombuffer(out, dtype="<f4")
    raw = np.asarray(t.data).view(np.uint8).reshape(-1, 1)
    row_bytes = raw.size // (int(t.n_elements) // int(t.shape[0]))
    want = oracle_dequantize(raw.reshape(-1, row_bytes), t.tensor_type)
    assert got.shape == want.shape, (t.name, got.shape, want.shape)
    bad = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
    assert bad.size == 0, (f"{path.name}:{t.name} ({t.tensor_type.name}): {bad.size} values differ, "
                           f"first at {bad[0]}: gguf-py {want[bad[0]]!r}, npu {got[bad[0]]!r}")


@pytest.mark.parametrize("case", ["random", "extreme"])
@pytest.mark.parametrize("qtype", SUPPORTED, ids=lambda t: t.name)
def test_generated_file_through_reader(tmp_path, npu, qtype, case):
    path = tmp_path / f"{qtype.name}-{case}.gguf"
    names = make_file(path, qtype, 7000 + int(qtype), case)
    reader = gguf.GGUFReader(path)
    assert [t.name for t in reader.tensors] == list(names)
    for t in reader.tensors:
        check_tensor(npu, path, t)


@pytest.mark.parametrize("name", list(MODELS))
def test_real_tensors_through_reader(npu, name):
    path = model_path(name)
    reader = open_reader(path)
    picks = {}
    for t in reader.tensors:
        best = picks.get(t.tensor_type)
        if best is None or t.n_elements < best.n_elements:
            picks[t.tensor_type] = t
    big = min((t for t in reader.tensors if t.n_elements > 4 << 20), key=lambda t: t.n_elements)
    chosen = list(picks.values()) + [big]
    for t in chosen:
        check_tensor(npu, path, t)
