// The .npy format (numpy/lib/format.py): the 6-byte magic "\x93NUMPY", a
// major and minor version byte, the header length (2 bytes little-endian in
// version 1.0, 4 bytes in 2.0 and 3.0), then the header: a Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded
// with spaces and a final '\n' so the data that follows starts at a multiple
// of 64 bytes. The reader parses that literal with a small recursive-descent
// parser that accepts what numpy writes (either quote, any key order, old
// '3L' integers) and nothing that would need Python to evaluate.
#include "runtime/npy.h"

#include "runtime/atomic_file.h"

#include "ir/error.h"
#include "ir/escape.h"
#include "ir/types.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

namespace kiln {
namespace {

static_assert(std::endian::native == std::endian::little,
              "npy: the byte copies below assume a little-endian host");

constexpr std::string_view kMagic{"\x93NUMPY", 6};
constexpr size_t kAlign = 64;
// numpy leaves room for the growth axis to reach this many digits, so that
// appending to a saved array can rewrite the header in place.
constexpr size_t kGrowthAxisMaxDigits = 21;

struct DtypeCode {
  DType type;
  std::string_view descr;
};
constexpr std::array<DtypeCode, 5> kDtypeCodes{{{DType::f32, "<f4"},
                                                {DType::f64, "<f8"},
                                                {DType::i32, "<i4"},
                                                {DType::i64, "<i8"},
                                                {DType::boolean, "|b1"}}};

std::string_view descr_of(DType t) {
  for (const DtypeCode &c : kDtypeCodes)
    if (c.type == t)
      return c.descr;
  assert(false && "every kiln dtype has an npy code");
  return "";
}

std::optional<DType> dtype_of_descr(std::string_view descr) {
  for (const DtypeCode &c : kDtypeCodes)
    if (c.descr == descr)
      return c.type;
  return std::nullopt;
}

// Product of the dims, or nullopt on a negative dim or int64 overflow.
std::optional<int64_t> checked_numel(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return std::nullopt;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      return std::nullopt;
    n *= d;
  }
  return n;
}

// The header text as it can be shown in a message: printable, not too long.
std::string quoted_for_message(std::string_view text) {
  constexpr size_t kMax = 120;
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n'))
    text.remove_suffix(1); // numpy's padding
  std::string out;
  for (char c : text.substr(0, kMax))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > kMax)
    out += "...";
  return out;
}

struct Header {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// Parses the header dict. Whitespace is Python's: spaces, tabs, newlines.
class HeaderParser {
public:
  HeaderParser(std::string_view text, const std::string &path)
      : text_(text), path_(path) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{');
    while (true) {
      skip_ws();
      if (eat('}'))
        break;
      std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (have_descr)
          error("duplicate key 'descr'");
        if (peek() == '[')
          fail("{}: unsupported npy dtype: structured arrays are not "
               "supported",
               path_);
        h.descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_fortran)
          error("duplicate key 'fortran_order'");
        h.fortran_order = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        if (have_shape)
          error("duplicate key 'shape'");
        h.shape = parse_shape();
        have_shape = true;
      } else {
        error(fmt::format("unexpected key '{}'", escape_for_message(key)));
      }
      skip_ws();
      if (eat(','))
        continue;
      expect('}');
      break;
    }
    skip_ws();
    if (pos_ != text_.size())
      error("text after the closing '}'");
    if (!have_descr || !have_fortran || !have_shape)
      error(fmt::format("missing key '{}'", !have_descr     ? "descr"
                                            : !have_fortran ? "fortran_order"
                                                            : "shape"));
    return h;
  }

private:
  [[noreturn]] void error(std::string_view what) const {
    fail("{}: malformed npy header: {} at offset {} in \"{}\"", path_, what,
         pos_, quoted_for_message(text_));
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_ws() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\n'))
      ++pos_;
  }

  bool eat(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!eat(c))
      error(fmt::format("expected '{}'", c));
  }

  bool eat_word(std::string_view w) {
    if (text_.substr(pos_, w.size()) != w)
      return false;
    pos_ += w.size();
    return true;
  }

  std::string parse_string() {
    char quote = peek();
    if (quote != '\'' && quote != '"')
      error("expected a quoted string");
    ++pos_;
    size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos)
      error("unterminated string");
    std::string_view s = text_.substr(pos_, end - pos_);
    if (s.find('\\') != std::string_view::npos)
      error("escapes in strings are not supported");
    pos_ = end + 1;
    return std::string(s);
  }

  bool parse_bool() {
    if (eat_word("True"))
      return true;
    if (eat_word("False"))
      return false;
    error("expected True or False");
  }

  // A tuple of non-negative ints: (), (3,), (2, 3) or (2, 3,).
  Shape parse_shape() {
    Shape shape;
    expect('(');
    skip_ws();
    if (eat(')'))
      return shape;
    while (true) {
      shape.push_back(parse_dim());
      skip_ws();
      if (eat(')')) {
        if (shape.size() == 1)
          error("a one-element shape needs a trailing comma, as in (3,)");
        return shape;
      }
      expect(',');
      skip_ws();
      if (eat(')'))
        return shape;
    }
  }

  int64_t parse_dim() {
    if (peek() == '-')
      error("negative dimension");
    if (peek() < '0' || peek() > '9')
      error("expected a dimension");
    int64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      int digit = peek() - '0';
      if (v > (std::numeric_limits<int64_t>::max() - digit) / 10)
        error("dimension too large");
      v = v * 10 + digit;
      ++pos_;
    }
    eat('L'); // Python 2's numpy wrote long integers as 3L.
    return v;
  }

  std::string_view text_;
  const std::string &path_;
  size_t pos_ = 0;
};

