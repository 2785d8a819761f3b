#include "runtime/cpu_window_ops.h"

#include "ir/error.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace kiln {
namespace {

int64_t floor_div(int64_t a, int64_t b) { // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// The indices t in [0, count) with 0 <= t*step + off < size: one range,
// since step > 0. Iterating it instead of testing every index keeps the
// inner loops free of bounds checks, and keeps the interpreter's order.
struct Range {
  int64_t lo, hi;
};
Range valid(int64_t off, int64_t step, int64_t size, int64_t count) {
  int64_t lo = std::clamp<int64_t>(-floor_div(off, step), 0, count);
  // -floor_div(off, step) is ceil(-off / step).
  int64_t hi = std::min(count, floor_div(size - 1 - off, step) + 1);
  return {lo, std::max(lo, hi)};
}

// Work items of about this many elements each, at least one.
int64_t grain_for(int64_t per_item) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, per_item));
}

template <typename T>
void im2col(const Window2d &g, const T *x, T *cols, ThreadPool &pool) {
  // One item per (image, group, row (c, i, j)): its Ho*Wo columns, output
  // row by output row. Per tap column j, the windows whose read lands
  // inside the image are one range [lo, hi) of ox, the rest is padding.
  const int64_t K = g.rows(), L = g.cols(), taps = g.taps();
  pool.parallel_for(
      g.n * g.groups * K, grain_for(L), [&](int64_t b, int64_t e) {
        for (int64_t item = b; item < e; ++item) {
          const int64_t r = item % K, ng = item / K; // ng = n*groups + group
          const int64_t n = ng / g.groups, grp = ng % g.groups;
          const int64_t c = r / taps, i = (r % taps) / g.kw, j = r % g.kw;
          const T *plane = x + (n * g.c + grp * g.cg() + c) * g.h * g.w;
          T *out = cols + item * L;
          const int64_t xoff = j * g.dw - g.pw;
          const Range ox = valid(xoff, g.sw, g.w, g.wo);
          const Range oy = valid(i * g.dh - g.ph, g.sh, g.h, g.ho);
          // Window rows reading above or below the image: all padding.
          std::fill(out, out + oy.lo * g.wo, T(0));
          std::fill(out + oy.hi * g.wo, out + L, T(0));
          const int64_t cnt = ox.hi - ox.lo;
          if (cnt <= 0) {
            std::fill(out + oy.lo * g.wo, out + oy.hi * g.wo, T(0));
            continue;
          }
          if (g.sw == 1 && g.sh == 1 && g.wo == g.w) {
            // Unit strides, windows as wide as the image ("same" padding,
            // the CNN's): column (oy, ox) is image element (oy, ox) shifted
            // by one flat offset, so rows oy.lo..oy.hi are one block copy,
            // and only the |xoff| columns per row that wrapped into the
            // next or previous image row become padding. Column k reads image
            // element k + shift; the copy stays in the image (what it leaves
            // out is in the wrapped columns).
            const int64_t shift = (i * g.dh - g.ph) * g.w + xoff;
            const int64_t first = std::max(oy.lo * g.wo, -shift),
                          last = std::min(oy.hi * g.wo, g.h * g.w - shift);
            if (last > first)
              std::memcpy(out + first, plane + first + shift,
                          static_cast<size_t>(last - first) * sizeof(T));
            for (int64_t wy = oy.lo; wy < oy.hi; ++wy) {
              T *row = out + wy * g.wo;
              std::fill(row, row + ox.lo, T(0));
              std::fill(row + ox.hi, row + g.wo, T(0));
            }
            continue;
          }
          // src: the image element of window (oy.lo, ox.lo).
          const T *src = plane + (oy.lo * g.sh - g.ph + i * g.dh) * g.w +
                         ox.lo * g.sw + xoff;
          for (int64_t wy = oy.lo; wy < oy.hi; ++wy, src += g.sh * g.w) {
            T *__restrict row = out + wy * g.wo;
            for (int64_t t = 0; t < ox.lo; ++t)
              row[t] = T(0);
            T *__restrict dst = row + ox.lo;
            if (g.sw == 1)
              for (int64_t t = 0; t < cnt; ++t)
                dst[t] = src[t];
            else
              for (int64_t t = 0; t < cnt; ++t)
                dst[t] = src[t * g.sw];
            for (int64_t t = ox.hi; t < g.wo; ++t)
              row[t] = T(0);
          }
        }
      });
}

