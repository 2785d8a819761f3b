// safetensors reader and writer. The reader trusts nothing in the file: it
// bounds the header length by the file size before allocating, parses the
// JSON with nlohmann::json (rejecting duplicate keys, which it would
// otherwise silently merge), checks every tensor's dtype, shape and offsets,
// and requires the tensors to tile the data section exactly, as the reference
// implementation does. Only then is the data read, straight into each
// tensor's buffer with pread.
#include "runtime/safetensors.h"

#include "runtime/atomic_file.h"

#include "ir/error.h"
#include "ir/escape.h"
#include "ir/types.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <string_view>

namespace kiln {
namespace {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              "safetensors: the byte copies below assume a little-endian host");

// The reference implementation refuses larger headers too.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::string_view kMetadataKey = "__metadata__";

struct DtypeInfo {
  std::string_view name;
  size_t size;
};
constexpr std::array<DtypeInfo, 6> kDtypes{
    {{"F64", 8}, {"I64", 8}, {"F32", 4}, {"I32", 4}, {"F16", 2}, {"BF16", 2}}};
constexpr std::string_view kSupported = "F32, F64, F16, BF16, I32, I64";

std::optional<size_t> element_size(std::string_view dtype) {
  for (const DtypeInfo &d : kDtypes)
    if (d.name == dtype)
      return d.size;
  return std::nullopt;
}

// Bytes of a tensor: product of dims times `elem`; nullopt on a negative dim
// or on overflow.
std::optional<uint64_t> checked_nbytes(const Shape &shape, size_t elem) {
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d < 0)
      return std::nullopt;
    uint64_t u = static_cast<uint64_t>(d);
    if (u != 0 && n > std::numeric_limits<uint64_t>::max() / u)
      return std::nullopt;
    n *= u;
  }
  return n;
}

// A JSON value as it can be quoted in a message: shortened, and escaped
// because the file's strings may hold control characters.
std::string excerpt(const json &v) {
  std::string s = v.dump();
  return escape_for_message(s.size() > 60 ? s.substr(0, 60) + "..." : s);
}

// Owns a file descriptor.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

