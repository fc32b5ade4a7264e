"""Copy a GGUF with some integer metadata values replaced; tensors are copied unchanged.

    python gguf-set.py SRC.gguf DST.gguf KEY=INT [KEY=INT ...]

`{arch}` in a key stands for the file's general.architecture, e.g.
`{arch}.context_length=1024`. Each key must already exist with an integer type (its type is
kept). An existing DST is kept (cached); the copy is written to DST.tmp and renamed.
"""
import os
import sys

import gguf

INT_TYPES = {
    gguf.GGUFValueType.UINT8, gguf.GGUFValueType.INT8, gguf.GGUFValueType.UINT16,
    gguf.GGUFValueType.INT16, gguf.GGUFValueType.UINT32, gguf.GGUFValueType.INT32,
    gguf.GGUFValueType.UINT64, gguf.GGUFValueType.INT64,
}


def gguf_set(src: str, dst: str, sets: dict) -> str:
    if os.path.exists(dst):
        return dst
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    sets = {k.replace("{arch}", arch): v for k, v in sets.items()}
    for key in sets:
        f = r.fields.get(key)
        if f is None or f.types[0] not in INT_TYPES:
            sys.exit(f"gguf-set: {src}: no integer metadata key `{key}`")
    tmp = dst + ".tmp"
    w = gguf.GGUFWriter(tmp, arch)
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, sets.get(f.name, f.contents()), f.types[0], sub_type=sub)
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_shape=[int(d) for d in reversed(t.shape)],
                     raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, dst)
    return dst


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    sets = {}
    for kv in argv[2:]:
        key, _, value = kv.partition("=")
        sets[key] = int(value)
    gguf_set(argv[0], argv[1], sets)


if __name__ == "__main__":
    main(sys.argv[1:])