template <typename T>
void col2im(const Window2d &g, const T *cols, T *x, ThreadPool &pool) {
  // One item per (image, channel) plane, which only its own column rows
  // (c, i, j) add to: tap by tap, window row by window row, each row's
  // in-image range added along an image row. Every element gets its terms
  // in the interpreter's order (i, j, oy, ox).
  const int64_t K = g.rows(), L = g.cols(), taps = g.taps(), hw = g.h * g.w;
  pool.parallel_for(
      g.n * g.c, grain_for(taps * L + hw), [&](int64_t b, int64_t e) {
        for (int64_t item = b; item < e; ++item) {
          const int64_t n = item / g.c, ch = item % g.c;
          const int64_t grp = ch / g.cg(), c = ch % g.cg();
          T *plane = x + item * hw;
          std::fill(plane, plane + hw, T(0));
          const T *rows = cols + ((n * g.groups + grp) * K + c * taps) * L;
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              const T *src = rows + (i * g.kw + j) * L;
              const int64_t xoff = j * g.dw - g.pw;
              const Range ox = valid(xoff, g.sw, g.w, g.wo);
              const Range oy = valid(i * g.dh - g.ph, g.sh, g.h, g.ho);
              if (ox.hi <= ox.lo)
                continue;
              const int64_t cnt = ox.hi - ox.lo;
              for (int64_t wy = oy.lo; wy < oy.hi; ++wy) {
                // dst: the image element of window (wy, ox.lo).
                T *dst = plane + (wy * g.sh - g.ph + i * g.dh) * g.w +
                         ox.lo * g.sw + xoff;
                const T *s = src + wy * g.wo + ox.lo;
                if (g.sw == 1)
                  for (int64_t t = 0; t < cnt; ++t)
                    dst[t] += s[t];
                else
                  for (int64_t t = 0; t < cnt; ++t)
                    dst[t * g.sw] += s[t];
              }
            }
        }
      });
}

// The in-image taps of every window row and column, computed once per
// launch rather than per window (two divisions each).
struct PoolTaps {
  std::vector<Range> rows, cols;
  explicit PoolTaps(const Window2d &g) {
    for (int64_t oy = 0; oy < g.ho; ++oy)
      rows.push_back(valid(oy * g.sh - g.ph, g.dh, g.h, g.kh));
    for (int64_t ox = 0; ox < g.wo; ++ox)
      cols.push_back(valid(ox * g.sw - g.pw, g.dw, g.w, g.kw));
    // The windows with every column tap in the image: one range, as the
    // taps' ranges move right with ox.
    full = {g.wo, g.wo};
    for (int64_t ox = 0; ox < g.wo; ++ox)
      if (cols[ox].lo == 0 && cols[ox].hi == g.kw) {
        full.lo = std::min(full.lo, ox);
        full.hi = ox + 1;
      }
    full.hi = std::max(full.hi, full.lo);
  }
  Range full;
};

