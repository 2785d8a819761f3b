// Loop plans of kernels: how a fused node's iteration space maps onto loops
// and array offsets. Target-independent: the LLVM emitter
// (codegen/llvm_emit.cpp) renders a plan into IR, and the lowering
// (plan/lower.cpp) reads it to decide which outputs may be written in place.
//
// Every array is addressed through per-axis strides over a collapsed
// iteration space: size-1 axes are dropped and adjacent axes merged whenever
// every array walks them as one (numpy broadcasting gives stride 0). A
// contiguous, non-broadcast elementwise kernel thus becomes one counted
// loop, and a bias add [B,N] + [N] two loops whose inner one is contiguous.
#pragma once

#include "ir/graph.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

// An independent elementwise loop: some body outputs over one space.
struct SegmentPlan {
  std::vector<int> outputs; // body output indices
  Shape dims;               // collapsed space, rank >= 1
  // Per body input: strides over dims (empty when the segment does not
  // read that input). Outputs are dense over dims.
  std::vector<std::vector<int64_t>> in_strides;
  // The iota nodes this segment evaluates (body node indices) and, per iota,
  // its strides over dims: the iota's value at a point is its offset (1 on
  // the space axis its `axis` lines up with, 0 elsewhere).
  std::vector<int> iotas;
  std::vector<std::vector<int64_t>> iota_strides;
  std::vector<bool> needed; // per body node: in this segment's cone
  int64_t numel = 0;
  int64_t start = 0; // first work item of this segment
};

// A reduction over the space X of the reduction node's operand. The
// collapsed axes of X fall in three groups: O (kept axes before the last
// reduced one), R (reduced) and I (kept axes after the last reduced one).
// Work item w = (o, tile t) with o < o_total, t < n_tiles: it reduces over
// R for the kept inner indices [t*tile, min(i_total, (t+1)*tile)).
//
// The body is a prologue over X (`prologue`: the cone of the reduction's
// operand and of the extra outputs), the reduction node, and after
// sum/mean/amax an epilogue on the reduced value (`epilogue`: output 0's
// cone above the reduction). Extra outputs 1.. are prologue values of shape
// X, written (dense, row-major) as the single accumulation pass visits each
// point of X.
struct ReductionPlan {
  Op op;           // sum, mean, amax, softmax or log_softmax
  int reduce_node; // index of the reduction node in the body
  Shape dims;      // collapsed X
  std::vector<int> o_axes, r_axes, i_axes;
  std::vector<std::vector<int64_t>> in_strides; // per body input, over dims
  std::vector<int> iotas; // prologue iota nodes (body node indices)
  std::vector<std::vector<int64_t>> iota_strides; // per iota, over dims
  std::vector<int64_t> out_strides;               // output 0, over dims
  std::vector<int> extras;              // body output indices 1.. (shape X)
  std::vector<int64_t> extra_strides;   // the extra outputs, over dims
  std::vector<bool> prologue, epilogue; // per body node
  int64_t o_total = 1, r_total = 1, i_total = 1;
  int64_t tile = 1, n_tiles = 1;
  int64_t count = 1; // number of elements reduced (for mean)
};

struct KernelPlan {
  enum class Kind { elementwise, reduction } kind = Kind::elementwise;
  std::vector<SegmentPlan> segments; // elementwise and multi_tensor
  ReductionPlan red;                 // reduction
  int64_t work = 0;
  double bytes_per_item = 0;
};

// Plans a fused node; throws kiln::Error when it breaks the contract.
KernelPlan plan_kernel(const Node &fused);

// The independent elementwise loops of a fused "elementwise" or
// "multi_tensor" node: body output indices per chain, chains in order of
// their first output. The one grouping both targets use (the plan's
// segments, the CUDA emitter's multi-tensor table).
//   elementwise: one chain of every output.
//   multi_tensor with `chains` (passes/fuse_optimizer.cpp): the consecutive
//     groups it lists. The counts must be >= 1 and cover the results, and
//     no body node other than a fill constant may be reached from two
//     chains; otherwise kiln::Error.
//   multi_tensor without it (hand-written IR): outputs whose cones share a
//     body node other than a fill constant are one chain.
// Every chain's results share one shape (else kiln::Error).
std::vector<std::vector<int>> output_chains(const Node &fused);

// The structural key of a fused node: kind, result types, body ops, types
// and attributes; equal keys mean the same machine code.
std::string kernel_key(const Node &fused);

// Collapses an iteration space: drops size-1 axes and merges adjacent axes of
// one class that every stride vector walks as one. `cls` may be empty (one
// class). Leaves at least one axis when `keep_one`.
void collapse_axes(Shape &dims, std::vector<std::vector<int64_t>> &strides,
                   std::vector<int> &cls, bool keep_one);

// Wraps a standalone elementwise op, iota or reduction node into a graph
// holding one fused node of kind "elementwise" / "reduction" with the same
// operand and result types (an iota has none); the fused node is the graph's
// only node.
std::unique_ptr<Graph> wrap_as_fused(const Node &n);

// A graph holding one fused elementwise node that copies (and broadcasts)
// an array of type `from` into one of shape `to` (same dtype).
std::unique_ptr<Graph> make_copy_kernel(const Type &from, const Shape &to);

} // namespace kiln
