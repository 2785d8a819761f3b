// IDX reader and writer. The reader inflates gzip itself (see InputFile);
// the writer uses zlib's gz* functions. Every check names the path: a bad data
// file must say which file and what is wrong with it, never crash or load
// garbage.
#include "frontend/idx.h"

#include "ir/error.h"

#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

// Reads an IDX file, plain or gzip. zlib's gz* functions are not used for
// reading because they treat input that ends inside the gzip trailer (or
// right after the deflate data) as a normal end of file: a download cut short
// by a few bytes would load without complaint. This reader inflates the raw
// deflate data itself and checks every member's CRC32 and ISIZE trailer.
class InputFile {
public:
  explicit InputFile(const std::string &path) : path_(path) {
    // A throwing constructor runs no destructor: release what it got here.
    try {
      open_and_detect();
    } catch (...) {
      release();
      throw;
    }
  }
  ~InputFile() { release(); }
  InputFile(const InputFile &) = delete;
  InputFile &operator=(const InputFile &) = delete;

  // Reads up to n bytes; returns fewer only at the end of the data. A corrupt
  // or cut-off gzip stream is an error, not a short read, so that callers can
  // tell "the file is damaged" from "the header lies about the size".
  size_t read(uint8_t *dst, size_t n) {
    if (!gzip_) {
      size_t got = 0;
      while (got < n && fill()) {
        size_t k = std::min(n - got, len_ - pos_);
        std::memcpy(dst + got, buf_.data() + pos_, k);
        pos_ += k;
        got += k;
      }
      return got;
    }
    size_t got = 0;
    while (got < n && !done_) {
      if (!fill())
        fail("{}: corrupt gzip stream: truncated: the file ends inside the "
             "compressed data, after {} bytes, with no CRC32/ISIZE trailer",
             path_, offset());
      z_.next_in = buf_.data() + pos_;
      z_.avail_in = static_cast<uInt>(len_ - pos_);
      z_.next_out = dst + got;
      z_.avail_out = static_cast<uInt>(std::min<size_t>(n - got, 1u << 30));
      int r = inflate(&z_, Z_NO_FLUSH);
      size_t produced = static_cast<size_t>(z_.next_out - (dst + got));
      pos_ = static_cast<size_t>(z_.next_in - buf_.data());
      crc_ = crc32(crc_, dst + got, static_cast<uInt>(produced));
      isize_ += produced;
      got += produced;
      if (r == Z_STREAM_END)
        finish_member();
      else if (r == Z_DATA_ERROR)
        fail("{}: corrupt gzip stream: {} (near byte {})", path_,
             z_.msg ? z_.msg : "invalid deflate data", offset());
      else if (r == Z_MEM_ERROR)
        fail("{}: cannot read: out of memory for zlib", path_);
      else if (r != Z_OK && r != Z_BUF_ERROR)
        fail("{}: corrupt gzip stream: zlib error {} (near byte {})", path_, r,
             offset());
    }
    return got;
  }

private:
  void open_and_detect() {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer forever, before fstat could say it is not a regular file.
    // Regular files ignore the flag.
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) {
      if (errno == ENOENT)
        fail("{}: no such file", path_);
      fail("{}: cannot open: {}", path_, std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0)
      fail("{}: cannot open: {}", path_, std::strerror(errno));
    if (S_ISDIR(st.st_mode))
      fail("{}: is a directory, expected an IDX file", path_);
    if (!S_ISREG(st.st_mode))
      fail("{}: not a regular file ({}), expected an IDX file", path_,
           S_ISFIFO(st.st_mode)   ? "a FIFO"
           : S_ISCHR(st.st_mode)  ? "a character device"
           : S_ISBLK(st.st_mode)  ? "a block device"
           : S_ISSOCK(st.st_mode) ? "a socket"
                                  : "not a file");
    buf_.resize(1 << 17);
    // Two bytes decide the format: an IDX file starts 00 00, gzip 1f 8b.
    if (peek(0) == 0x1F && peek(1) == 0x8B) {
      gzip_ = true;
      if (inflateInit2(&z_, -MAX_WBITS) != Z_OK)
        fail("{}: cannot read: out of memory for zlib", path_);
      z_ready_ = true;
      start_member();
    }
  }

