// The safetensors checkpoint format (as written by Hugging Face's
// `safetensors`): an 8-byte little-endian header length N, N bytes of JSON
//   {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//    "__metadata__": {"step": "100"}}
// padded with spaces, then the tensors' bytes; offsets count from the end of
// the header. kiln writes and reads F32, F64, F16, BF16, I32 and I64 tensors
// (F16 and BF16 as raw bytes; float_safetensor_elements widens them).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// One tensor's raw little-endian bytes in C order; bytes.size() must be the
// product of shape times the dtype's size (a 0-d tensor holds one element).
struct SafeTensor {
  std::string dtype; // "F32", "F64", "F16", "BF16", "I32", "I64"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

struct SafeTensorsFile {
  std::map<std::string, SafeTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Writes atomically: the file is written to `path.tmp.<pid>` in the same
// folder, flushed to disk and renamed over `path`. On any failure `path` keeps
// its old contents, the temporary is removed and a kiln::Error says why.
// Tensor names must be non-empty UTF-8 and not "__metadata__". Tensors are
// laid out 8-byte ones first, so every tensor's data is aligned to its size.
void save_safetensors(const std::string &path,
                      const std::map<std::string, SafeTensor> &tensors,
                      const std::map<std::string, std::string> &metadata = {});

// Reads and validates the whole file: header length within the file, valid
// JSON, known dtypes, offsets that match dtype * shape and tile the data
// section exactly (no overlap, gap or trailing bytes). Any problem throws a
// kiln::Error naming the path.
SafeTensorsFile load_safetensors(const std::string &path);

// F32, F64, F16 or BF16.
bool is_float_safetensor_dtype(std::string_view dtype);

// The elements of a floating-point tensor (is_float_safetensor_dtype),
// converted to float or double: F16 and BF16 widen exactly, F64 to float
// rounds to nearest (as torch's Tensor.to does). `out` holds one element per
// shape entry product. Any other dtype is a kiln::Error.
void float_safetensor_elements(const SafeTensor &t, float *out);
void float_safetensor_elements(const SafeTensor &t, double *out);

} // namespace kiln
