#include "runtime/cpu_host_ops.h"

#include "ir/error.h"
#include "ir/host_tensor.h"
#include "ir/philox.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln {

void set_blas_threads(int n) { openblas_set_num_threads(n); }

GemmTiles gemm_tiles(int64_t m, int64_t n, int64_t k) {
  // Halve the larger side (to a multiple of 16, OpenBLAS's register block)
  // while the halves keep at least kMinMacs multiply-adds and the tile has
  // kSplitMacs or more (or is still all of C, so that any product worth two
  // threads gets two tiles), up to kMaxTiles tiles. Square-ish tiles repack
  // the least of A and B; smaller tiles cost more packing than another core
  // gains on the MLP's GEMMs (measured on one thread: the tiles of 1M
  // multiply-adds were 8-14% slower than one call, these 2-6%).
  constexpr double kMinMacs = 1 << 20, kSplitMacs = 1 << 23;
  constexpr int64_t kMaxTiles = 64;
  auto count = [](int64_t d, int64_t t) { return t > 0 ? (d + t - 1) / t : 1; };
  auto macs = [&](int64_t tm, int64_t tn) {
    return static_cast<double>(tm) * static_cast<double>(tn) *
           static_cast<double>(k);
  };
  GemmTiles t{std::max<int64_t>(m, 1), std::max<int64_t>(n, 1), 1, 1};
  for (;;) {
    bool by_m = t.tm >= t.tn;
    int64_t side = by_m ? t.tm : t.tn;
    int64_t half = ((side + 1) / 2 + 15) / 16 * 16;
    if (half >= side)
      break;
    int64_t tm = by_m ? half : t.tm, tn = by_m ? t.tn : half;
    bool whole = t.tm >= m && t.tn >= n;
    if (macs(tm, tn) < kMinMacs || (macs(t.tm, t.tn) < kSplitMacs && !whole) ||
        count(m, tm) * count(n, tn) > kMaxTiles)
      break;
    t.tm = tm;
    t.tn = tn;
  }
  t.nm = count(m, t.tm);
  t.nn = count(n, t.tn);
  return t;
}

void run_gemm(const GemmDesc &g, const void *a, const void *b, void *c,
              ThreadPool &pool) {
  // OpenBLAS's own threading splits a GEMM by its thread count, and its
  // results change with the split (and with the shape of each call): it runs
  // single-threaded, one call per tile of a fixed tiling, on the pool.
  if (openblas_get_num_threads() != 1)
    openblas_set_num_threads(1);
  auto ta = g.trans_a ? CblasTrans : CblasNoTrans;
  auto tb = g.trans_b ? CblasTrans : CblasNoTrans;
  GemmTiles t = gemm_tiles(g.m, g.n, g.k);
  int64_t per = t.nm * t.nn;
  auto items = static_cast<int64_t>(g.c_off.size()) * per;
  pool.parallel_for(items, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t w = lo; w < hi; ++w) {
      int64_t p = w / per, i = (w % per) / t.nn, j = w % t.nn;
      int64_t m0 = i * t.tm, n0 = j * t.tn;
      int64_t mm = std::min(t.tm, g.m - m0), nn = std::min(t.tn, g.n - n0);
      int64_t ao = g.a_off[p] + (g.trans_a ? m0 : m0 * g.lda);
      int64_t bo = g.b_off[p] + (g.trans_b ? n0 * g.ldb : n0);
      int64_t co = g.c_off[p] + m0 * g.n + n0;
      if (g.f64)
        cblas_dgemm(CblasRowMajor, ta, tb, mm, nn, g.k, 1.0,
                    static_cast<const double *>(a) + ao, g.lda,
                    static_cast<const double *>(b) + bo, g.ldb, 0.0,
                    static_cast<double *>(c) + co, g.n);
      else
        cblas_sgemm(CblasRowMajor, ta, tb, mm, nn, g.k, 1.0f,
                    static_cast<const float *>(a) + ao, g.lda,
                    static_cast<const float *>(b) + bo, g.ldb, 0.0f,
                    static_cast<float *>(c) + co, g.n);
    }
  });
}

