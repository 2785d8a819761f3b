// Op identifiers and the op table's entry type. The entries themselves are in
// ir/ops.def; this header turns them into the Op enum and OpInfo records.
#pragma once

#include "ir/attrs.h"
#include "ir/types.h"

#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace kiln {

enum class Op : uint16_t {
#define KILN_OP(id, ...) id,
#include "ir/ops.def"
#undef KILN_OP
};

inline constexpr int kNumOps = 0
#define KILN_OP(...) +1
#include "ir/ops.def"
#undef KILN_OP
    ;

enum OpTrait : unsigned {
  kNone = 0,
  kElementwise = 1u << 0, // result[i] depends on operands[i] (broadcast)
  kCommutative = 1u << 1,
  kReduction = 1u << 2,    // reduces along axes (sum, mean, amax, softmax)
  kExplicitType = 1u << 3, // result type is given, not inferred
  kRandom = 1u << 4,       // draws random numbers (never CSE'd or folded)
  // Every result element is a copy of one operand element (layout ops,
  // where, cast): the interpreter keeps i64 values exact through it.
  kMovesValues = 1u << 5,
};

struct Node;
struct Value;
class Builder;
struct HostTensor;

// Result types of an op; throws kiln::Error with a message that names the
// problem (the verifier adds the location). `declared` holds the types the
// text or builder gave, used by kExplicitType ops.
using InferFn = std::vector<Type> (*)(std::string_view op,
                                      std::span<const Type> in,
                                      const Attrs &attrs,
                                      std::span<const Type> declared);
// Gradients of the operands given the gradients of the results (entries may
// be nullptr for results with no gradient); returns one entry per operand,
// nullptr where the operand gets no gradient.
using VjpFn = std::vector<Value *> (*)(Builder &b, const Node &n,
                                       std::span<Value *const> grads);
// Reference implementation on host tensors.
using EvalFn = void (*)(const Node &n, std::span<const HostTensor *const> in,
                        std::vector<HostTensor> &out);

struct OpInfo {
  Op op;
  std::string_view name;
  int arity;
  unsigned traits;
  InferFn infer;
  VjpFn vjp;
  EvalFn eval;
  std::string_view scalar;

  bool has(OpTrait t) const { return (traits & t) != 0; }
};

const OpInfo &op_info(Op op);
inline std::string_view op_name(Op op) { return op_info(op).name; }
std::optional<Op> op_by_name(std::string_view name);

} // namespace kiln
