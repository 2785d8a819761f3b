// gather and scatter_add on the CPU: row copies and row sums over the
// [outer, len, inner] view of ir/gather.h.
#include "runtime/cpu_gather_ops.h"

#include "ir/error.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace kiln {
namespace {

// The indices as i64, each checked against [0, len) (the caller's thread:
// parallel_for's fn must not throw).
std::vector<int64_t> checked_indices(std::string_view op,
                                     const GatherGeometry &g,
                                     const Shape &shape, const void *idx) {
  std::vector<int64_t> v(static_cast<size_t>(g.count));
  for (int64_t j = 0; j < g.count; ++j) {
    v[j] = g.index_dtype == DType::i32 ? static_cast<const int32_t *>(idx)[j]
                                       : static_cast<const int64_t *>(idx)[j];
    if (v[j] < 0 || v[j] >= g.len)
      throw Error(gather_index_error(op, v[j], shape, j, g.len, g.axis));
  }
  return v;
}

template <typename T>
void scatter_rows(const GatherGeometry &g, const std::vector<int64_t> &ix,
                  const T *up, T *dst, ThreadPool &pool) {
  std::memset(dst, 0, sizeof(T) * g.outer * g.len * g.inner);
  // Work items are (outer, column block) pairs: each owns its columns of
  // one outer slice of dst, so no two threads add into one element, and
  // each element sums its updates in index order (the interpreter's, so the
  // result does not depend on the thread count).
  constexpr int64_t kCols = 512;
  const int64_t blocks = (g.inner + kCols - 1) / kCols;
  const int64_t work = g.outer * blocks;
  const int64_t cost = std::max<int64_t>(1, g.count * std::min(g.inner, kCols));
  pool.parallel_for(work, std::max<int64_t>(1, 65536 / cost),
                    [&](int64_t b, int64_t e) {
                      for (int64_t w = b; w < e; ++w) {
                        const int64_t o = w / blocks, c0 = (w % blocks) * kCols,
                                      c1 = std::min(g.inner, c0 + kCols);
                        T *out = dst + o * g.len * g.inner;
                        const T *u = up + o * g.count * g.inner;
                        for (int64_t j = 0; j < g.count; ++j) {
                          T *row = out + ix[j] * g.inner;
                          const T *src = u + j * g.inner;
                          for (int64_t i = c0; i < c1; ++i)
                            row[i] += src[i];
                        }
                      }
                    });
}

} // namespace

void host_gather(const GatherGeometry &g, DType data, const Shape &indices,
                 const void *x, const void *idx, void *dst, ThreadPool &pool) {
  std::vector<int64_t> ix = checked_indices("gather", g, indices, idx);
  const size_t row = dtype_size(data) * static_cast<size_t>(g.inner);
  const auto *src = static_cast<const std::byte *>(x);
  auto *out = static_cast<std::byte *>(dst);
  const int64_t rows = g.outer * g.count;
  pool.parallel_for(
      rows, std::max<int64_t>(1, static_cast<int64_t>(65536 / (row + 1))),
      [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const int64_t o = r / g.count, j = r % g.count;
          std::memcpy(out + r * row, src + (o * g.len + ix[j]) * row, row);
        }
      });
}

void host_scatter_add(const GatherGeometry &g, DType data, const Shape &indices,
                      const void *idx, const void *updates, void *dst,
                      ThreadPool &pool) {
  std::vector<int64_t> ix = checked_indices("scatter_add", g, indices, idx);
  if (data == DType::f32)
    scatter_rows(g, ix, static_cast<const float *>(updates),
                 static_cast<float *>(dst), pool);
  else if (data == DType::f64)
    scatter_rows(g, ix, static_cast<const double *>(updates),
                 static_cast<double *>(dst), pool);
  else
    fail("scatter_add: cpu backend has no kernel for {} updates",
         dtype_name(data));
}

} // namespace kiln