namespace {

// Copies between a contiguous array of `shape` and a strided one (element
// strides `st`), row by row on the pool: gather (dst contiguous, src
// strided: transpose, slice) or scatter (src contiguous, dst strided: pad).
template <typename T>
void strided_copy(const Shape &shape, const std::vector<int64_t> &st,
                  const T *src, T *dst, bool scatter, ThreadPool &pool) {
  int r = static_cast<int>(shape.size());
  int64_t inner = r ? shape[r - 1] : 1;
  int64_t rows = inner ? numel(shape) / inner : 0;
  int64_t ist = r ? st[r - 1] : 0;
  pool.parallel_for(rows, std::max<int64_t>(1, 16384 / (inner + 1)),
                    [&](int64_t b, int64_t e) {
                      for (int64_t row = b; row < e; ++row) {
                        int64_t rem = row, off = 0;
                        for (int a = r - 2; a >= 0; --a) {
                          off += (rem % shape[a]) * st[a];
                          rem /= shape[a];
                        }
                        if (scatter) {
                          const T *c = src + row * inner;
                          for (int64_t j = 0; j < inner; ++j)
                            dst[off + j * ist] = c[j];
                        } else {
                          T *c = dst + row * inner;
                          for (int64_t j = 0; j < inner; ++j)
                            c[j] = src[off + j * ist];
                        }
                      }
                    });
}

// strided_copy on elements of `size` bytes.
void strided_copy_bytes(size_t size, const Shape &shape,
                        const std::vector<int64_t> &st, const void *src,
                        void *dst, bool scatter, ThreadPool &pool) {
  switch (size) {
  case 1:
    return strided_copy(shape, st, static_cast<const uint8_t *>(src),
                        static_cast<uint8_t *>(dst), scatter, pool);
  case 4:
    return strided_copy(shape, st, static_cast<const uint32_t *>(src),
                        static_cast<uint32_t *>(dst), scatter, pool);
  default:
    return strided_copy(shape, st, static_cast<const uint64_t *>(src),
                        static_cast<uint64_t *>(dst), scatter, pool);
  }
}

void store(DType d, void *p, int64_t i, double v) {
  v = round_to(d, v);
  switch (d) {
  case DType::f32:
    static_cast<float *>(p)[i] = static_cast<float>(v);
    break;
  case DType::f64:
    static_cast<double *>(p)[i] = v;
    break;
  case DType::i32:
    static_cast<int32_t *>(p)[i] = static_cast<int32_t>(v);
    break;
  case DType::i64:
    static_cast<int64_t *>(p)[i] = static_cast<int64_t>(v);
    break;
  case DType::boolean:
    static_cast<uint8_t *>(p)[i] = v != 0;
    break;
  }
}

double load(DType d, const void *p, int64_t i) {
  switch (d) {
  case DType::f32:
    return static_cast<const float *>(p)[i];
  case DType::f64:
    return static_cast<const double *>(p)[i];
  case DType::i32:
    return static_cast<const int32_t *>(p)[i];
  case DType::i64:
    return static_cast<double>(static_cast<const int64_t *>(p)[i]);
  case DType::boolean:
    return static_cast<const uint8_t *>(p)[i] ? 1 : 0;
  }
  return 0;
}

} // namespace

void host_transpose(const Type &in, const std::vector<int64_t> &perm,
                    const void *src, void *dst, ThreadPool &pool) {
  auto cs = contiguous_strides(in.shape);
  Shape out;
  std::vector<int64_t> st;
  for (int64_t p : perm) {
    out.push_back(in.shape[p]);
    st.push_back(cs[p]);
  }
  strided_copy_bytes(dtype_size(in.dtype), out, st, src, dst,
                     /*scatter=*/false, pool);
}

void host_concat(const std::vector<Type> &ins, int axis,
                 const std::vector<const void *> &srcs, void *dst) {
  // For each index of the axes before `axis`, one contiguous block of
  // each operand, in operand order.
  int64_t outer = 1;
  for (int d = 0; d < axis; ++d)
    outer *= ins[0].shape[d];
  auto *d = static_cast<uint8_t *>(dst);
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < ins.size(); ++k) {
      size_t block = outer ? ins[k].bytes() / static_cast<size_t>(outer) : 0;
      std::memcpy(d, static_cast<const uint8_t *>(srcs[k]) + o * block, block);
      d += block;
    }
}

void host_slice(const Type &in, const SliceBounds &sb, const void *src,
                void *dst, ThreadPool &pool) {
  // A strided view of src copied out: the transpose loop with strides
  // scaled by the steps, from the first selected element.
  auto cs = contiguous_strides(in.shape);
  std::vector<int64_t> st;
  int64_t base = 0;
  for (size_t d = 0; d < cs.size(); ++d) {
    st.push_back(cs[d] * sb.step[d]);
    base += sb.start[d] * cs[d];
  }
  strided_copy_bytes(dtype_size(in.dtype), sb.out, st,
                     static_cast<const std::byte *>(src) +
                         base * static_cast<int64_t>(dtype_size(in.dtype)),
                     dst, /*scatter=*/false, pool);
}

void host_pad(const Type &in, const PadBounds &pb, const void *src, void *dst,
              ThreadPool &pool) {
  // Fill with the value, then copy src's elements to their places: rows
  // of src go to rows of dst (strided by interior + 1).
  host_fill({in.dtype, pb.out}, pb.value, dst);
  auto ds = contiguous_strides(pb.out);
  std::vector<int64_t> st;
  int64_t base = 0;
  for (size_t d = 0; d < ds.size(); ++d) {
    st.push_back(ds[d] * (pb.interior[d] + 1));
    base += pb.before[d] * ds[d];
  }
  strided_copy_bytes(dtype_size(in.dtype), in.shape, st, src,
                     static_cast<std::byte *>(dst) +
                         base * static_cast<int64_t>(dtype_size(in.dtype)),
                     /*scatter=*/true, pool);
}

void host_one_hot(const Type &labels, const Type &out, const void *src,
                  void *dst) {
  int64_t c = out.shape.back();
  std::memset(dst, 0, out.bytes());
  for (int64_t i = 0; i < labels.numel(); ++i) {
    double label = load(labels.dtype, src, i);
    if (!(label >= 0 && label < static_cast<double>(c)))
      fail("one_hot: label {} at index {} is out of range [0, {})", label, i,
           c);
    store(out.dtype, dst, i * c + static_cast<int64_t>(label), 1.0);
  }
}

void host_random_uniform(const Type &out, int64_t seed, int64_t offset,
                         void *dst, ThreadPool &pool) {
  auto s = static_cast<uint64_t>(seed), o = static_cast<uint64_t>(offset);
  pool.parallel_for(out.numel(), 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float u = philox_uniform(s, o, static_cast<uint64_t>(i));
      if (out.dtype == DType::f64)
        static_cast<double *>(dst)[i] = u;
      else
        static_cast<float *>(dst)[i] = u;
    }
  });
}

void host_fill(const Type &t, double v, void *dst) {
  for (int64_t i = 0; i < t.numel(); ++i)
    store(t.dtype, dst, i, v);
}

int64_t host_read_int(DType d, const void *p) {
  return static_cast<int64_t>(load(d, p, 0));
}

} // namespace kiln
