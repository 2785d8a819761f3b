// The CPU backend's host loops for gather and scatter_add (ir/gather.h):
// f32/f64 data (gather copies rows of any dtype), i32/i64 indices. Both
// check every index on the calling thread before writing anything, so an
// index out of range is a kiln::Error naming it, never a wild write.
#pragma once

#include "ir/gather.h"
#include "runtime/cpu_thread_pool.h"

namespace kiln {

// dst[o, j, :] = x[o, indices[j], :] for the rows of `inner` elements of
// `data` dtype.
void host_gather(const GatherGeometry &g, DType data, const Shape &indices,
                 const void *x, const void *idx, void *dst, ThreadPool &pool);
// dst = 0, then dst[o, indices[j], :] += updates[o, j, :], j in order.
void host_scatter_add(const GatherGeometry &g, DType data, const Shape &indices,
                      const void *idx, const void *updates, void *dst,
                      ThreadPool &pool);

} // namespace kiln