// The arg-max of window (oy, ox) in one plane, as an offset into it, or -1
// for a window of padding only: the first maximum in (i, j) order, or the
// last NaN (ir/window_ops.cpp, window_argmax).
template <typename T>
[[gnu::always_inline]] inline int64_t
plane_argmax(const Window2d &g, const PoolTaps &taps, const T *plane,
             int64_t oy, int64_t ox) {
  const Range ti = taps.rows[oy], tj = taps.cols[ox];
  if (ti.lo == ti.hi || tj.lo == tj.hi)
    return -1;
  const int64_t x0 = ox * g.sw - g.pw, y0 = oy * g.sh - g.ph;
  int64_t best = (y0 + ti.lo * g.dh) * g.w + x0 + tj.lo * g.dw;
  T bv = plane[best];
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  // Selects rather than branches: on real data whether a tap wins is a
  // coin toss, and a mispredicted branch costs more than the window.
  for (int64_t i = ti.lo; i < ti.hi; ++i) {
    const int64_t row = (y0 + i * g.dh) * g.w + x0;
    for (int64_t j = tj.lo; j < tj.hi; ++j) {
      const int64_t at = row + j * g.dw;
      const T v = plane[at];
      const bool take = (v > bv) | (v != v);
      // Blends through the bits: GCC turns a floating-point ?: into a branch.
      const Bits mask = Bits(0) - Bits(take);
      best = (best & ~int64_t(mask)) | (at & int64_t(mask));
      bv = std::bit_cast<T>((std::bit_cast<Bits>(bv) & ~mask) |
                            (std::bit_cast<Bits>(v) & mask));
    }
  }
  return best;
}

// The interior windows [a, b) of row oy (every tap in the image), all
// windows of the row at once, tap by tap, so that the loop over windows
// (stride SW, 0: g.sw) vectorizes: the same selections as plane_argmax
// in the same tap order, hence the same arg-max.
template <int SW, typename T, typename I>
void interior_argmax(const Window2d &g, const T *plane, int64_t oy, int64_t a,
                     int64_t b, I *__restrict bi, T *__restrict bv) {
  const int64_t sw = SW ? SW : g.sw, y0 = oy * g.sh - g.ph;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t off = (y0 + i * g.dh) * g.w - g.pw + j * g.dw;
      const T *__restrict r = plane + off;
      if (i == 0 && j == 0) {
        for (int64_t ox = a; ox < b; ++ox) {
          bi[ox] = static_cast<I>(off + ox * sw);
          bv[ox] = r[ox * sw];
        }
        continue;
      }
      for (int64_t ox = a; ox < b; ++ox) {
        const T v = r[ox * sw];
        const bool take = (v > bv[ox]) | (v != v);
        bv[ox] = take ? v : bv[ox];
        bi[ox] = take ? static_cast<I>(off + ox * sw) : bi[ox];
      }
    }
}

// The arg-max offsets (bi, -1: padding only) and maxima (bv, -inf) of the
// windows of row oy.
template <typename T, typename I>
void row_argmax(const Window2d &g, const PoolTaps &taps, const T *plane,
                int64_t oy, I *bi, T *bv) {
  int64_t a = taps.full.lo, b = taps.full.hi;
  const Range ti = taps.rows[oy];
  if (ti.lo != 0 || ti.hi != g.kh)
    a = b = 0;
  for (int64_t ox = 0; ox < g.wo; ++ox) {
    if (ox == a && a < b)
      ox = b;
    if (ox >= g.wo)
      break;
    int64_t at = plane_argmax(g, taps, plane, oy, ox);
    bi[ox] = static_cast<I>(at);
    bv[ox] = at < 0 ? -std::numeric_limits<T>::infinity() : plane[at];
  }
  if (a >= b)
    return;
  if (g.sw == 1)
    interior_argmax<1>(g, plane, oy, a, b, bi, bv);
  else if (g.sw == 2)
    interior_argmax<2>(g, plane, oy, a, b, bi, bv);
  else
    interior_argmax<0>(g, plane, oy, a, b, bi, bv);
}

// Per plane, row by row: the arg-max offsets (int32 where the plane fits,
// so that they share vector lanes with f32 values) to `fn(oy, bi, bv)`.
template <typename T, typename Fn>
void for_each_pool_row(const Window2d &g, const PoolTaps &taps, const T *plane,
                       std::vector<int64_t> &wide, std::vector<T> &bv, Fn fn) {
  using Narrow = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  if (g.h * g.w < (int64_t{1} << 31)) {
    Narrow *bi = reinterpret_cast<Narrow *>(wide.data());
    for (int64_t oy = 0; oy < g.ho; ++oy) {
      row_argmax(g, taps, plane, oy, bi, bv.data());
      fn(oy, bi, bv.data());
    }
  } else {
    for (int64_t oy = 0; oy < g.ho; ++oy) {
      row_argmax(g, taps, plane, oy, wide.data(), bv.data());
      fn(oy, wide.data(), bv.data());
    }
  }
}

