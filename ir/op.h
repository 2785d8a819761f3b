// Op identifiers and the op table's entry type. The entries themselves are in
// ir/ops.def; this header turns them into the Op enum and OpInfo records.
#pragma once

#include "ir/attrs.h"
#include "ir/types.h"

#include <limits>
#include <optional>
#include <span>
#include <string>
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
  // Cheap enough that fuse-elementwise recomputes it in every consumer
  // kernel rather than storing its value once (not exp, log, div, ...).
  kCheapToRecompute = 1u << 6,
  // How a plain reduction (sum, mean, amax) combines elements: its combiner
  // and identity, read by the interpreter and both code generators.
  kCombineAdd = 1u << 7,     // identity 0
  kCombineMax = 1u << 8,     // identity -inf (the lowest value)
  kDividesByCount = 1u << 9, // the result is divided by the element count
  // The execution plan gives it a kernel of its own (plan/lower.cpp): a host
  // loop on the CPU, a generated kernel on CUDA (codegen/cuda_emit_layout).
  kStandaloneKernel = 1u << 10,
};

// The attribute schema. Each op declares in ir/ops.def the attributes it
// takes: name, type, and whether it is required, optional (absence has a
// meaning, e.g. a reduction's `axes`) or defaulted. The parser, the Builder
// and the verifier reject unknown, missing and mistyped attributes, and the
// attr_* accessors below read the defaults from here, so that no pass,
// emitter or backend repeats them.
enum class AttrType : uint8_t {
  Int,    // an integer
  Number, // an integer or a float, read as a double
  Ints,   // a list of integers
  Str,    // a string
  Bool,   // true or false
  DType,  // a string naming a dtype ("f32")
};

struct AttrSpec {
  enum Presence : uint8_t { Required, Optional, Defaulted };
  std::string_view name = {};
  AttrType type = AttrType::Int;
  Presence presence = Required;
  // The default of a Defaulted attribute, by type.
  int64_t int_default = 0;
  bool bool_default = false;
  std::string_view str_default = {};
};

// The spellings used in ir/ops.def: IntAttr("num_classes") is required,
// IntAttr("axis", -1) defaults to -1, OptIntsAttr("axes") may be absent.
constexpr AttrSpec IntAttr(std::string_view n) {
  return {.name = n, .type = AttrType::Int};
}
constexpr AttrSpec IntAttr(std::string_view n, int64_t d) {
  return {.name = n,
          .type = AttrType::Int,
          .presence = AttrSpec::Defaulted,
          .int_default = d};
}
constexpr AttrSpec NumberAttr(std::string_view n) {
  return {.name = n, .type = AttrType::Number};
}
constexpr AttrSpec OptNumberAttr(std::string_view n) {
  return {.name = n, .type = AttrType::Number, .presence = AttrSpec::Optional};
}
constexpr AttrSpec IntsAttr(std::string_view n) {
  return {.name = n, .type = AttrType::Ints};
}
constexpr AttrSpec OptIntsAttr(std::string_view n) {
  return {.name = n, .type = AttrType::Ints, .presence = AttrSpec::Optional};
}
constexpr AttrSpec StrAttr(std::string_view n) {
  return {.name = n, .type = AttrType::Str};
}
constexpr AttrSpec StrAttr(std::string_view n, std::string_view d) {
  return {.name = n,
          .type = AttrType::Str,
          .presence = AttrSpec::Defaulted,
          .str_default = d};
}
constexpr AttrSpec BoolAttr(std::string_view n, bool d) {
  return {.name = n,
          .type = AttrType::Bool,
          .presence = AttrSpec::Defaulted,
          .bool_default = d};
}
constexpr AttrSpec DTypeAttr(std::string_view n) {
  return {.name = n, .type = AttrType::DType};
}
constexpr AttrSpec DTypeAttr(std::string_view n, std::string_view d) {
  return {.name = n,
          .type = AttrType::DType,
          .presence = AttrSpec::Defaulted,
          .str_default = d};
}

// A plain reduction's combiner (kCombineAdd / kCombineMax).
enum class Combiner : uint8_t { none, add, max };

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
  std::span<const AttrSpec> attrs; // the attribute schema

  bool has(OpTrait t) const { return (traits & t) != 0; }
  // The schema entry of attribute `name`, nullptr when the op has none.
  const AttrSpec *attr(std::string_view name) const {
    for (const AttrSpec &a : attrs)
      if (a.name == name)
        return &a;
    return nullptr;
  }
  Combiner combiner() const {
    return has(kCombineAdd)   ? Combiner::add
           : has(kCombineMax) ? Combiner::max
                              : Combiner::none;
  }
  // The value a reduction starts from: 0 for add, -inf for max.
  double reduce_identity() const {
    return combiner() == Combiner::max
               ? -std::numeric_limits<double>::infinity()
               : 0.0;
  }
};

const OpInfo &op_info(Op op);
inline std::string_view op_name(Op op) { return op_info(op).name; }
std::optional<Op> op_by_name(std::string_view name);

// The first way `attrs` breaks op's schema: an unknown attribute (with a
// "did you mean" when one is close), a missing required one, or one of the
// wrong type. `attr` names the attribute; the message names the op and it.
struct AttrProblem {
  std::string attr;
  std::string message;
};
std::optional<AttrProblem> find_attr_problem(const OpInfo &info,
                                             const Attrs &attrs);
// Throws kiln::Error with the first problem's message.
void check_attrs(const OpInfo &info, const Attrs &attrs);

// Attribute `name` of an op, or its schema default when absent. Throws
// kiln::Error when the op declares no such attribute (a bug in the caller)
// or when it is absent and has no default.
int64_t attr_int(Op op, const Attrs &attrs, std::string_view name);
bool attr_bool(Op op, const Attrs &attrs, std::string_view name);
DType attr_dtype(Op op, const Attrs &attrs, std::string_view name);
int64_t attr_int(const Node &n, std::string_view name);
bool attr_bool(const Node &n, std::string_view name);
DType attr_dtype(const Node &n, std::string_view name);

} // namespace kiln
