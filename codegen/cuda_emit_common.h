// Helpers shared by the CUDA emitter's files (codegen/cuda_emit*.cpp): C
// types of dtypes, literals, loads and stores, broadcast index arithmetic,
// and BodyWriter, which prints a body graph's elementwise nodes as C
// statements by walking the op table's scalar expressions.
#pragma once

#include "codegen/cuda_emitter.h"
#include "ir/graph.h"

#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace kiln::cuda::detail {

// Type of a value held in a register: float, double, int, long long, bool.
std::string_view reg_type(DType t);
// A literal of the dtype: 0.5f, 0.5, 3, 3LL, true.
std::string literal(DType t, double v);
// Reads element `off` of pointer `ptr` of dtype t into a register value
// (bools are stored as bytes).
std::string load(DType t, std::string_view ptr, std::string_view off);
// The stored form of register value `v`.
std::string store_value(DType t, std::string_view v);
// The int64 C expression of the offset into an operand of shape `from` read
// at linear index `i` of the iteration space `to` (numpy broadcasting).
std::string bcast_offset(const Shape &from, const Shape &to,
                         std::string_view i);
// The int64 offset sum over axes of `to` of (index along axis a) * st[a].
std::string strided_offset(const Shape &to, const std::vector<int64_t> &st,
                           std::string_view i);
// `const float *__restrict__ name` (or the non-const output form).
std::string pointer_param(DType t, std::string_view name, bool is_const);
// A short text of a shape for comments and names: 64x784.
std::string dims(const Shape &s);

// The C expression (register type of the iota's dtype) of an `iota` node
// of shape S read at linear index `i` of the iteration space `space` (S
// broadcasts to it): the coordinate of i along the space axis that S's
// `axis` lines up with, 0 where S is 1 along it.
std::string iota_value(const Node &n, const Shape &space, std::string_view i);

// Values the targets depend on (transitively) within `body`.
std::unordered_set<const Value *>
needed_values(const Graph &body, const std::vector<const Value *> &targets);

// Prints the elementwise, constant and iota nodes of a body as statements,
// each result in a fresh local `<prefix><id>`. Inputs must be bound first;
// iotas need the iteration space and the C name of its linear index
// (set_space), else they are handed back like any other unsupported node.
class BodyWriter {
public:
  BodyWriter(const Graph &body, std::string prefix)
      : body_(body), prefix_(std::move(prefix)) {}

  void set_space(Shape space, std::string index) {
    space_ = std::move(space);
    index_ = std::move(index);
    has_space_ = true;
  }

  void bind(const Value *v, std::string name) { names_[v] = std::move(name); }
  bool bound(const Value *v) const { return names_.count(v) != 0; }
  const std::string &name(const Value *v) const;

  // Emits, in body order, the nodes that `targets` need and that are not
  // bound yet (a bound value's operands are not needed); stops at the first
  // node that is not elementwise, constant or (with a space) iota (the
  // caller handles it) and returns it, or nullptr at the end.
  const Node *emit(std::string &out, const std::vector<const Value *> &targets,
                   std::string_view indent);

private:
  std::string expr(const Node &n) const;

  const Graph &body_;
  std::string prefix_;
  std::unordered_map<const Value *, std::string> names_;
  Shape space_;
  std::string index_;
  bool has_space_ = false;
};

// The list of ops in a body, for comments: "mul, add, relu".
std::string op_list(const Graph &body);

// Appends a formatted line.
void line(std::string &out, std::string_view indent, std::string_view text);

// A grid-stride loop that evaluates a body's outputs over an iteration
// space: the elementwise kernel's whole work and one multi-tensor chain's.
// Inputs whose shape equals the space are read contiguously (16-byte vector
// loads when every such pointer is aligned, then a scalar tail); inputs of
// one element are loaded once before the loop; others use broadcast offsets
// baked from `space`. An iota is computed per element from the index, like
// a broadcast input (it never takes part in the vector loads).
struct LoopSpec {
  const Graph *body = nullptr;
  Shape space;
  std::vector<std::pair<const Value *, std::string>> inputs;  // -> pointer
  std::vector<std::pair<const Value *, std::string>> outputs; // -> pointer
  std::string numel;  // C expression of the element count
  std::string first;  // the thread's first work unit
  std::string stride; // work units between a thread's iterations
  std::string indent = "  ";
  std::string prefix = "v"; // local names
};
std::string emit_elementwise_loop(const LoopSpec &spec);

// The head of a kernel: a comment, the signature and the thread's first
// index and stride of a 1-D grid-stride loop (`first`, `stride`).
std::string kernel_head(const std::string &name, const std::string &summary,
                        const std::vector<std::string> &params,
                        int block_threads);

// Reduction-kind kernels (codegen/cuda_emit_reduce.cpp): `body` holds one
// sum/mean/amax/softmax/log_softmax node R after an elementwise prologue
// (passes/fuse_elementwise.cpp, "CONTRACT for the code generators"). After
// sum/mean/amax, an elementwise epilogue on R's result may follow (output 0
// is R's result or an epilogue value) and outputs 1.. may be prologue
// values of the reduction input's shape, written as the reduction visits
// each point. Softmax bodies end in R, their only output.
CudaKernel emit_reduction_kernel(const Graph &body, const std::string &name,
                                 const std::string &what);

// The parameter list of node n's kernel: `in<k>` per operand, `out<k>` per
// result.
std::string param_list(const Node &n);

// The kernel of a standalone op (codegen/cuda_emit_layout.cpp); kiln::Error
// for an op that has none.
CudaKernel emit_layout_kernel(const Node &n, const std::string &name);

} // namespace kiln::cuda::detail
