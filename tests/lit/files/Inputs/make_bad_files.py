"""Writes the bad input files of tests/lit/files into DIR (python3, no numpy).

One folder per file kind, each file damaged one way: corrupt (garbage),
short (cut off), huge (a header that claims more than it could hold), a
FIFO, and bytes that must not reach a message raw. Fashion-MNIST folders
hold a small valid data set with one file replaced by a bad one.
"""
import gzip
import os
import struct
import sys
import zlib

out = sys.argv[1]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def fifo(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path)


# --- .kir -----------------------------------------------------------------
GOOD_KIR = "graph @g(%x: f32[3]) {\n  %0 = add(%x, %x) : f32[3]\n  return %0\n}\n"
write(f"{out}/kir/good.kir", GOOD_KIR.encode())
write(f"{out}/kir/garbage.kir", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
write(f"{out}/kir/short.kir", GOOD_KIR.encode()[:40])
write(f"{out}/kir/huge.kir",
      b"graph @g(%x: f32[99999999999999999999]) {\n  return %x\n}\n")
# Valid UTF-8 that rewrites the terminal: an escape sequence is refused by
# the lexer, a right-to-left override inside a string reaches a message.
write(f"{out}/kir/rtl.kir",
      "graph @g(%x: f32[3]) \"\u202eevil\" {\n  return %x\n}\n".encode())
write(f"{out}/kir/latin1.kir", b"graph @g(%x: f32[3]) {\n  // caf\xe9\n}\n")
fifo(f"{out}/kir/fifo.kir")


# --- .npy -----------------------------------------------------------------
def npy(header, data=b""):
    h = header.encode("latin-1") if isinstance(header, str) else header
    h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


write(f"{out}/npy/good.npy",
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
          struct.pack("<3f", 1, 2, 3)))
write(f"{out}/npy/garbage.npy", b"PK\x03\x04 this is a zip file \xff\x00")
write(f"{out}/npy/short.npy",
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
          struct.pack("<2f", 1, 2)))
write(f"{out}/npy/huge.npy",
      npy("{'descr': '<f4', 'fortran_order': False, "
          "'shape': (4611686018427387904, 4), }"))
write(f"{out}/npy/descr.npy",
      npy(b"{'descr': '<f\xe9\x1b[31m', 'fortran_order': False, 'shape': (3,), }",
          struct.pack("<3f", 1, 2, 3)))
fifo(f"{out}/npy/fifo.npy")


# --- IDX and gzip (Fashion-MNIST folders) ---------------------------------
def idx_u8(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(
        struct.pack(">I", d) for d in dims) + data


N_TRAIN, N_TEST = 128, 32
images = {n: idx_u8([n, 28, 28], bytes((i * 7) % 256 for i in range(n * 784)))
          for n in (N_TRAIN, N_TEST)}
labels = {n: idx_u8([n], bytes(i % 10 for i in range(n)))
          for n in (N_TRAIN, N_TEST)}
TRAIN_IMAGES = "train-images-idx3-ubyte"


def data_dir(name, train_images=None, gz_name=True):
    """A data set folder; `train_images` replaces the training images."""
    d = f"{out}/{name}"
    for split, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        write(f"{d}/{split}-labels-idx1-ubyte.gz", gzip.compress(labels[n]))
        if split == "t10k" or train_images is None:
            write(f"{d}/{split}-images-idx3-ubyte.gz", gzip.compress(images[n]))
    if train_images is not None:
        path = f"{d}/{TRAIN_IMAGES}" + (".gz" if gz_name else "")
        if train_images == "fifo":
            fifo(path)
        else:
            write(path, train_images)
    return d


data_dir("data-good")
good_gz = gzip.compress(images[N_TRAIN])
# Plain IDX files (no .gz): the reader takes the file without the suffix.
data_dir("idx-garbage", b"\x7fELF\x02\x01\x01\x00garbage", gz_name=False)
data_dir("idx-short", images[N_TRAIN][:-100], gz_name=False)
data_dir("idx-huge", idx_u8([4294967295, 28, 28], b"\x00" * 64), gz_name=False)
data_dir("idx-fifo", "fifo", gz_name=False)
# gzip-compressed ones.
data_dir("gz-fifo", "fifo")
data_dir("gz-cut1", good_gz[:-1])
data_dir("gz-cut4", good_gz[:-4])
data_dir("gz-cut8", good_gz[:-8])
crc = bytearray(good_gz)
crc[-7] ^= 0x01
data_dir("gz-crc", bytes(crc))
body = bytearray(good_gz)
for i in range(20, 40):
    body[i] ^= 0x5A
data_dir("gz-body", bytes(body))
data_dir("gz-huge", gzip.compress(idx_u8([4294967295, 28, 28], b"\x00" * 64)))
data_dir("gz-short", gzip.compress(images[N_TRAIN][:-100]))


# --- safetensors ----------------------------------------------------------
def safetensors(header, data=b""):
    return struct.pack("<Q", len(header)) + header + data


W = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
write(f"{out}/st/garbage.safetensors", b"GGUF\x03\x00\x00\x00\xff\xfe garbage")
write(f"{out}/st/short.safetensors", safetensors(W, b"\x00" * 8)[:40])
write(f"{out}/st/huge.safetensors", struct.pack("<Q", 1 << 62) + b"{}")
write(f"{out}/st/nul.safetensors", safetensors(W + b"\x00" * 6, b"\x00" * 8))
write(f"{out}/st/name.safetensors",
      safetensors(b'{"w\xff\x1b[2J": {"dtype": "F32", "shape": [2], '
                  b'"data_offsets": [0, 8]}}', b"\x00" * 8))
write(f"{out}/st/dtype.safetensors",
      safetensors(b'{"w": {"dtype": "F\\u00e9\\u001b", "shape": [2], '
                  b'"data_offsets": [0, 8]}}', b"\x00" * 8))
write(f"{out}/st/huge-shape.safetensors",
      safetensors(b'{"w": {"dtype": "F32", "shape": [4611686018427387904, 4], '
                  b'"data_offsets": [0, 8]}}', b"\x00" * 8))
fifo(f"{out}/st/fifo.safetensors")
