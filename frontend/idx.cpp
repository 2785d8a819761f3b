// IDX reader and writer on top of zlib's gz* functions, which read gzip and
// plain files alike. Every check names the path: a bad data file must say
// which file and what is wrong with it, never crash or load garbage.
#include "frontend/idx.h"

#include "ir/error.h"

#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

namespace kiln {

size_t idx_type_size(IdxType t) {
  switch (t) {
  case IdxType::u8:
  case IdxType::i8:
    return 1;
  case IdxType::i16:
    return 2;
  case IdxType::i32:
  case IdxType::f32:
    return 4;
  case IdxType::f64:
    return 8;
  }
  assert(false && "unknown IdxType");
  return 1;
}

int64_t IdxArray::numel() const {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}

namespace {

bool valid_type_code(uint8_t code) {
  return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C ||
         code == 0x0D || code == 0x0E;
}

// Owns a gzFile so that every error path closes it.
class GzFile {
public:
  GzFile(const std::string &path, const char *mode) : path_(path) {
    errno = 0;
    f_ = gzopen(path.c_str(), mode);
    if (!f_)
      fail("{}: cannot open: {}", path,
           errno ? std::strerror(errno) : "out of memory");
    // A larger buffer than zlib's 8 KiB default: data files are tens of MB.
    gzbuffer(f_, 1 << 17);
  }
  ~GzFile() {
    if (f_)
      gzclose(f_);
  }
  GzFile(const GzFile &) = delete;
  GzFile &operator=(const GzFile &) = delete;

  // Reads up to n bytes; returns fewer only at the end of the data. A corrupt
  // or cut-off gzip stream is an error, not a short read, so that callers can
  // tell "the file is damaged" from "the header lies about the size".
  size_t read(uint8_t *dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      unsigned chunk =
          static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
      int r = gzread(f_, dst + got, chunk);
      check_stream();
      if (r < 0)
        fail("{}: read error", path_);
      if (r == 0)
        break;
      got += static_cast<size_t>(r);
    }
    return got;
  }

  void write(const uint8_t *src, size_t n) {
    size_t done = 0;
    while (done < n) {
      unsigned chunk =
          static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      if (gzwrite(f_, src + done, chunk) != static_cast<int>(chunk))
        fail("{}: write failed: {}", path_, error_text());
      done += chunk;
    }
  }

  // Closes and reports a failure to flush (disk full, I/O error).
  void close() {
    int r = gzclose(f_);
    f_ = nullptr;
    if (r != Z_OK)
      fail("{}: closing failed (zlib error {})", path_, r);
  }

private:
  std::string error_text() {
    int code = Z_OK;
    const char *msg = gzerror(f_, &code);
    if (code == Z_ERRNO)
      return std::strerror(errno);
    return msg ? msg : "unknown error";
  }

  void check_stream() {
    int code = Z_OK;
    const char *msg = gzerror(f_, &code);
    if (code == Z_OK)
      return;
    if (code == Z_BUF_ERROR)
      fail("{}: corrupt gzip stream: truncated ({})", path_, msg);
    if (code == Z_DATA_ERROR)
      fail("{}: corrupt gzip stream: {}", path_, msg);
    if (code == Z_ERRNO)
      fail("{}: read error: {}", path_, std::strerror(errno));
    fail("{}: read error: {}", path_, msg);
  }

  std::string path_;
  gzFile f_ = nullptr;
};

uint32_t load_be32(const uint8_t *p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint64_t load_be(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i)
    v = (v << 8) | p[i];
  return v;
}

} // namespace

