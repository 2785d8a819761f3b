#include "ir/builder.h"

#include "ir/error.h"

namespace kiln {

Node *Builder::create(Op op, std::vector<Value *> operands, Attrs attrs,
                      std::vector<Type> declared, std::unique_ptr<Graph> body) {
  const OpInfo &info = op_info(op);
  std::vector<Type> types;
  try {
    if (info.arity >= 0 && static_cast<int>(operands.size()) != info.arity)
      fail("{} expects {} operands, got {}", info.name, info.arity,
           operands.size());
    // The attribute schema (ir/ops.def) before inference, which reads them:
    // a misspelled attribute is an error here, not a silent default.
    check_attrs(info, attrs);
    std::vector<Type> in;
    for (Value *v : operands)
      in.push_back(v->type);
    types = info.infer(info.name, in, attrs, declared);
    // A result too large to index (broadcasting two huge shapes) is an
    // error here rather than an overflow wherever its size is used.
    for (const Type &t : types)
      (void)t.numel();
  } catch (const Error &e) {
    if (scope_.empty())
      throw;
    throw Error(fmt::format("{}: {}", scope_, e.what()));
  }
  Node *n = g_.insert_before(pos_, op, std::move(operands), std::move(types),
                             std::move(attrs), std::move(body));
  n->loc.scope = scope_;
  return n;
}

Value *Builder::constant(double value, Type type) {
  return create(Op::Constant, {}, {{"value", value}}, {std::move(type)})
      ->result();
}

Value *Builder::random_uniform(Value *seed, Value *offset, Type type) {
  return create(Op::RandomUniform, {seed, offset}, {}, {std::move(type)})
      ->result();
}

Value *Builder::iota(Type type, int axis) {
  return create(Op::Iota, {}, {{"axis", int64_t{axis}}}, {std::move(type)})
      ->result();
}

Value *Builder::cast(Value *x, DType to) {
  if (x->type.dtype == to)
    return x;
  return op(Op::Cast, {x}, {{"dtype", std::string(dtype_name(to))}});
}

Value *Builder::mul(Value *x, double s) {
  return mul(x, scalar(s, x->type.dtype));
}
Value *Builder::add(Value *x, double s) {
  return add(x, scalar(s, x->type.dtype));
}

static Attrs reduce_attrs(std::vector<int64_t> axes, bool keepdims) {
  Attrs a;
  if (!axes.empty())
    a.set("axes", std::move(axes));
  if (keepdims)
    a.set("keepdims", true);
  return a;
}

Value *Builder::sum(Value *x, std::vector<int64_t> axes, bool keepdims) {
  return op(Op::Sum, {x}, reduce_attrs(std::move(axes), keepdims));
}
Value *Builder::mean(Value *x, std::vector<int64_t> axes, bool keepdims) {
  return op(Op::Mean, {x}, reduce_attrs(std::move(axes), keepdims));
}
Value *Builder::amax(Value *x, std::vector<int64_t> axes, bool keepdims) {
  return op(Op::Amax, {x}, reduce_attrs(std::move(axes), keepdims));
}
Value *Builder::log_softmax(Value *x, int64_t axis) {
  return op(Op::LogSoftmax, {x}, {{"axis", axis}});
}
Value *Builder::softmax(Value *x, int64_t axis) {
  return op(Op::Softmax, {x}, {{"axis", axis}});
}

Value *Builder::transpose(Value *x, std::vector<int64_t> perm) {
  return op(Op::Transpose, {x}, {{"perm", std::move(perm)}});
}

Value *Builder::transpose(Value *x) {
  int r = x->type.rank();
  if (r < 2)
    fail("{}transpose needs rank >= 2, got {}",
         scope_.empty() ? "" : scope_ + ": ", x->type.str());
  std::vector<int64_t> perm(r);
  for (int i = 0; i < r; ++i)
    perm[i] = i;
  std::swap(perm[r - 1], perm[r - 2]);
  return transpose(x, std::move(perm));
}

Value *Builder::reshape(Value *x, Shape shape) {
  int64_t known = 1;
  int infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && infer_at < 0)
      infer_at = static_cast<int>(i);
    else if (__builtin_mul_overflow(known, shape[i], &known))
      known = 0; // too large: infer_reshape says so
  }
  if (infer_at >= 0 && known > 0 && x->type.numel() % known == 0)
    shape[infer_at] = x->type.numel() / known;
  if (shape == x->type.shape)
    return x;
  return op(Op::Reshape, {x}, {{"shape", std::move(shape)}});
}

Value *Builder::broadcast_to(Value *x, Shape shape) {
  if (shape == x->type.shape)
    return x;
  return op(Op::BroadcastTo, {x}, {{"shape", std::move(shape)}});
}

Value *Builder::one_hot(Value *labels, int64_t num_classes, DType dtype) {
  return op(Op::OneHot, {labels},
            {{"num_classes", num_classes},
             {"dtype", std::string(dtype_name(dtype))}});
}

Value *Builder::sum_to(Value *x, const Shape &shape) {
  const Shape &from = x->type.shape;
  if (from == shape)
    return x;
  size_t lead = from.size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < from.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && from[i] != 1))
      axes.push_back(static_cast<int64_t>(i));
  Value *s = axes.empty() ? x : sum(x, axes, /*keepdims=*/true);
  return reshape(s, shape);
}

} // namespace kiln
