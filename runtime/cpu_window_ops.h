// The CPU backend's host loops for the 2-D window ops that stay standalone
// after the decompose-windows pass: im2col, col2im, max_pool2d and
// max_pool2d_grad (semantics: ir/ops.def and the reference interpreter,
// ir/window_ops.cpp; geometry: ir/window.h). They are the hot loops of a
// CNN training step besides its GEMMs, so each one is split on the pool
// into pieces that own their output (no atomics, no races) and whose inner
// loop runs along contiguous memory. The split depends on the shape only,
// so results are bitwise the same for any thread count.
#pragma once

#include "ir/types.h"
#include "ir/window.h"
#include "runtime/cpu_thread_pool.h"

namespace kiln {

// cols [N, groups, C/groups*kh*kw, Ho*Wo] = im2col(x [N, C, H, W]); dtype
// f32 or f64 (others throw kiln::Error).
void host_im2col(DType d, const Window2d &g, const void *x, void *cols,
                 ThreadPool &pool);
// x [N, C, H, W] = col2im(cols), the sum of the column entries that
// im2col would copy each element to.
void host_col2im(DType d, const Window2d &g, const void *cols, void *x,
                 ThreadPool &pool);
// y [N, C, Ho, Wo] = the maximum of each window, padding excluded (-inf
// for a window of padding only).
void host_max_pool2d(DType d, const Window2d &g, const void *x, void *y,
                     ThreadPool &pool);
// dx (x's shape) = each dy element added at its window's arg-max in x: the
// first maximum, or the last NaN, as torch and the interpreter pick it.
void host_max_pool2d_grad(DType d, const Window2d &g, const void *x,
                          const void *dy, void *dx, ThreadPool &pool);

} // namespace kiln