void read_exact(const Fd &f, void *dst, size_t n, uint64_t offset,
                const std::string &path) {
  auto *p = static_cast<char *>(dst);
  while (n > 0) {
    ssize_t got = ::pread(f.fd, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      fail("{}: cannot read safetensors file: {}", path,
           got == 0 ? "file shrank while reading" : std::strerror(errno));
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

// Parses the header, refusing duplicate keys at any level: nlohmann::json
// would keep the last one, and a file that says two things is corrupt.
json parse_header(const std::string &text, const std::string &path) {
  // nlohmann::json stops at a NUL byte as if the input ended there, so
  // "{...}\0<anything>" would parse; JSON text never holds a raw NUL.
  if (size_t nul = text.find('\0'); nul != std::string::npos)
    fail("{}: bad safetensors header: NUL byte at byte offset {} (header "
         "byte {})",
         path, 8 + nul, nul);
  std::vector<std::set<std::string>> keys;
  json::parser_callback_t check = [&](int /*depth*/, json::parse_event_t event,
                                      json &parsed) {
    if (event == json::parse_event_t::object_start)
      keys.emplace_back();
    else if (event == json::parse_event_t::object_end)
      keys.pop_back();
    else if (event == json::parse_event_t::key &&
             !keys.back().insert(parsed.get<std::string>()).second)
      fail("{}: bad safetensors header: duplicate key {}", path,
           excerpt(parsed));
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::exception &e) {
    fail("{}: bad safetensors header: invalid JSON: {}", path,
         escape_for_message(e.what()));
  }
}

uint64_t get_unsigned(const json &v, const std::string &path,
                      const std::string &name, std::string_view field) {
  if (!v.is_number_unsigned() ||
      v.get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()})
    fail("{}: bad safetensors header: tensor '{}': {} holds {}, not a "
         "non-negative integer",
         path, escape_for_message(name), field, excerpt(v));
  return v.get<uint64_t>();
}

struct Entry {
  std::string name;
  SafeTensor tensor;
  uint64_t begin = 0, end = 0;
};

// One tensor's header entry, checked against itself and the data size.
Entry parse_entry(const std::string &path, const std::string &name,
                  const json &v, uint64_t data_len) {
  auto bad = [&](const std::string &what) {
    fail("{}: bad safetensors header: tensor '{}': {}", path,
         escape_for_message(name), what);
  };
  if (!v.is_object())
    bad(fmt::format("expected an object with dtype, shape and data_offsets, "
                    "got {}",
                    excerpt(v)));
  for (const auto &[field, _] : v.items())
    if (field != "dtype" && field != "shape" && field != "data_offsets")
      bad(fmt::format("unexpected field '{}'", escape_for_message(field)));
  if (!v.contains("dtype") || !v.contains("shape") ||
      !v.contains("data_offsets"))
    bad("needs dtype, shape and data_offsets");

  Entry e;
  e.name = name;
  const json &dtype = v["dtype"];
  if (!dtype.is_string())
    bad(fmt::format("dtype {} is not a string", excerpt(dtype)));
  e.tensor.dtype = dtype.get<std::string>();
  std::optional<size_t> elem = element_size(e.tensor.dtype);
  if (!elem)
    bad(fmt::format("unsupported dtype '{}' (supported: {})",
                    escape_for_message(e.tensor.dtype), kSupported));

  const json &shape = v["shape"];
  if (!shape.is_array())
    bad(fmt::format("shape {} is not a list", excerpt(shape)));
  for (const json &d : shape)
    e.tensor.shape.push_back(
        static_cast<int64_t>(get_unsigned(d, path, name, "shape")));

  const json &offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    bad(fmt::format("data_offsets {} is not a [begin, end] pair",
                    excerpt(offsets)));
  e.begin = get_unsigned(offsets[0], path, name, "data_offsets");
  e.end = get_unsigned(offsets[1], path, name, "data_offsets");

  std::optional<uint64_t> nbytes = checked_nbytes(e.tensor.shape, *elem);
  if (!nbytes)
    bad(fmt::format("shape {} is too large", shape_str(e.tensor.shape)));
  if (e.begin > e.end)
    bad(fmt::format("data_offsets [{}, {}] run backwards", e.begin, e.end));
  if (e.end - e.begin != *nbytes)
    bad(fmt::format("data_offsets [{}, {}] span {} bytes but {}{} needs {}",
                    e.begin, e.end, e.end - e.begin, e.tensor.dtype,
                    shape_str(e.tensor.shape), *nbytes));
  if (e.end > data_len)
    bad(fmt::format("data_offsets [{}, {}] reach past the end of the {}-byte "
                    "data section (is the file truncated?)",
                    e.begin, e.end, data_len));
  return e;
}

// IEEE binary16 to float, exactly (every half is a float).
float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) // inf or NaN (the payload kept)
    bits = sign | 0x7f800000 | (man << 13);
  else if (exp != 0) // normal: rebias 15 -> 127
    bits = sign | ((exp + 112) << 23) | (man << 13);
  else if (man == 0) // +-0
    bits = sign;
  else { // subnormal: man * 2^-24, a normal float (exact)
    float v = static_cast<float>(man) * 0x1p-24f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(bits);
}

template <typename T> void widen(const SafeTensor &t, T *out) {
  size_t n = t.bytes.size() / *element_size(t.dtype);
  const uint8_t *p = t.bytes.data();
  if (t.dtype == "F16" || t.dtype == "BF16") {
    bool bf = t.dtype == "BF16";
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = static_cast<T>(
          bf ? std::bit_cast<float>(static_cast<uint32_t>(h) << 16)
             : half_to_float(h));
    }
  } else if (t.dtype == "F32") {
    for (size_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      out[i] = static_cast<T>(v);
    }
  } else if (t.dtype == "F64") {
    for (size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      out[i] = static_cast<T>(v);
    }
  } else {
    fail("safetensors: tensor of dtype '{}' is not a floating-point tensor",
         escape_for_message(t.dtype));
  }
}

} // namespace

bool is_float_safetensor_dtype(std::string_view dtype) {
  return dtype == "F32" || dtype == "F64" || dtype == "F16" || dtype == "BF16";
}

void float_safetensor_elements(const SafeTensor &t, float *out) {
  widen(t, out);
}

void float_safetensor_elements(const SafeTensor &t, double *out) {
  widen(t, out);
}

