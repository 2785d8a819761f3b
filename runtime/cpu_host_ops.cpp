#include "runtime/cpu_host_ops.h"

#include "ir/error.h"
#include "ir/host_tensor.h"
#include "ir/philox.h"

#include <cblas.h>

#include <cmath>
#include <cstring>

namespace kiln {

void set_blas_threads(int n) { openblas_set_num_threads(n); }

void run_gemm(const GemmCall &g, const void *a, const void *b, void *c) {
  auto ta = g.trans_a ? CblasTrans : CblasNoTrans;
  auto tb = g.trans_b ? CblasTrans : CblasNoTrans;
  for (size_t p = 0; p < g.c_off.size(); ++p) {
    if (g.f64)
      cblas_dgemm(CblasRowMajor, ta, tb, g.m, g.n, g.k, 1.0,
                  static_cast<const double *>(a) + g.a_off[p], g.lda,
                  static_cast<const double *>(b) + g.b_off[p], g.ldb, 0.0,
                  static_cast<double *>(c) + g.c_off[p], g.n);
    else
      cblas_sgemm(CblasRowMajor, ta, tb, g.m, g.n, g.k, 1.0f,
                  static_cast<const float *>(a) + g.a_off[p], g.lda,
                  static_cast<const float *>(b) + g.b_off[p], g.ldb, 0.0f,
                  static_cast<float *>(c) + g.c_off[p], g.n);
  }
}

namespace {

template <typename T>
void transpose_t(const Shape &out, const std::vector<int64_t> &src_st,
                 const T *src, T *dst, ThreadPool &pool) {
  int r = static_cast<int>(out.size());
  int64_t inner = r ? out[r - 1] : 1;
  int64_t rows = inner ? numel(out) / inner : 0;
  int64_t ist = r ? src_st[r - 1] : 0;
  pool.parallel_for(rows, std::max<int64_t>(1, 16384 / (inner + 1)),
                    [&](int64_t b, int64_t e) {
                      for (int64_t row = b; row < e; ++row) {
                        int64_t rem = row, off = 0;
                        for (int a = r - 2; a >= 0; --a) {
                          off += (rem % out[a]) * src_st[a];
                          rem /= out[a];
                        }
                        T *d = dst + row * inner;
                        for (int64_t j = 0; j < inner; ++j)
                          d[j] = src[off + j * ist];
                      }
                    });
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
  switch (dtype_size(in.dtype)) {
  case 1:
    return transpose_t(out, st, static_cast<const uint8_t *>(src),
                       static_cast<uint8_t *>(dst), pool);
  case 4:
    return transpose_t(out, st, static_cast<const uint32_t *>(src),
                       static_cast<uint32_t *>(dst), pool);
  default:
    return transpose_t(out, st, static_cast<const uint64_t *>(src),
                       static_cast<uint64_t *>(dst), pool);
  }
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