IdxArray read_idx(const std::string &path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status))
    fail("{}: no such file", path);
  if (std::filesystem::is_directory(status))
    fail("{}: is a directory, expected an IDX file", path);

  GzFile f(path, "rb");
  uint8_t magic[4];
  size_t got = f.read(magic, 4);
  if (got < 4)
    fail("{}: not an IDX file: {} bytes, shorter than the 4-byte magic", path,
         got);
  if (magic[0] != 0 || magic[1] != 0)
    fail("{}: not an IDX file: magic {:02x} {:02x} {:02x} {:02x}, expected 00 "
         "00 <type> <rank>",
         path, magic[0], magic[1], magic[2], magic[3]);
  if (!valid_type_code(magic[2]))
    fail("{}: unsupported IDX type code 0x{:02x}, expected one of 08 09 0b 0c "
         "0d 0e",
         path, magic[2]);
  if (magic[3] == 0)
    fail("{}: IDX rank is 0, expected at least one dimension", path);

  IdxArray a;
  a.type = static_cast<IdxType>(magic[2]);
  size_t rank = magic[3];
  std::vector<uint8_t> header(4 * rank);
  if (f.read(header.data(), header.size()) < header.size())
    fail("{}: truncated header: rank {} needs {} bytes of dimensions", path,
         rank, header.size());
  // Compute the payload size with an overflow check, so that a damaged header
  // is reported instead of attempting a huge allocation.
  uint64_t expected = idx_type_size(a.type);
  constexpr uint64_t kMaxBytes = uint64_t{1} << 40;
  for (size_t i = 0; i < rank; ++i) {
    uint32_t d = load_be32(&header[4 * i]);
    a.dims.push_back(d);
    expected =
        d == 0 ? 0 : (expected > kMaxBytes / d ? kMaxBytes + 1 : expected * d);
  }
  if (expected > kMaxBytes)
    fail("{}: dimensions [{}] describe more than 1 TiB of data", path,
         fmt::join(a.dims, ","));

  // Grow the buffer as data arrives rather than trusting the header with one
  // large allocation up front.
  constexpr size_t kChunk = size_t{1} << 24;
  size_t have = 0;
  while (have < expected) {
    size_t want = std::min<size_t>(expected - have, kChunk);
    a.data.resize(have + want);
    size_t r = f.read(a.data.data() + have, want);
    have += r;
    if (r < want)
      break;
  }
  a.data.resize(have);
  if (have < expected)
    fail("{}: truncated: dimensions [{}] need {} bytes of data, the file has "
         "{}",
         path, fmt::join(a.dims, ","), expected, have);

  uint8_t extra[4096];
  size_t trailing = 0;
  for (size_t r; (r = f.read(extra, sizeof extra)) > 0;)
    trailing += r;
  if (trailing)
    fail("{}: {} trailing bytes after the {} bytes that dimensions [{}] "
         "describe",
         path, trailing, expected, fmt::join(a.dims, ","));
  f.close();
  return a;
}

void write_idx(const std::string &path, const IdxArray &a, bool gzip) {
  if (a.dims.empty() || a.dims.size() > 255)
    fail("{}: cannot write IDX with rank {}, expected 1 to 255", path,
         a.dims.size());
  for (int64_t d : a.dims)
    if (d < 0 || d > std::numeric_limits<uint32_t>::max())
      fail("{}: cannot write IDX dimension {}, out of uint32 range", path, d);
  size_t expected = static_cast<size_t>(a.numel()) * idx_type_size(a.type);
  if (a.data.size() != expected)
    fail("{}: cannot write IDX: dimensions [{}] need {} bytes, data has {}",
         path, fmt::join(a.dims, ","), expected, a.data.size());

  std::vector<uint8_t> header = {0, 0, static_cast<uint8_t>(a.type),
                                 static_cast<uint8_t>(a.dims.size())};
  for (int64_t d : a.dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      header.push_back(static_cast<uint8_t>(d >> shift));
  // "T" asks zlib for a transparent (uncompressed) write: one code path.
  GzFile f(path, gzip ? "wb" : "wbT");
  f.write(header.data(), header.size());
  f.write(a.data.data(), a.data.size());
  f.close();
}

std::vector<float> idx_to_floats(const IdxArray &a) {
  size_t n = static_cast<size_t>(a.numel());
  size_t w = idx_type_size(a.type);
  assert(a.data.size() == n * w && "IdxArray data does not match dims");
  std::vector<float> out(n);
  const uint8_t *p = a.data.data();
  for (size_t i = 0; i < n; ++i, p += w) {
    uint64_t bits = load_be(p, w);
    switch (a.type) {
    case IdxType::u8:
      out[i] = static_cast<float>(p[0]);
      break;
    case IdxType::i8:
      out[i] = static_cast<float>(static_cast<int8_t>(p[0]));
      break;
    case IdxType::i16:
      out[i] = static_cast<float>(static_cast<int16_t>(bits));
      break;
    case IdxType::i32:
      out[i] = static_cast<float>(static_cast<int32_t>(bits));
      break;
    case IdxType::f32: {
      uint32_t b32 = static_cast<uint32_t>(bits);
      std::memcpy(&out[i], &b32, 4);
      break;
    }
    case IdxType::f64: {
      double d;
      std::memcpy(&d, &bits, 8);
      out[i] = static_cast<float>(d);
      break;
    }
    }
  }
  return out;
}

} // namespace kiln
