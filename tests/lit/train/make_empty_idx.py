"""Writes Fashion-MNIST IDX files holding 0 examples for one split.

usage: make_empty_idx.py DIR train|t10k
"""
import gzip
import os
import struct
import sys

folder, split = sys.argv[1], sys.argv[2]
os.makedirs(folder, exist_ok=True)
with gzip.open(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), "wb") as f:
    f.write(struct.pack(">IIII", 0x803, 0, 28, 28))
with gzip.open(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), "wb") as f:
    f.write(struct.pack(">II", 0x801, 0))
