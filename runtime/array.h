// Array: a typed, contiguous, 64-byte-aligned host array. Parameters,
// optimizer state, batches and step results live in Arrays. Copies share
// storage (like a torch.Tensor handle); clone() copies the data.
#pragma once

#include "ir/host_tensor.h"
#include "ir/types.h"

#include <cassert>
#include <cstddef>
#include <memory>

namespace kiln {

class Array {
public:
  Array() = default;
  explicit Array(Type type); // zero-filled

  const Type &type() const { return type_; }
  int64_t numel() const { return type_.numel(); }
  size_t bytes() const { return type_.bytes(); }
  void *data() { return buf_.get(); }
  const void *data() const { return buf_.get(); }
  bool defined() const { return buf_ != nullptr; }

  template <typename T> T *as() {
    assert(sizeof(T) == dtype_size(type_.dtype) && "element size mismatch");
    return static_cast<T *>(data());
  }
  template <typename T> const T *as() const {
    assert(sizeof(T) == dtype_size(type_.dtype) && "element size mismatch");
    return static_cast<const T *>(data());
  }

  double get(int64_t i) const;   // element i as a double
  void set(int64_t i, double v); // stores v rounded to the dtype
  Array clone() const;
  bool shares_storage(const Array &o) const { return buf_ == o.buf_; }

  static Array from_host(const HostTensor &t);
  HostTensor to_host() const;

private:
  Type type_;
  std::shared_ptr<std::byte> buf_;
};

} // namespace kiln
