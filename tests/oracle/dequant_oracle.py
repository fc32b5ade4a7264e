"""Shared machinery for the dequantization oracle tests.

The Rust side is `npu-build/examples/dequant_raw.rs`: it reads jobs `TYPE N_ELEMENTS FILE OFFSET`
on stdin and writes every job's values as little-endian f32 to stdout, in order. The Python
side computes the same values with gguf-py's `gguf.dequantize` (numpy) from the same bytes and
compares them as uint32 bit patterns, so -0.0 vs 0.0 and NaN payloads count as differences.

Values stream through a pipe one job at a time and are compared directly (no files, no
digests: a mismatch reports the exact index, both values and the block's bytes).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

REPO = Path(__file__).resolve().parents[2]

# Every type npu_build::dequant supports (its `SUPPORTED` list).
SUPPORTED = [
    T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
    T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K, T.IQ4_NL, T.IQ4_XS,
]


@functools.cache
def cargo_target_dir() -> Path:
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"])
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


@functools.cache
def cargo_release_exe(package: str, kind: str, name: str) -> Path:
    """Builds (once per test session; a no-op after scripts/test.sh's build) and returns a
    release executable: kind is "example" or "bin". NPU_ORACLE_BUILD=0 uses what is built."""
    if os.environ.get("NPU_ORACLE_BUILD") != "0":
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", package, f"--{kind}", name],
                       cwd=REPO, check=True)
    exe = cargo_target_dir() / "release" / ("examples" if kind == "example" else "") / name
    assert exe.is_file(), exe
    return exe


def build_dequant_raw() -> Path:
    """The release `dequant_raw` example (npu-build/examples/dequant_raw.rs)."""
    return cargo_release_exe("npu-build", "example", "dequant_raw")


def oracle_dequantize(raw: np.ndarray, qtype: T) -> np.ndarray:
    """gguf-py's values for the uint8 block bytes `raw` (shape (rows, row_bytes)), as f32."""
    # inf/NaN scales are part of the test: their warnings are expected, not news.
    with np.errstate(all="ignore"):
        return _oracle_dequantize(raw, qtype)


def _oracle_dequantize(raw: np.ndarray, qtype: T) -> np.ndarray:
    if qtype == T.Q8_K:
        # gguf-py has no Q8_K dequantizer; this is ggml's definition (block_q8_K: f32 d,
        # i8 qs[256], i16 bsums[16]; y = d * q), in f32 numpy arithmetic.
        blocks = raw.reshape(-1, GGML_QUANT_SIZES[T.Q8_K][1])
        d = blocks[:, :4].copy().view("<f4").astype(np.float32)
        q = blocks[:, 4:260].view(np.int8).astype(np.float32)
        return (d * q).reshape(-1)
    return np.asarray(gguf.dequantize(raw, qtype), dtype=np.float32).reshape(-1)


@dataclass
class Job:
    """`count` values of `qtype` whose blocks start at byte `offset` of `path`."""
    label: str
    qtype: T
    count: int
    path: Path
    offset: int
    row_len: int  # elements per row, to give gguf-py the bytes in rows

    @property
    def nbytes(self) -> int:
        block, size = GGML_QUANT_SIZES[self.qtype]
        return self.count // block * size

    def line(self) -> str:
        return f"{self.qtype.name} {self.count} {self.path} {self.offset}\n"


def first_mismatch(job: Job, raw: np.ndarray, want: np.ndarray, got: np.ndarray) -> str:
    bad = np.flatnonzero(want.view(np.uint32) != got.view(np.uint32))
    i = int(bad[0])
    block, size = GGML_QUANT_SIZES[job.qtype]
    b = i // block
    blk = raw.reshape(-1)[b * size:(b + 1) * size].tobytes().hex()
    return (
        f"{job.label}: {len(bad)} of {job.count} values differ; first at index {i} "
        f"(block {b}): gguf-py {want[i]!r} ({int(want.view(np.uint32)[i]):#010x}), "
        f"rust {got[i]!r} ({int(got.view(np.uint32)[i]):#010x}); block bytes {blk}"
    )


def run_jobs(exe: Path, jobs: list[Job]) -> dict:
    """Runs every job through Rust and gguf-py; returns counts, raises on any difference."""
    proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    # The tool reads all of stdin before writing, but write from a thread anyway so a long job
    # list can never deadlock against a full stdout pipe.
    feeder = threading.Thread(target=lambda: (proc.stdin.write("".join(j.line() for j in jobs).encode()),
                                              proc.stdin.close()))
    feeder.start()
    stderr_chunks: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()))
    drain.start()
    failures: list[str] = []
    stats = {"jobs": 0, "values": 0, "blocks": 0, "nan": 0}
    maps: dict[Path, np.memmap] = {}
    try:
        for job in jobs:
            data = proc.stdout.read(job.count * 4)
            if len(data) != job.count * 4:
                proc.wait()
                drain.join()
                raise AssertionError(f"{job.label}: rust wrote {len(data)} of {job.count * 4} bytes; "
                                     f"stderr: {b''.join(stderr_chunks).decode(errors='replace')}")
            got = np.frombuffer(data, dtype="<f4")
            mm = maps.get(job.path)
            if mm is None:
                mm = maps[job.path] = np.memmap(job.path, dtype=np.uint8, mode="r")
            raw = np.asarray(mm[job.offset:job.offset + job.nbytes])
            row_bytes = job.nbytes * job.row_len // job.count
            want = oracle_dequantize(raw.reshape(-1, row_bytes), job.qtype)
            assert want.shape == got.shape, (job.label, want.shape, got.shape)
            if not np.array_equal(want.view(np.uint32), got.view(np.uint32)):
                failures.append(first_mismatch(job, raw, want, got))
            stats["jobs"] += 1
            stats["values"] += job.count
            stats["blocks"] += job.count // GGML_QUANT_SIZES[job.qtype][0]
            stats["nan"] += int(np.isnan(want).sum())
    finally:
        feeder.join()
        rest = proc.stdout.read()
        rc = proc.wait()
        drain.join()
    assert rc == 0, b"".join(stderr_chunks).decode(errors="replace")
    assert rest == b"", f"rust wrote {len(rest)} unexpected trailing bytes"
    assert not failures, "\n".join(failures[:20])
    return stats


@functools.lru_cache(maxsize=2)
def open_reader(path: Path) -> gguf.GGUFReader:
    """gguf-py's reader of a real model, shared across tests: parsing a 150k-token vocabulary
    takes seconds."""
    return gguf.GGUFReader(path)


def tensor_jobs(path: Path, reader: gguf.GGUFReader | None = None,
                max_chunk_values: int = 8 << 20) -> list[Job]:
    """One job per tensor of a GGUF file (per row chunk for big tensors), via gguf-py's reader."""
    reader = reader or gguf.GGUFReader(path)
    jobs = []
    for t in reader.tensors:
        row_len = int(t.shape[0])
        rows = t.n_elements // row_len
        block, size = GGML_QUANT_SIZES[t.tensor_type]
        row_bytes = row_len // block * size
        step = max(1, max_chunk_values // row_len)
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            jobs.append(Job(f"{path.name}:{t.name}[rows {r0}..{r1}] ({t.tensor_type.name})",
                            t.tensor_type, (r1 - r0) * row_len, Path(path),
                            t.data_offset + r0 * row_bytes, row_len))
    return jobs
