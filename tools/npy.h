// Reading and writing NumPy .npy files: the interchange format for arrays
// compared against numpy/PyTorch (test fixtures, reference dumps, exported
// weights).
//
// Supported: little-endian '<f4' '<f8' '<i4' '<i8' and '|b1', C order only.
// Reading accepts format versions 1.0, 2.0 and 3.0; writing produces the
// bytes numpy.save writes for the same array (version 1.0, header padded with
// spaces and a '\n' so the data starts at a multiple of 64 bytes). Every
// problem throws kiln::Error naming the path and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

// An array as numbers. `data` holds the elements in C (row-major) order as
// doubles, whatever the dtype: exact for f32, f64, i32 and bool, and for i64
// values within +-2^53. For "i64", `i64` holds the exact values: read_npy
// fills both, and write_npy writes `i64` when it is not empty (else `data`).
struct NpyArray {
  std::string dtype; // "f32", "f64", "i32", "i64", "bool"
  std::vector<int64_t> shape;
  std::vector<double> data;
  std::vector<int64_t> i64 = {};
};

// Throws kiln::Error for anything but a regular file (a FIFO, a directory,
// a device) before opening it, so a FIFO cannot block the read.
NpyArray read_npy(const std::string &path);

// Writes atomically: a temporary `path.tmp.<pid>` is written, flushed and
// renamed over `path`, so `path` is never seen half written. Throws when the
// array is inconsistent (data size != product of shape) or a value does not
// fit the dtype (1.5 or 2^40 as i32, 2 as bool); nothing is written then.
void write_npy(const std::string &path, const NpyArray &array);

} // namespace kiln
