"""Generated GGUF files of every supported type, dequantized by Rust and by gguf-py, compared
bit for bit (uint32 views: -0.0 and NaN payloads count).

Block bytes are random, with the scale fields then set to chosen f16 (or f32) values, so every
block is a valid block. Cases per type:
  * random: random quants, random finite scales (every finite f16 bit pattern is possible:
    zero, subnormal, normal, +-65504), in odd shapes (rows of 1, 3, 7 blocks, several rows);
  * extreme: every combination of special finite scales (0, -0, smallest and largest
    subnormal, smallest normal, 1, +-max) with quants all 0x00, all 0xFF and random;
  * nonfinite: +-inf and NaN scales (quiet, signaling, negative), which must propagate
    exactly as numpy's IEEE arithmetic does.
"""

from __future__ import annotations

import numpy as np
import pytest
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

from dequant_oracle import SUPPORTED, build_dequant_raw, run_jobs, tensor_jobs

# Byte offsets of each type's f16 scale fields inside a block (ggml-common.h layouts).
F16_SCALES = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_NL: [0], T.IQ4_XS: [0],
}
FLOAT_TYPES = [T.F32, T.F16, T.BF16]

FINITE_SPECIAL_F16 = [0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x0400, 0x3C00, 0x7BFF, 0xFBFF]
NONFINITE_F16 = [0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0x7FFF]
FINITE_SPECIAL_F32 = [0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000, 0x3F800000,
                      0x7F7FFFFF, 0xFF7FFFFF]
NONFINITE_F32 = [0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC00000, 0x7FFFFFFF]

SHAPES = [(1, 1), (1, 3), (1, 7), (3, 7), (5, 3), (16, 17)]  # (rows, blocks per row)


def finite_f16(rng, n):
    """Random f16 bit patterns with a finite value (any exponent but all-ones)."""
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    return np.where((h & 0x7C00) == 0x7C00, h & 0xBFFF, h).astype(np.uint16)


def finite_f32(rng, n):
    w = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)
    return np.where((w & 0x7F800000) == 0x7F800000, w & 0xBFFFFFFF, w).astype(np.uint32)


def set_scales(blocks: np.ndarray, qtype: T, values: np.ndarray) -> None:
    """Writes scale bit patterns into every scale field of each block (one value per block and
    field, cycling through `values`)."""
    n = blocks.shape[0]
    if qtype == T.Q8_K:
        blocks[:, 0:4] = np.resize(values.astype("<u4"), n).view(np.uint8).reshape(n, 4)
        return
    for k, off in enumerate(F16_SCALES[qtype]):
        v = np.roll(np.resize(values.astype("<u2"), n + k), -k)[:n]
        blocks[:, off:off + 2] = v.view(np.uint8).reshape(n, 2)


def random_blocks(rng, qtype: T, n: int) -> np.ndarray:
    size = GGML_QUANT_SIZES[qtype][1]
    blocks = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    if qtype == T.F32:
        return finite_f32(rng, n).astype("<u4").view(np.uint8).reshape(n, 4)
    if qtype in (T.F16, T.BF16):
        # Finite for both readings: F16 exponent bits 10..14, BF16 exponent bits 7..14.
        h = finite_f16(rng, n)
        if qtype == T.BF16:
            h = np.where((h & 0x7F80) == 0x7F80, h & 0xBFFF, h).astype(np.uint16)
        return h.astype("<u2").view(np.uint8).reshape(n, 2)
    set_scales(blocks, qtype, finite_f32(rng, n) if qtype == T.Q8_K else finite_f16(rng, n))
    return blocks