template <typename T>
void max_pool2d(const Window2d &g, const T *x, T *y, ThreadPool &pool) {
  const int64_t hw = g.h * g.w, out = g.ho * g.wo;
  const PoolTaps taps(g);
  pool.parallel_for(
      g.n * g.c, grain_for(out * g.taps()), [&](int64_t b, int64_t e) {
        std::vector<int64_t> bi(static_cast<size_t>(g.wo));
        std::vector<T> bv(static_cast<size_t>(g.wo));
        for (int64_t item = b; item < e; ++item) {
          T *dst = y + item * out;
          for_each_pool_row(g, taps, x + item * hw, bi, bv,
                            [&](int64_t oy, const auto *, const T *v) {
                              std::copy(v, v + g.wo, dst + oy * g.wo);
                            });
        }
      });
}

template <typename T>
void max_pool2d_grad(const Window2d &g, const T *x, const T *dy, T *dx,
                     ThreadPool &pool) {
  // A window's arg-max is in its own plane: one item per plane scatters
  // that plane's dy without races, in the interpreter's window order.
  const int64_t hw = g.h * g.w, out = g.ho * g.wo;
  const PoolTaps taps(g);
  pool.parallel_for(
      g.n * g.c, grain_for(out * g.taps() + hw), [&](int64_t b, int64_t e) {
        std::vector<int64_t> bi(static_cast<size_t>(g.wo));
        std::vector<T> bv(static_cast<size_t>(g.wo));
        for (int64_t item = b; item < e; ++item) {
          const T *d = dy + item * out;
          T *grad = dx + item * hw;
          std::fill(grad, grad + hw, T(0));
          for_each_pool_row(g, taps, x + item * hw, bi, bv,
                            [&](int64_t oy, const auto *at, const T *) {
                              const T *row = d + oy * g.wo;
                              for (int64_t ox = 0; ox < g.wo; ++ox)
                                if (at[ox] >= 0)
                                  grad[at[ox]] += row[ox];
                            });
        }
      });
}

// Calls fn(T{}) with T the C++ type of float dtype `d`.
template <typename Fn> void on_float(DType d, const char *op, Fn fn) {
  switch (d) {
  case DType::f32:
    return fn(float{});
  case DType::f64:
    return fn(double{});
  default:
    fail("cpu backend: {} on {} is not supported (f32 and f64 only)", op,
         dtype_name(d));
  }
}

} // namespace

void host_im2col(DType d, const Window2d &g, const void *x, void *cols,
                 ThreadPool &pool) {
  on_float(d, "im2col", [&](auto t) {
    using T = decltype(t);
    im2col(g, static_cast<const T *>(x), static_cast<T *>(cols), pool);
  });
}

void host_col2im(DType d, const Window2d &g, const void *cols, void *x,
                 ThreadPool &pool) {
  on_float(d, "col2im", [&](auto t) {
    using T = decltype(t);
    col2im(g, static_cast<const T *>(cols), static_cast<T *>(x), pool);
  });
}

void host_max_pool2d(DType d, const Window2d &g, const void *x, void *y,
                     ThreadPool &pool) {
  on_float(d, "max_pool2d", [&](auto t) {
    using T = decltype(t);
    max_pool2d(g, static_cast<const T *>(x), static_cast<T *>(y), pool);
  });
}

void host_max_pool2d_grad(DType d, const Window2d &g, const void *x,
                          const void *dy, void *dx, ThreadPool &pool) {
  on_float(d, "max_pool2d_grad", [&](auto t) {
    using T = decltype(t);
    max_pool2d_grad(g, static_cast<const T *>(x), static_cast<const T *>(dy),
                    static_cast<T *>(dx), pool);
  });
}

} // namespace kiln
