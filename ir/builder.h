// Builder: creates nodes with inferred, checked types. The frontend traces
// through it and the VJPs of the op table are written with it.
#pragma once

#include "ir/graph.h"

#include <string>
#include <vector>

namespace kiln {

class Builder {
public:
  explicit Builder(Graph &g) : g_(g) {}

  Graph &graph() { return g_; }
  // New nodes go before `pos`; nullptr (the default) appends.
  void set_insert_point(const Node *pos) { pos_ = pos; }
  // A prefix for error messages, e.g. "fc2 (Linear)".
  void set_scope(std::string scope) { scope_ = std::move(scope); }
  const std::string &scope() const { return scope_; }

  // Any op: infers the result types (or takes `declared` for explicitly
  // typed ops) and appends the node. Throws kiln::Error on a type error,
  // prefixed with the scope.
  Node *create(Op op, std::vector<Value *> operands, Attrs attrs = {},
               std::vector<Type> declared = {},
               std::unique_ptr<Graph> body = nullptr);
  Value *op(Op op, std::vector<Value *> operands, Attrs attrs = {}) {
    return create(op, std::move(operands), std::move(attrs))->result();
  }

  // Sources.
  Value *constant(double value, Type type);
  Value *scalar(double value, DType dtype) {
    return constant(value, {dtype, {}});
  }
  Value *random_uniform(Value *seed, Value *offset, Type type);
  // Element (i_0, ..., i_n) of the result is i_axis.
  Value *iota(Type type, int axis);

  // Elementwise.
  Value *cast(Value *x, DType to);
  Value *neg(Value *x) { return op(Op::Neg, {x}); }
  Value *abs(Value *x) { return op(Op::Abs, {x}); }
  Value *exp(Value *x) { return op(Op::Exp, {x}); }
  Value *log(Value *x) { return op(Op::Log, {x}); }
  Value *sqrt(Value *x) { return op(Op::Sqrt, {x}); }
  Value *rsqrt(Value *x) { return op(Op::Rsqrt, {x}); }
  Value *tanh(Value *x) { return op(Op::Tanh, {x}); }
  Value *sigmoid(Value *x) { return op(Op::Sigmoid, {x}); }
  Value *relu(Value *x) { return op(Op::Relu, {x}); }
  Value *add(Value *a, Value *b) { return op(Op::Add, {a, b}); }
  Value *sub(Value *a, Value *b) { return op(Op::Sub, {a, b}); }
  Value *mul(Value *a, Value *b) { return op(Op::Mul, {a, b}); }
  Value *div(Value *a, Value *b) { return op(Op::Div, {a, b}); }
  Value *pow(Value *a, Value *b) { return op(Op::Pow, {a, b}); }
  Value *max(Value *a, Value *b) { return op(Op::Max, {a, b}); }
  Value *min(Value *a, Value *b) { return op(Op::Min, {a, b}); }
  Value *eq(Value *a, Value *b) { return op(Op::Eq, {a, b}); }
  Value *ne(Value *a, Value *b) { return op(Op::Ne, {a, b}); }
  Value *lt(Value *a, Value *b) { return op(Op::Lt, {a, b}); }
  Value *le(Value *a, Value *b) { return op(Op::Le, {a, b}); }
  Value *gt(Value *a, Value *b) { return op(Op::Gt, {a, b}); }
  Value *ge(Value *a, Value *b) { return op(Op::Ge, {a, b}); }
  Value *where(Value *c, Value *a, Value *b) {
    return op(Op::Where, {c, a, b});
  }
  // x * s and x + s for a scalar s of x's dtype.
  Value *mul(Value *x, double s);
  Value *add(Value *x, double s);

  // Reductions; empty axes means all axes.
  Value *sum(Value *x, std::vector<int64_t> axes = {}, bool keepdims = false);
  Value *mean(Value *x, std::vector<int64_t> axes = {}, bool keepdims = false);
  Value *amax(Value *x, std::vector<int64_t> axes = {}, bool keepdims = false);
  Value *log_softmax(Value *x, int64_t axis = -1);
  Value *softmax(Value *x, int64_t axis = -1);

  // Layout and linear algebra.
  Value *matmul(Value *a, Value *b) { return op(Op::Matmul, {a, b}); }
  Value *transpose(Value *x, std::vector<int64_t> perm);
  Value *transpose(Value *x);            // swap the last two axes
  Value *reshape(Value *x, Shape shape); // one -1 entry is inferred
  Value *broadcast_to(Value *x, Shape shape);
  Value *one_hot(Value *labels, int64_t num_classes, DType dtype = DType::f32);

  // Sums x over the axes that broadcasting added or stretched so that the
  // result has `shape` (the gradient of a broadcast). Identity when equal.
  Value *sum_to(Value *x, const Shape &shape);

private:
  Graph &g_;
  const Node *pos_ = nullptr;
  std::string scope_;
};

} // namespace kiln
