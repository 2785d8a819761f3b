// Reading and writing NumPy .npy files: the interchange format for arrays
// compared against numpy/PyTorch (test fixtures, reference dumps, exported
// weights, `kiln run`'s inputs and outputs).
//
// Supported: little-endian '<f4' '<f8' '<i4' '<i8' and '|b1', C order only.
// Reading accepts format versions 1.0, 2.0 and 3.0; writing produces the
// bytes numpy.save writes for the same array (version 1.0, header padded with
// spaces and a '\n' so the data starts at a multiple of 64 bytes). The
// elements go between the file and an Array of the file's dtype as bytes,
// never through a double: every i64 (INT64_MAX included) and every f32/f64
// bit pattern (NaN payloads, -0.0, denormals) round-trips exactly. A bool
// element is stored as 0 or 1 (numpy's own bytes); any other byte reads as 1.
// Every problem throws kiln::Error naming the path and what is wrong.
#pragma once

#include "runtime/array.h"

#include <string>

namespace kiln {

// Throws kiln::Error for anything but a regular file (a FIFO, a directory,
// a device) before opening it, so a FIFO cannot block the read. The Array's
// type is the file's dtype and shape (a 0-d array for shape ()).
Array read_npy(const std::string &path);

// Writes atomically: a temporary `path.tmp.<pid>` is written, flushed and
// renamed over `path`, so `path` is never seen half written. Throws for an
// undefined Array; nothing is written then.
void write_npy(const std::string &path, const Array &array);

} // namespace kiln