  void release() {
    if (z_ready_)
      inflateEnd(&z_);
    z_ready_ = false;
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

  // File offset of the next unread byte, for messages.
  uint64_t offset() const { return consumed_ + pos_; }

  // Makes at least one unread byte available; false at the end of the file.
  bool fill() {
    if (pos_ < len_)
      return true;
    consumed_ += len_;
    pos_ = len_ = 0;
    for (;;) {
      ssize_t r = ::read(fd_, buf_.data(), buf_.size());
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        fail("{}: read error: {}", path_, std::strerror(errno));
      len_ = static_cast<size_t>(r);
      return r > 0;
    }
  }

  // The byte `ahead` positions past the next unread one (0 or 1), or -1 at
  // the end of the file. Used only with a buffer that can hold both bytes.
  int peek(size_t ahead) {
    if (!fill())
      return -1;
    if (pos_ + ahead >= len_) {
      // Move the unread tail to the front and top the buffer up.
      std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
      consumed_ += pos_;
      len_ -= pos_;
      pos_ = 0;
      while (len_ <= ahead) {
        ssize_t r = ::read(fd_, buf_.data() + len_, buf_.size() - len_);
        if (r < 0 && errno == EINTR)
          continue;
        if (r < 0)
          fail("{}: read error: {}", path_, std::strerror(errno));
        if (r == 0)
          return -1;
        len_ += static_cast<size_t>(r);
      }
    }
    return buf_[pos_ + ahead];
  }

  uint8_t header_byte(const char *where) {
    int c = peek(0);
    if (c < 0)
      fail("{}: corrupt gzip stream: truncated: the file ends inside the gzip "
           "header ({}), after {} bytes",
           path_, where, offset());
    ++pos_;
    return static_cast<uint8_t>(c);
  }

  // Parses a gzip member header (RFC 1952 section 2.3) and resets inflate.
  void start_member() {
    uint64_t at = offset();
    if (header_byte("magic") != 0x1F || header_byte("magic") != 0x8B)
      fail("{}: corrupt gzip stream: bad magic at byte {}", path_, at);
    uint8_t method = header_byte("method");
    if (method != 8)
      fail("{}: corrupt gzip stream: unknown compression method {} at byte {}",
           path_, method, at + 2);
    uint8_t flags = header_byte("flags");
    if (flags & 0xE0)
      fail("{}: corrupt gzip stream: reserved header flags 0x{:02x} set at "
           "byte {}",
           path_, flags, at + 3);
    for (int i = 0; i < 6; ++i) // mtime, extra flags, OS
      header_byte("fixed fields");
    if (flags & 0x04) { // FEXTRA
      size_t xlen = header_byte("extra field");
      xlen |= size_t{header_byte("extra field")} << 8;
      for (size_t i = 0; i < xlen; ++i)
        header_byte("extra field");
    }
    if (flags & 0x08) // FNAME, zero-terminated
      while (header_byte("file name") != 0) {
      }
    if (flags & 0x10) // FCOMMENT, zero-terminated
      while (header_byte("comment") != 0) {
      }
    if (flags & 0x02) { // FHCRC
      header_byte("header CRC");
      header_byte("header CRC");
    }
    if (inflateReset(&z_) != Z_OK)
      fail("{}: cannot read: zlib reset failed", path_);
    crc_ = crc32(0, nullptr, 0);
    isize_ = 0;
  }

  // After the deflate data: checks the CRC32 and ISIZE trailer, then starts
  // the next member (concatenated gzip files are one valid stream) or ends.
  void finish_member() {
    uint8_t t[8];
    for (int i = 0; i < 8; ++i) {
      int c = peek(0);
      if (c < 0)
        fail("{}: corrupt gzip stream: truncated: the CRC32/ISIZE trailer has "
             "{} of its 8 bytes",
             path_, i);
      t[i] = static_cast<uint8_t>(c);
      ++pos_;
    }
    uint32_t want_crc = uint32_t{t[0]} | (uint32_t{t[1]} << 8) |
                        (uint32_t{t[2]} << 16) | (uint32_t{t[3]} << 24);
    uint32_t want_size = uint32_t{t[4]} | (uint32_t{t[5]} << 8) |
                         (uint32_t{t[6]} << 16) | (uint32_t{t[7]} << 24);
    if (want_crc != crc_)
      fail("{}: corrupt gzip stream: CRC32 mismatch: the trailer says "
           "{:08x}, the data gives {:08x}",
           path_, want_crc, static_cast<uint32_t>(crc_));
    if (want_size != static_cast<uint32_t>(isize_))
      fail("{}: corrupt gzip stream: length mismatch: the trailer says {} "
           "bytes (mod 2^32), the data has {}",
           path_, want_size, isize_);
    int next = peek(0);
    if (next < 0) {
      done_ = true;
      return;
    }
    if (next != 0x1F || peek(1) != 0x8B)
      fail("{}: corrupt gzip stream: unexpected byte 0x{:02x} at byte {} "
           "after the end of the gzip data",
           path_, next, offset());
    start_member();
  }

  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0, len_ = 0;
  uint64_t consumed_ = 0; // file bytes before buf_[0]
  bool gzip_ = false, z_ready_ = false, done_ = false;
  z_stream z_{};
  uLong crc_ = 0;
  uint64_t isize_ = 0;
};

// Owns a gzFile for writing, so that every error path closes it.
class GzWriter {
public:
  GzWriter(const std::string &path, const char *mode) : path_(path) {
    errno = 0;
    f_ = gzopen(path.c_str(), mode);
    if (!f_)
      fail("{}: cannot open: {}", path,
           errno ? std::strerror(errno) : "out of memory");
    gzbuffer(f_, 1 << 17);
  }
  ~GzWriter() {
    if (f_)
      gzclose(f_);
  }
  GzWriter(const GzWriter &) = delete;
  GzWriter &operator=(const GzWriter &) = delete;

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
  InputFile f(path);
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
  GzWriter f(path, gzip ? "wb" : "wbT");
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
