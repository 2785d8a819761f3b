"""Writes a damaged copy of a kiln checkpoint (safetensors) for error tests.

usage: edit_checkpoint.py IN OUT [--meta KEY=VALUE]... [--drop NAME]...
                                 [--nan NAME]

--meta sets a metadata string, --drop removes a tensor (a NAME ending in `*`
removes every tensor with that prefix), --nan makes the first element of an
F32 tensor NaN. Standard library only: the format is an 8-byte little-endian
header length, a JSON header, then the tensor bytes.
"""
import argparse
import json
import math
import struct

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--meta", action="append", default=[])
p.add_argument("--drop", action="append", default=[])
p.add_argument("--nan")
a = p.parse_args()

raw = open(a.src, "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
meta = header.pop("__metadata__", {})
for kv in a.meta:
    k, v = kv.split("=", 1)
    meta[k] = v


def dropped(name):
    return any(name.startswith(d[:-1]) if d.endswith("*") else name == d
               for d in a.drop)


tensors = {}
for name, t in header.items():
    if dropped(name):
        continue
    b, e = t["data_offsets"]
    tensors[name] = (t["dtype"], t["shape"], bytearray(data[b:e]))
if a.nan:
    dtype, _, buf = tensors[a.nan]
    assert dtype == "F32", dtype
    buf[0:4] = struct.pack("<f", math.nan)

out_header, blobs, offset = {"__metadata__": meta}, [], 0
for name, (dtype, shape, buf) in sorted(tensors.items()):
    out_header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(buf)]}
    blobs.append(bytes(buf))
    offset += len(buf)
text = json.dumps(out_header).encode()
text += b" " * (-len(text) % 8)
with open(a.dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