def special_blocks(rng, qtype: T, f16_values, f32_values) -> np.ndarray:
    """Every special scale value (and, for two-scale types, every ordered pair) with quants all
    0x00, all 0xFF and random."""
    size = GGML_QUANT_SIZES[qtype][1]
    if qtype in FLOAT_TYPES:
        vals = f32_values if qtype == T.F32 else f16_values
        if qtype == T.BF16:
            vals = sorted({v >> 16 for v in f32_values} | set(f16_values))
        dt = "<u4" if qtype == T.F32 else "<u2"
        return np.array(vals, dtype=dt).view(np.uint8).reshape(-1, size)
    rows = []
    vals = f32_values if qtype == T.Q8_K else f16_values
    nscales = 1 if qtype == T.Q8_K else len(F16_SCALES[qtype])
    combos = [(a,) for a in vals] if nscales == 1 else [(a, b) for a in vals for b in vals]
    for combo in combos:
        for fill in ("zero", "ones", "random"):
            blk = (np.zeros(size, np.uint8) if fill == "zero" else
                   np.full(size, 0xFF, np.uint8) if fill == "ones" else
                   rng.integers(0, 256, size=size, dtype=np.uint8))
            blk = blk.reshape(1, size)
            if qtype == T.Q8_K:
                blk[0, 0:4] = np.array([combo[0]], dtype="<u4").view(np.uint8)
            else:
                for off, v in zip(F16_SCALES[qtype], combo):
                    blk[0, off:off + 2] = np.array([v], dtype="<u2").view(np.uint8)
            rows.append(blk)
    return np.concatenate(rows, axis=0)


def write_gguf(path, tensors: dict[str, tuple[T, np.ndarray, int]]) -> None:
    """tensors: name -> (type, block bytes (n_blocks, block_bytes), blocks per row)."""
    w = gguf.GGUFWriter(str(path), "npu-oracle")
    for name, (qtype, blocks, per_row) in tensors.items():
        rows = blocks.shape[0] // per_row
        raw = np.ascontiguousarray(blocks[:rows * per_row]).reshape(rows, -1)
        w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_file(path, qtype: T, seed: int, case: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tensors = {}
    if case == "random":
        for rows, per_row in SHAPES:
            tensors[f"{qtype.name}.random.{rows}x{per_row}"] = (
                qtype, random_blocks(rng, qtype, rows * per_row), per_row)
        # A bigger one so every bit position of the quants is hit many times.
        n = 4096 if GGML_QUANT_SIZES[qtype][0] == 1 else 1024
        tensors[f"{qtype.name}.random.big"] = (qtype, random_blocks(rng, qtype, n * 8), n)
    else:
        f16v, f32v = ((FINITE_SPECIAL_F16, FINITE_SPECIAL_F32) if case == "extreme"
                      else (NONFINITE_F16, NONFINITE_F32))
        blocks = special_blocks(rng, qtype, f16v, f32v)
        # One row of all of them, and the same blocks as rows of one block.
        tensors[f"{qtype.name}.{case}.row"] = (qtype, blocks, blocks.shape[0])
        tensors[f"{qtype.name}.{case}.rows"] = (qtype, blocks, 1)
    write_gguf(path, tensors)
    return {k: v[1] for k, v in tensors.items()}


@pytest.fixture(scope="session")
def dequant_raw():
    return build_dequant_raw()


@pytest.mark.parametrize("case", ["random", "extreme", "nonfinite"])
@pytest.mark.parametrize("qtype", SUPPORTED, ids=lambda t: t.name)
def test_generated_blocks_match_gguf_py(tmp_path, dequant_raw, qtype, case):
    path = tmp_path / f"{qtype.name}-{case}.gguf"
    seed = 1000 * int(qtype) + ["random", "extreme", "nonfinite"].index(case)
    written = make_file(path, qtype, seed, case)
    jobs = tensor_jobs(path)
    assert len(jobs) == len(written)
    # The reader's offsets point at exactly the bytes this test wrote.
    data = path.read_bytes()
    for job, (name, blocks) in zip(jobs, written.items()):
        assert job.label.split(":")[1].startswith(name + "[")
        assert data[job.offset:job.offset + job.nbytes] == blocks[:job.nbytes // blocks.shape[1]].tobytes()
    stats = run_jobs(dequant_raw, jobs)
    assert stats["values"] == sum(j.count for j in jobs)
    if case == "nonfinite":
        assert stats["nan"] > 0  # NaN results were produced and compared bit for bit
