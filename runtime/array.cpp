#include "runtime/array.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace kiln {

Array::Array(Type type) : type_(std::move(type)) {
  size_t n = std::max<size_t>(type_.bytes(), 1);
  // A buffer larger than the machine is refused by size, not by a failed
  // (or, under ASan, aborting) allocation.
  check_host_allocation(static_cast<int64_t>(n),
                        fmt::format("an array of {}", type_.str()));
  size_t padded = (n + 63) / 64 * 64;
  void *p = std::aligned_alloc(64, padded);
  if (!p)
    throw std::bad_alloc();
  std::memset(p, 0, padded);
  buf_ = std::shared_ptr<std::byte>(static_cast<std::byte *>(p),
                                    [](std::byte *q) { std::free(q); });
}

double Array::get(int64_t i) const {
  switch (type_.dtype) {
  case DType::f32:
    return as<float>()[i];
  case DType::f64:
    return as<double>()[i];
  case DType::i32:
    return as<int32_t>()[i];
  case DType::i64:
    return static_cast<double>(as<int64_t>()[i]);
  case DType::boolean:
    return as<uint8_t>()[i] ? 1.0 : 0.0;
  }
  return 0;
}

void Array::set(int64_t i, double v) {
  v = round_to(type_.dtype, v);
  switch (type_.dtype) {
  case DType::f32:
    as<float>()[i] = static_cast<float>(v);
    break;
  case DType::f64:
    as<double>()[i] = v;
    break;
  case DType::i32:
    as<int32_t>()[i] = saturate_to_i32(v);
    break;
  case DType::i64:
    as<int64_t>()[i] = saturate_to_i64(v);
    break;
  case DType::boolean:
    as<uint8_t>()[i] = v != 0;
    break;
  }
}

Array Array::clone() const {
  Array c(type_);
  if (bytes())
    std::memcpy(c.data(), data(), bytes());
  return c;
}

Array Array::from_host(const HostTensor &t) {
  Array a(t.type);
  if (t.type.dtype == DType::i64 && !t.i64.empty()) {
    for (int64_t i = 0; i < t.numel(); ++i)
      a.as<int64_t>()[i] = t.int_at(i); // exact beyond 2^53
    return a;
  }
  for (int64_t i = 0; i < t.numel(); ++i)
    a.set(i, t.data[i]);
  return a;
}

HostTensor Array::to_host() const {
  HostTensor t(type_);
  for (int64_t i = 0; i < numel(); ++i)
    t.data[i] = get(i);
  if (type_.dtype == DType::i64)
    t.i64.assign(as<int64_t>(), as<int64_t>() + numel());
  return t;
}

} // namespace kiln
