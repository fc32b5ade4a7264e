"""Write an F16 copy of a GGUF: every tensor dequantized with gguf-py, 2-D tensors stored as
F16, 1-D tensors (norms, biases) kept F32 as llama.cpp's converter does; all metadata copied,
general.file_type set to MOSTLY_F16. Cached: an existing output is kept.

    python make_f16.py SRC.gguf DST.gguf
"""
import os
import sys

import gguf
import numpy as np


def make_f16(src: str, dst: str) -> str:
    if os.path.exists(dst):
        return dst
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    tmp = dst + ".tmp"
    w = gguf.GGUFWriter(tmp, arch)
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name in ("general.architecture", "general.file_type"):
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, f.contents(), f.types[0], sub_type=sub)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for t in r.tensors:
        v = gguf.dequantize(t.data, t.tensor_type).astype(np.float32)
        v = v.reshape([int(d) for d in reversed(t.shape)])
        w.add_tensor(t.name, v if len(t.shape) == 1 else v.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, dst)
    return dst


if __name__ == "__main__":
    make_f16(sys.argv[1], sys.argv[2])
