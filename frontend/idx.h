// IDX files: the MNIST container format. A file is a 4-byte magic
// (0x00 0x00 <type code> <rank>), then `rank` big-endian uint32 dimensions,
// then the elements in row-major order, big-endian. Files may be gzip
// compressed; the reader accepts both forms and checks the gzip CRC32/ISIZE
// trailer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

// The element type codes the format defines.
enum class IdxType : uint8_t {
  u8 = 0x08,
  i8 = 0x09,
  i16 = 0x0B,
  i32 = 0x0C,
  f32 = 0x0D,
  f64 = 0x0E,
};

// Size in bytes of one element of that type.
size_t idx_type_size(IdxType t);

// The decoded contents of one IDX file. `data` holds the payload exactly as
// stored (big-endian for multi-byte types); use idx_to_floats to decode.
struct IdxArray {
  IdxType type = IdxType::u8;
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;

  int64_t numel() const;
};

// Reads `path`, gzip-compressed or plain. Throws kiln::Error naming the path
// for a missing file, a directory, FIFO or other non-regular file (without
// blocking on a FIFO), a corrupt or truncated gzip stream (bad deflate data,
// a missing or wrong CRC32/ISIZE trailer), a bad magic, an unknown type
// code, a payload shorter than the dimensions say (truncated) or longer
// (trailing bytes).
IdxArray read_idx(const std::string &path);

// Writes `a` to `path`, gzip-compressed when `gzip` is true. Throws
// kiln::Error when the data size does not match the dimensions or the file
// cannot be written.
void write_idx(const std::string &path, const IdxArray &a, bool gzip);

// Decodes every element to float, converting from big-endian.
std::vector<float> idx_to_floats(const IdxArray &a);

} // namespace kiln