std::string read_whole_file(const std::string &path) {
  // open() of a FIFO blocks until a writer comes: check the kind first, and
  // open without blocking in case the path is swapped for one in between
  // (fstat below then refuses it).
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail("{}: cannot read npy file: not a regular file", path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    fail("{}: cannot open npy file: {}", path, std::strerror(errno));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: cannot read npy file: not a regular file", path);
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      int err = errno;
      ::close(fd);
      fail("{}: cannot read npy file: {}", path,
           got == 0 ? "file shrank while reading" : std::strerror(err));
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  return bytes;
}

std::string shape_repr(const Shape &shape) {
  if (shape.size() == 1)
    return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

// The header bytes numpy.save writes (format.py, _write_array_header).
std::string make_header(DType type, const Shape &shape) {
  std::string dict =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                  descr_of(type), shape_repr(shape));
  if (!shape.empty())
    dict.append(kGrowthAxisMaxDigits - fmt::format("{}", shape[0]).size(), ' ');
  size_t hlen = dict.size() + 1; // + '\n'
  // Version 1.0 stores the length in 2 bytes; numpy moves to 2.0 (4 bytes)
  // only when the header does not fit.
  bool v1 = true;
  size_t prefix = kMagic.size() + 2 + 2;
  size_t pad = kAlign - (prefix + hlen) % kAlign;
  if (hlen + pad > 0xffff) {
    v1 = false;
    prefix = kMagic.size() + 2 + 4;
    pad = kAlign - (prefix + hlen) % kAlign;
  }
  uint32_t total = static_cast<uint32_t>(hlen + pad);
  std::string out(kMagic);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  for (int i = 0; i < (v1 ? 2 : 4); ++i)
    out += static_cast<char>((total >> (8 * i)) & 0xff);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

} // namespace

Array read_npy(const std::string &path) {
  std::string file = read_whole_file(path);
  std::string_view buf(file);
  size_t m = std::min(buf.size(), kMagic.size());
  if (buf.empty() || buf.substr(0, m) != kMagic.substr(0, m))
    fail("{}: not an npy file (bad magic)", path);
  if (buf.size() < kMagic.size() + 2)
    fail("{}: truncated npy header: file is only {} bytes", path, buf.size());
  int major = static_cast<uint8_t>(buf[6]);
  int minor = static_cast<uint8_t>(buf[7]);
  if (minor != 0 || major < 1 || major > 3)
    fail("{}: unsupported npy format version {}.{} (supported: 1.0, 2.0, 3.0)",
         path, major, minor);
  size_t len_bytes = major == 1 ? 2 : 4;
  size_t header_start = kMagic.size() + 2 + len_bytes;
  if (buf.size() < header_start)
    fail("{}: truncated npy header: file is only {} bytes", path, buf.size());
  size_t hlen = 0;
  for (size_t i = 0; i < len_bytes; ++i)
    hlen |= size_t{static_cast<uint8_t>(buf[8 + i])} << (8 * i);
  if (hlen > buf.size() - header_start)
    fail("{}: truncated npy header: it should be {} bytes but the file has "
         "only {} after the length field",
         path, hlen, buf.size() - header_start);

  Header h = HeaderParser(buf.substr(header_start, hlen), path).parse();
  std::optional<DType> type = dtype_of_descr(h.descr);
  if (!type)
    fail("{}: unsupported npy dtype '{}' (supported: <f4, <f8, <i4, <i8, "
         "|b1)",
         path, escape_for_message(h.descr));
  if (h.fortran_order)
    fail("{}: unsupported npy array: fortran_order is True (only C order is "
         "supported; save numpy.ascontiguousarray(a))",
         path);
  std::optional<int64_t> n = checked_numel(h.shape);
  size_t elem = dtype_size(*type);
  size_t avail = buf.size() - header_start - hlen;
  if (!n ||
      static_cast<uint64_t>(*n) > std::numeric_limits<size_t>::max() / elem)
    fail("{}: npy shape {} is too large", path, shape_str(h.shape));
  size_t need = static_cast<size_t>(*n) * elem;
  if (avail < need)
    fail("{}: truncated npy data: {}{} needs {} bytes but the file has {}",
         path, dtype_name(*type), shape_str(h.shape), need, avail);
  if (avail > need)
    fail("{}: {} unexpected bytes after the npy data of {}{}", path,
         avail - need, dtype_name(*type), shape_str(h.shape));

  // The bytes as they are: no element passes through a double.
  Array out(Type{*type, h.shape});
  const char *src = buf.data() + header_start + hlen;
  if (need != 0)
    std::memcpy(out.data(), src, need);
  if (*type == DType::boolean) {
    // numpy reads any non-zero byte as True; kiln's kernels expect 0 or 1.
    auto *b = out.as<uint8_t>();
    for (size_t i = 0; i < need; ++i)
      b[i] = b[i] != 0;
  }
  return out;
}

void write_npy(const std::string &path, const Array &array) {
  if (!array.defined())
    fail("{}: cannot write npy: the array is undefined (default-constructed)",
         path);
  const Type &t = array.type();
  std::string bytes = make_header(t.dtype, t.shape);
  size_t start = bytes.size();
  bytes.resize(start + array.bytes());
  char *dst = bytes.data() + start;
  if (array.bytes() != 0)
    std::memcpy(dst, array.data(), array.bytes());
  if (t.dtype == DType::boolean)
    for (size_t i = 0; i < array.bytes(); ++i)
      dst[i] = dst[i] != 0; // numpy's True is the byte 1
  AtomicFile out(path, "cannot write npy file");
  out.write(bytes);
  out.commit();
}

} // namespace kiln