void save_safetensors(const std::string &path,
                      const std::map<std::string, SafeTensor> &tensors,
                      const std::map<std::string, std::string> &metadata) {
  // Validate everything before touching the disk.
  struct Item {
    const std::string *name;
    const SafeTensor *tensor;
    size_t elem;
  };
  std::vector<Item> items;
  for (const auto &[name, t] : tensors) {
    if (name.empty())
      fail("{}: cannot save safetensors: a tensor has an empty name", path);
    if (name == kMetadataKey)
      fail("{}: cannot save safetensors: '{}' is reserved and cannot name a "
           "tensor",
           path, kMetadataKey);
    std::optional<size_t> elem = element_size(t.dtype);
    if (!elem)
      fail("{}: cannot save safetensors: tensor '{}' has unsupported dtype "
           "'{}' (supported: {})",
           path, name, t.dtype, kSupported);
    std::optional<uint64_t> nbytes = checked_nbytes(t.shape, *elem);
    if (!nbytes)
      fail("{}: cannot save safetensors: tensor '{}' has invalid shape {}",
           path, name, shape_str(t.shape));
    if (*nbytes != t.bytes.size())
      fail("{}: cannot save safetensors: tensor '{}' is {}{} ({} bytes) but "
           "holds {} bytes",
           path, name, t.dtype, shape_str(t.shape), *nbytes, t.bytes.size());
    items.push_back({&name, &t, *elem});
  }
  // 8-byte tensors first: with the header padded to 8 bytes, every tensor
  // then starts at a multiple of its element size.
  std::stable_sort(
      items.begin(), items.end(),
      [](const Item &a, const Item &b) { return a.elem > b.elem; });

  json header = json::object();
  uint64_t offset = 0;
  for (const Item &it : items) {
    uint64_t end = offset + it.tensor->bytes.size();
    header[*it.name] = {{"dtype", it.tensor->dtype},
                        {"shape", it.tensor->shape},
                        {"data_offsets", json::array({offset, end})}};
    offset = end;
  }
  if (!metadata.empty())
    header[std::string(kMetadataKey)] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception &) {
    fail("{}: cannot save safetensors: a tensor name or metadata string is "
         "not valid UTF-8",
         path);
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicFile out(path, "cannot save safetensors");
  std::array<uint8_t, 8> len{};
  for (size_t i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
  out.write(len.data(), len.size());
  out.write(text.data(), text.size());
  for (const Item &it : items)
    out.write(it.tensor->bytes.data(), it.tensor->bytes.size());
  out.commit();
}

SafeTensorsFile load_safetensors(const std::string &path) {
  Fd f;
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever
  // before fstat could refuse it. Regular files ignore the flag.
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (f.fd < 0)
    fail("{}: cannot open safetensors file: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode))
    fail("{}: cannot read safetensors file: not a regular file", path);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8)
    fail("{}: not a safetensors file: {} bytes is too short for the 8-byte "
         "header length",
         path, size);

  std::array<uint8_t, 8> len{};
  read_exact(f, len.data(), len.size(), 0, path);
  uint64_t n = 0;
  for (size_t i = 0; i < 8; ++i)
    n |= uint64_t{len[i]} << (8 * i);
  if (n > size - 8)
    fail("{}: corrupt safetensors file: header length {} is beyond the end of "
         "the file ({} bytes)",
         path, n, size);
  if (n > kMaxHeaderBytes)
    fail("{}: corrupt safetensors file: header length {} exceeds the limit "
         "of {} bytes",
         path, n, kMaxHeaderBytes);
  std::string text(n, '\0');
  read_exact(f, text.data(), text.size(), 8, path);
  json header = parse_header(text, path);
  if (!header.is_object())
    fail("{}: bad safetensors header: expected a JSON object, got {}", path,
         header.type_name());

  uint64_t data_start = 8 + n;
  uint64_t data_len = size - data_start;
  SafeTensorsFile out;
  std::vector<Entry> entries;
  for (const auto &[key, value] : header.items()) {
    if (key != kMetadataKey) {
      entries.push_back(parse_entry(path, key, value, data_len));
      continue;
    }
    if (!value.is_object())
      fail("{}: bad safetensors header: {} is not an object", path,
           kMetadataKey);
    for (const auto &[k, v] : value.items()) {
      if (!v.is_string())
        fail("{}: bad safetensors header: {} value '{}' is {}, not a string",
             path, kMetadataKey, escape_for_message(k), excerpt(v));
      out.metadata[k] = v.get<std::string>();
    }
  }

  // The tensors must tile [0, data_len) exactly.
  std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t at = 0;
  const std::string *prev = nullptr;
  for (const Entry &e : entries) {
    if (e.begin < at)
      fail("{}: corrupt safetensors file: tensors '{}' and '{}' overlap", path,
           escape_for_message(*prev), escape_for_message(e.name));
    if (e.begin > at)
      fail("{}: corrupt safetensors file: data bytes [{}, {}) before tensor "
           "'{}' belong to no tensor",
           path, at, e.begin, escape_for_message(e.name));
    at = e.end;
    prev = &e.name;
  }
  if (at != data_len)
    fail("{}: corrupt safetensors file: {} trailing bytes after the last "
         "tensor",
         path, data_len - at);

  for (Entry &e : entries) {
    e.tensor.bytes.resize(e.end - e.begin);
    read_exact(f, e.tensor.bytes.data(), e.tensor.bytes.size(),
               data_start + e.begin, path);
    out.tensors.emplace(std::move(e.name), std::move(e.tensor));
  }
  return out;
}

} // namespace kiln
