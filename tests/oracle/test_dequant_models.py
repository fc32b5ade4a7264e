"""Every tensor of both real models, dequantized by Rust and by gguf-py, compared bit for bit
(uint32 views). Tensors are streamed in row chunks of at most 8 Mi values, so memory stays
small; tensor offsets come from gguf-py's GGUFReader, so this does not depend on the project's
own reader (see test_dequant_cli.py for the end-to-end path through it).

Models come from scripts/fetch-models.sh into $NPU_CACHE; a missing model skips, unless
NPU_REQUIRE_MODELS=1 (as scripts/test.sh sets), where it fails.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import gguf

from dequant_oracle import build_dequant_raw, open_reader, run_jobs, tensor_jobs

CACHE = Path(os.environ.get("NPU_CACHE", Path.home() / ".cache" / "npu-model"))

MODELS = {
    # file name -> expected tensor count by type (docs/models.md), so a silently short read
    # or a different file cannot pass as "all tensors matched".
    "smollm2-135m-instruct-q4_1.gguf": {"Q4_1": 210, "Q8_0": 1, "F32": 61},
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf": {"Q5_0": 133, "F32": 121, "Q8_0": 13, "Q6_K": 12, "Q4_K": 12},
}


def model_path(name: str) -> Path:
    path = CACHE / name
    if not path.is_file():
        msg = f"{path} missing: run scripts/fetch-models.sh"
        if os.environ.get("NPU_REQUIRE_MODELS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def dequant_raw():
    return build_dequant_raw()


@pytest.mark.parametrize("name", list(MODELS))
def test_every_tensor_matches_gguf_py(dequant_raw, name):
    path = model_path(name)
    reader = open_reader(path)
    types = Counter(t.tensor_type.name for t in reader.tensors)
    assert dict(types) == MODELS[name]
    jobs = tensor_jobs(path, reader)
    stats = run_jobs(dequant_raw, jobs)
    assert stats["values"] == sum(int(t.n_elements) for t in reader.tensors)
    print(f"{name}: {len(reader.tensors)} tensors, {stats['jobs']} chunks, "
          f"{stats['values']} values, {stats['blocks']} blocks bit-exact")
