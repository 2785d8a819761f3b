// Shape and dtype inference of every op of the table (ir/ops.def), valid and
// invalid, with the exact error text.
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/op.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

namespace kiln {
namespace {

Type f32(Shape s) { return {DType::f32, std::move(s)}; }
Type f64(Shape s) { return {DType::f64, std::move(s)}; }
Type i32(Shape s) { return {DType::i32, std::move(s)}; }
Type i64(Shape s) { return {DType::i64, std::move(s)}; }
Type boolean(Shape s) { return {DType::boolean, std::move(s)}; }

std::vector<Type> infer(Op op, std::vector<Type> in, Attrs attrs = {},
                        std::vector<Type> declared = {}) {
  return op_info(op).infer(op_name(op), in, attrs, declared);
}

Type infer1(Op op, std::vector<Type> in, Attrs attrs = {},
            std::vector<Type> declared = {}) {
  auto r = infer(op, std::move(in), std::move(attrs), std::move(declared));
  EXPECT_EQ(r.size(), 1u);
  return r.at(0);
}

std::string infer_error(Op op, std::vector<Type> in, Attrs attrs = {},
                        std::vector<Type> declared = {}) {
  try {
    infer(op, std::move(in), std::move(attrs), std::move(declared));
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

// One valid example per op; the last test checks that the table is covered.
struct Example {
  Op op;
  std::vector<Type> in;
  Attrs attrs;
  std::vector<Type> declared;
  std::vector<Type> expected;
};

std::vector<Example> examples() {
  std::vector<Example> ex = {
      {Op::Constant, {}, {{"value", 1.5}}, {f32({2, 3})}, {f32({2, 3})}},
      {Op::RandomUniform, {i64({}), i64({})}, {}, {f64({4})}, {f64({4})}},
      {Op::Cast, {f32({2, 3})}, {{"dtype", "i32"}}, {}, {i32({2, 3})}},
      {Op::Where, {boolean({2, 1}), f32({3}), f32({})}, {}, {}, {f32({2, 3})}},
      {Op::Sum,
       {f32({2, 3, 4})},
       {{"axes", std::vector<int64_t>{1}}},
       {},
       {f32({2, 4})}},
      {Op::Mean, {f64({2, 3, 4})}, {}, {}, {f64({})}},
      {Op::Amax,
       {i32({2, 3, 4})},
       {{"axes", std::vector<int64_t>{-1, 0}}, {"keepdims", true}},
       {},
       {i32({1, 3, 1})}},
      {Op::LogSoftmax,
       {f32({2, 3})},
       {{"axis", int64_t{0}}},
       {},
       {f32({2, 3})}},
      {Op::Softmax, {f64({2, 3})}, {}, {}, {f64({2, 3})}},
      {Op::Matmul, {f32({64, 128}), f32({128, 256})}, {}, {}, {f32({64, 256})}},
      {Op::Transpose,
       {f32({2, 3, 4})},
       {{"perm", std::vector<int64_t>{2, 0, 1}}},
       {},
       {f32({4, 2, 3})}},
      {Op::Reshape,
       {i64({2, 3, 4})},
       {{"shape", std::vector<int64_t>{6, 4}}},
       {},
       {i64({6, 4})}},
      {Op::BroadcastTo,
       {f32({3})},
       {{"shape", std::vector<int64_t>{2, 3}}},
       {},
       {f32({2, 3})}},
      {Op::Concat,
       {f32({2, 3}), f32({2, 5}), f32({2, 1})},
       {{"axis", int64_t{-1}}},
       {},
       {f32({2, 9})}},
      {Op::Slice,
       {i64({4, 10})},
       {{"starts", std::vector<int64_t>{-3, 1}},
        {"stops", std::vector<int64_t>{100, -1}},
        {"steps", std::vector<int64_t>{2, 3}}},
       {},
       {i64({2, 3})}},
      {Op::Pad,
       {f64({2, 3})},
       {{"pads", std::vector<int64_t>{1, 0, 2, 3}},
        {"interior", std::vector<int64_t>{0, 2}}},
       {},
       {f64({3, 12})}},
      {Op::Iota, {}, {{"axis", int64_t{1}}}, {i32({2, 3})}, {i32({2, 3})}},
      {Op::OneHot,
       {i32({4})},
       {{"num_classes", int64_t{10}}},
       {},
       {f32({4, 10})}},
      {Op::Conv2d,
       {f32({2, 4, 7, 6}), f32({6, 2, 3, 3})},
       {{"stride", std::vector<int64_t>{2, 1}},
        {"padding", std::vector<int64_t>{1, 2}},
        {"dilation", std::vector<int64_t>{1, 2}},
        {"groups", int64_t{2}}},
       {},
       {f32({2, 6, 4, 6})}},
      {Op::Im2col,
       {f64({2, 4, 7, 6})},
       {{"kernel", std::vector<int64_t>{3, 3}},
        {"padding", std::vector<int64_t>{1, 1}},
        {"groups", int64_t{2}}},
       {},
       {f64({2, 2, 18, 42})}},
      {Op::Col2im,
       {f64({2, 2, 18, 42})},
       {{"kernel", std::vector<int64_t>{3, 3}},
        {"padding", std::vector<int64_t>{1, 1}},
        {"size", std::vector<int64_t>{7, 6}}},
       {},
       {f64({2, 4, 7, 6})}},
      {Op::MaxPool2d,
       {f32({2, 4, 7, 6})},
       {{"kernel", std::vector<int64_t>{2, 2}}},
       {},
       {f32({2, 4, 3, 3})}},
      {Op::MaxPool2dGrad,
       {f32({2, 4, 7, 6}), f32({2, 4, 3, 3})},
       {{"kernel", std::vector<int64_t>{2, 2}}},
       {},
       {f32({2, 4, 7, 6})}},
      {Op::AvgPool2d,
       {f64({1, 3, 5, 5})},
       {{"kernel", std::vector<int64_t>{3, 2}},
        {"stride", std::vector<int64_t>{1, 2}},
        {"padding", std::vector<int64_t>{1, 1}}},
       {},
       {f64({1, 3, 5, 3})}},
      {Op::Gather,
       {f32({5, 3}), i64({2, 4})},
       {{"axis", int64_t{1}}},
       {},
       {f32({5, 2, 4})}},
      {Op::ScatterAdd,
       {i32({4}), f64({4, 3})},
       {{"size", int64_t{7}}},
       {},
       {f64({7, 3})}},
      {Op::Fused,
       {f32({2}), f32({2})},
       {{"kind", "elementwise"}},
       {f32({2}), f64({})},
       {f32({2}), f64({})}},
  };
  for (Op op : {Op::Neg, Op::Abs, Op::Relu})
    ex.push_back({op, {i32({2, 3})}, {}, {}, {i32({2, 3})}});
  for (Op op : {Op::Exp, Op::Log, Op::Sqrt, Op::Rsqrt, Op::Tanh, Op::Sigmoid,
                Op::Erf, Op::Gelu})
    ex.push_back({op, {f64({3})}, {}, {}, {f64({3})}});
  ex.push_back(
      {Op::Clamp, {i32({2, 3})}, {{"min", int64_t{0}}}, {}, {i32({2, 3})}});
  for (Op op : {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Max, Op::Min})
    ex.push_back({op, {f32({2, 1}), f32({3})}, {}, {}, {f32({2, 3})}});
  ex.push_back(
      {Op::Pow, {f64({4, 1, 2}), f64({3, 1})}, {}, {}, {f64({4, 3, 2})}});
  for (Op op : {Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge})
    ex.push_back({op, {i32({2, 1}), i32({1, 3})}, {}, {}, {boolean({2, 3})}});
  return ex;
}

TEST(Infer, EveryOpHasAValidExample) {
  std::set<Op> seen;
  for (const Example &e : examples()) {
    SCOPED_TRACE(std::string(op_name(e.op)));
    seen.insert(e.op);
    std::vector<Type> got;
    ASSERT_NO_THROW(got = infer(e.op, e.in, e.attrs, e.declared));
    EXPECT_EQ(got, e.expected);
  }
  for (int i = 0; i < kNumOps; ++i)
    EXPECT_TRUE(seen.count(static_cast<Op>(i)))
        << "no inference example for op " << op_name(static_cast<Op>(i));
}

TEST(Infer, ConcatSlicePadErrors) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(infer_error(Op::Concat, {f32({2, 3})}, {{"axis", int64_t{-3}}}),
            "concat axis -3 is out of range for rank 2");
  EXPECT_EQ(infer_error(Op::Concat, {f32({})}),
            "concat expects operands of rank >= 1, got f32[]");
  EXPECT_EQ(infer_error(Op::Concat, {f32({2, 3}), f32({2, 3, 1})}),
            "concat along axis 0: operand 1 is f32[2,3,1], operand 0 is "
            "f32[2,3] (shapes must match except along the axis)");
  EXPECT_EQ(infer_error(Op::Concat, {f32({2}), f64({2})}),
            "concat operands must have one dtype, got f32[2] (operand 0) and "
            "f64[2] (operand 1)");
  EXPECT_EQ(infer_error(Op::Slice, {f32({2, 3})},
                        {{"starts", V{0}}, {"stops", V{1}}}),
            "slice of a rank-2 operand needs 2 starts and stops, got 1 and 1");
  EXPECT_EQ(infer_error(Op::Slice, {f32({4})},
                        {{"starts", V{0}}, {"stops", V{4}}, {"steps", V{-1}}}),
            "slice step -1 on axis 0 is not supported (steps must be >= 1)");
  EXPECT_EQ(
      infer_error(Op::Slice, {f32({4})}, {{"starts", V{-1}}, {"stops", V{-2}}}),
      "slice [-1:-2:1] of axis 0 (size 4) selects no elements");
  EXPECT_EQ(infer_error(Op::Pad, {f32({4})}, {{"pads", V{1, -2}}}),
            "pad amounts must be >= 0, got pads [1, -2] interior [0]");
  EXPECT_EQ(infer_error(Op::Pad, {f32({4})},
                        {{"pads", V{1, 2}}, {"interior", V{1, 1}}}),
            "pad of a rank-1 operand needs an interior entry per axis, got 2");
  EXPECT_EQ(infer_error(Op::Pad, {boolean({4})},
                        {{"pads", V{1, 2}}, {"value", int64_t{2}}}),
            "pad value 2 is not representable in bool");
}

TEST(Infer, ExplicitlyTypedOpsNeedADeclaredType) {
  EXPECT_EQ(infer_error(Op::Constant, {}, {{"value", 1.0}}),
            "constant needs its result type");
  EXPECT_EQ(infer_error(Op::Fused, {f32({2})}), "fused needs its result type");
}

TEST(Infer, Iota) {
  EXPECT_EQ(infer1(Op::Iota, {}, {}, {f64({5})}), f64({5}));
  EXPECT_EQ(infer_error(Op::Iota, {}, {{"axis", int64_t{2}}}, {f32({2, 3})}),
            "iota axis 2 is out of range for f32[2,3]");
  EXPECT_EQ(infer_error(Op::Iota, {}, {}, {boolean({2})}),
            "iota needs a numeric result type, got bool[2]");
  EXPECT_EQ(infer_error(Op::Iota, {}, {}, {f32({})}),
            "iota needs a result of rank >= 1, got f32[]");
}

TEST(Infer, RandomUniform) {
  EXPECT_EQ(infer1(Op::RandomUniform, {i64({}), i64({})}, {}, {f32({2, 5})}),
            f32({2, 5}));
  EXPECT_EQ(infer_error(Op::RandomUniform, {i32({}), i64({})}, {}, {f32({2})}),
            "random_uniform expects i64[] seed and offset, got i32[]");
  EXPECT_EQ(infer_error(Op::RandomUniform, {i64({}), i64({1})}, {}, {f32({2})}),
            "random_uniform expects i64[] seed and offset, got i64[1]");
  EXPECT_EQ(infer_error(Op::RandomUniform, {i64({}), i64({})}, {}, {i32({2})}),
            "random_uniform needs one float result type");
  EXPECT_EQ(infer_error(Op::RandomUniform, {i64({}), i64({})}, {}, {}),
            "random_uniform needs one float result type");
}

TEST(Infer, Cast) {
  EXPECT_EQ(infer1(Op::Cast, {f64({3})}, {{"dtype", "f32"}}), f32({3}));
  EXPECT_EQ(infer1(Op::Cast, {boolean({3})}, {{"dtype", "f64"}}), f64({3}));
  EXPECT_EQ(infer1(Op::Cast, {f32({})}, {{"dtype", "bool"}}), boolean({}));
  EXPECT_EQ(infer_error(Op::Cast, {f32({3})}, {{"dtype", "f16"}}),
            "unknown dtype 'f16' in attribute 'dtype'");
  EXPECT_EQ(infer_error(Op::Cast, {f32({3})}), "missing attribute 'dtype'");
  EXPECT_EQ(infer_error(Op::Cast, {f32({3})}, {{"dtype", int64_t{1}}}),
            "attribute 'dtype' must be a string");
}

TEST(Infer, UnaryNumeric) {
  for (Op op : {Op::Neg, Op::Abs, Op::Relu}) {
    SCOPED_TRACE(std::string(op_name(op)));
    EXPECT_EQ(infer1(op, {f32({2, 3})}), f32({2, 3}));
    EXPECT_EQ(infer1(op, {i64({})}), i64({}));
    EXPECT_EQ(
        infer_error(op, {boolean({2})}),
        fmt::format("{} expects a numeric operand, got bool[2]", op_name(op)));
  }
}

TEST(Infer, UnaryFloat) {
  for (Op op : {Op::Exp, Op::Log, Op::Sqrt, Op::Rsqrt, Op::Tanh, Op::Sigmoid}) {
    SCOPED_TRACE(std::string(op_name(op)));
    EXPECT_EQ(infer1(op, {f32({2, 3})}), f32({2, 3}));
    EXPECT_EQ(infer1(op, {f64({})}), f64({}));
    EXPECT_EQ(
        infer_error(op, {i32({3})}),
        fmt::format("{} expects a float operand, got i32[3]", op_name(op)));
    EXPECT_EQ(
        infer_error(op, {boolean({3})}),
        fmt::format("{} expects a float operand, got bool[3]", op_name(op)));
  }
}

TEST(Infer, BinaryArithmetic) {
  for (Op op : {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Max, Op::Min}) {
    SCOPED_TRACE(std::string(op_name(op)));
    EXPECT_EQ(infer1(op, {f32({2, 3}), f32({2, 3})}), f32({2, 3}));
    EXPECT_EQ(infer1(op, {f32({}), f32({4, 5})}), f32({4, 5}));
    EXPECT_EQ(infer1(op, {f64({4, 1, 6}), f64({5, 1})}), f64({4, 5, 6}));
    EXPECT_EQ(infer1(op, {i32({2, 1}), i32({1, 3})}), i32({2, 3}));
    std::string_view name = op_name(op);
    EXPECT_EQ(infer_error(op, {f32({2}), f64({2})}),
              fmt::format("{} operands must have one dtype, got f32[2] and "
                          "f64[2]",
                          name));
    EXPECT_EQ(infer_error(op, {f32({2, 3}), f32({4})}),
              fmt::format("{} cannot broadcast [2,3] with [4]", name));
    EXPECT_EQ(infer_error(op, {boolean({2}), boolean({2})}),
              fmt::format("{} expects numeric operands, got bool[2]", name));
  }
}

TEST(Infer, Pow) {
  EXPECT_EQ(infer1(Op::Pow, {f32({2, 3}), f32({})}), f32({2, 3}));
  EXPECT_EQ(infer_error(Op::Pow, {i32({2}), i32({2})}),
            "pow expects a float operand, got i32[2]");
  EXPECT_EQ(infer_error(Op::Pow, {f32({2}), f32({3})}),
            "pow cannot broadcast [2] with [3]");
  EXPECT_EQ(infer_error(Op::Pow, {f32({2}), f64({2})}),
            "pow operands must have one dtype, got f32[2] and f64[2]");
}

TEST(Infer, Comparisons) {
  for (Op op : {Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge}) {
    SCOPED_TRACE(std::string(op_name(op)));
    EXPECT_EQ(infer1(op, {f32({2, 1}), f32({3})}), boolean({2, 3}));
    EXPECT_EQ(infer1(op, {boolean({2}), boolean({2})}), boolean({2}));
    EXPECT_EQ(infer_error(op, {f32({2}), i32({2})}),
              fmt::format("{} operands must have one dtype, got f32[2] and "
                          "i32[2]",
                          op_name(op)));
    EXPECT_EQ(infer_error(op, {f32({2}), f32({3})}),
              fmt::format("{} cannot broadcast [2] with [3]", op_name(op)));
  }
}

TEST(Infer, Where) {
  EXPECT_EQ(infer1(Op::Where, {boolean({}), i32({2}), i32({2})}), i32({2}));
  EXPECT_EQ(infer1(Op::Where, {boolean({4, 1, 1}), f64({3, 1}), f64({2})}),
            f64({4, 3, 2}));
  EXPECT_EQ(infer_error(Op::Where, {f32({2}), f32({2}), f32({2})}),
            "where expects a bool condition, got f32[2]");
  EXPECT_EQ(infer_error(Op::Where, {boolean({2}), f32({2}), f64({2})}),
            "where operands must have one dtype, got f32[2] and f64[2]");
  EXPECT_EQ(infer_error(Op::Where, {boolean({2}), f32({3}), f32({3})}),
            "where cannot broadcast [2] with [3]");
  EXPECT_EQ(infer_error(Op::Where, {boolean({2}), f32({2}), f32({3})}),
            "where cannot broadcast [2] with [3]");
}

TEST(Infer, Reductions) {
  using Axes = std::vector<int64_t>;
  for (Op op : {Op::Sum, Op::Mean, Op::Amax}) {
    SCOPED_TRACE(std::string(op_name(op)));
    Type x = f32({2, 3, 4});
    EXPECT_EQ(infer1(op, {x}), f32({}));
    EXPECT_EQ(infer1(op, {x}, {{"keepdims", true}}), f32({1, 1, 1}));
    EXPECT_EQ(infer1(op, {x}, {{"axes", Axes{0}}}), f32({3, 4}));
    EXPECT_EQ(infer1(op, {x}, {{"axes", Axes{1}}}), f32({2, 4}));
    EXPECT_EQ(infer1(op, {x}, {{"axes", Axes{2}}}), f32({2, 3}));
    EXPECT_EQ(infer1(op, {x}, {{"axes", Axes{-1}}, {"keepdims", true}}),
              f32({2, 3, 1}));
    EXPECT_EQ(infer1(op, {x}, {{"axes", Axes{2, 0}}}), f32({3}));
    EXPECT_EQ(infer1(op, {x}, {{"axes", Axes{0, 1, 2}}}), f32({}));
    EXPECT_EQ(infer1(op, {f64({})}), f64({}));
    EXPECT_EQ(infer_error(op, {x}, {{"axes", Axes{0, -3}}}),
              "reduction axes must not repeat");
    EXPECT_EQ(infer_error(op, {x}, {{"axes", Axes{3}}}),
              "axis 3 is out of range for rank 3");
    EXPECT_EQ(infer_error(op, {x}, {{"axes", Axes{-4}}}),
              "axis -4 is out of range for rank 3");
    EXPECT_EQ(infer_error(op, {f32({})}, {{"axes", Axes{0}}}),
              "axis 0 is out of range for rank 0");
    EXPECT_EQ(
        infer_error(op, {boolean({2})}),
        fmt::format("{} expects a numeric operand, got bool[2]", op_name(op)));
    EXPECT_EQ(infer_error(op, {x}, {{"keepdims", int64_t{1}}}),
              fmt::format("{} attribute 'keepdims' must be true or false, "
                          "got 1",
                          op_name(op)));
  }
}

TEST(Infer, Softmax) {
  for (Op op : {Op::Softmax, Op::LogSoftmax}) {
    SCOPED_TRACE(std::string(op_name(op)));
    EXPECT_EQ(infer1(op, {f32({2, 3})}), f32({2, 3}));
    EXPECT_EQ(infer1(op, {f64({2, 3, 4})}, {{"axis", int64_t{-3}}}),
              f64({2, 3, 4}));
    EXPECT_EQ(infer_error(op, {f32({2, 3})}, {{"axis", int64_t{2}}}),
              "axis 2 is out of range for rank 2");
    EXPECT_EQ(infer_error(op, {f32({})}),
              fmt::format("{} expects rank >= 1, got f32[]", op_name(op)));
    EXPECT_EQ(
        infer_error(op, {i32({2})}),
        fmt::format("{} expects a float operand, got i32[2]", op_name(op)));
  }
}

TEST(Infer, Matmul) {
  EXPECT_EQ(infer1(Op::Matmul, {f32({64, 784}), f32({784, 256})}),
            f32({64, 256}));
  // Batched, with the batch axes broadcast.
  EXPECT_EQ(infer1(Op::Matmul, {f64({2, 1, 3, 4}), f64({5, 4, 6})}),
            f64({2, 5, 3, 6}));
  EXPECT_EQ(infer1(Op::Matmul, {f32({3, 4}), f32({7, 4, 2})}), f32({7, 3, 2}));
  EXPECT_EQ(infer_error(Op::Matmul, {f32({64, 128}), f32({256, 10})}),
            "matmul expects [*,256], got [64,128]");
  EXPECT_EQ(infer_error(Op::Matmul, {f32({3}), f32({3, 4})}),
            "matmul expects operands of rank >= 2, got f32[3] and f32[3,4]");
  EXPECT_EQ(infer_error(Op::Matmul, {f32({2, 3}), f32({3})}),
            "matmul expects operands of rank >= 2, got f32[2,3] and f32[3]");
  EXPECT_EQ(infer_error(Op::Matmul, {i32({2, 2}), i32({2, 2})}),
            "matmul expects float operands, got i32[2,2]");
  EXPECT_EQ(infer_error(Op::Matmul, {f32({2, 2}), f64({2, 2})}),
            "matmul operands must have one dtype, got f32[2,2] and f64[2,2]");
  EXPECT_EQ(infer_error(Op::Matmul, {f32({2, 3, 4}), f32({3, 4, 5})}),
            "matmul cannot broadcast [2] with [3]");
}

TEST(Infer, Transpose) {
  using Perm = std::vector<int64_t>;
  EXPECT_EQ(infer1(Op::Transpose, {f32({2, 3})}, {{"perm", Perm{1, 0}}}),
            f32({3, 2}));
  EXPECT_EQ(infer1(Op::Transpose, {f32({2, 3, 4})}, {{"perm", Perm{0, 2, 1}}}),
            f32({2, 4, 3}));
  EXPECT_EQ(
      infer_error(Op::Transpose, {f32({2, 3, 4})}, {{"perm", Perm{0, 1}}}),
      "transpose perm has 2 entries for rank 3");
  EXPECT_EQ(
      infer_error(Op::Transpose, {f32({2, 3, 4})}, {{"perm", Perm{0, 0, 1}}}),
      "transpose perm [0, 0, 1] is not a permutation of 3 axes");
  EXPECT_EQ(
      infer_error(Op::Transpose, {f32({2, 3, 4})}, {{"perm", Perm{0, 1, 3}}}),
      "transpose perm [0, 1, 3] is not a permutation of 3 axes");
  EXPECT_EQ(
      infer_error(Op::Transpose, {f32({2, 3, 4})}, {{"perm", Perm{-1, 0, 1}}}),
      "transpose perm [-1, 0, 1] is not a permutation of 3 axes");
  EXPECT_EQ(infer_error(Op::Transpose, {f32({2, 3})}),
            "missing attribute 'perm'");
}

TEST(Infer, Reshape) {
  using S = std::vector<int64_t>;
  EXPECT_EQ(infer1(Op::Reshape, {f32({2, 3, 4})}, {{"shape", S{6, 4}}}),
            f32({6, 4}));
  EXPECT_EQ(infer1(Op::Reshape, {f32({1})}, {{"shape", S{}}}), f32({}));
  EXPECT_EQ(infer_error(Op::Reshape, {f32({2, 3, 4})}, {{"shape", S{4, 5}}}),
            "reshape cannot turn f32[2,3,4] (24 elements) into [4,5]");
  EXPECT_EQ(infer_error(Op::Reshape, {f32({2, 3, 4})}, {{"shape", S{-2, 4}}}),
            "reshape to [-2,4] has a negative dimension");
}

// One -1 entry takes the size that keeps the element count (torch.reshape).
TEST(Infer, ReshapeInfersOneMinusOne) {
  using S = std::vector<int64_t>;
  EXPECT_EQ(infer1(Op::Reshape, {f32({2, 3, 4})}, {{"shape", S{-1, 4}}}),
            f32({6, 4}));
  EXPECT_EQ(infer1(Op::Reshape, {f32({2, 3, 4})}, {{"shape", S{2, -1}}}),
            f32({2, 12}));
  EXPECT_EQ(infer1(Op::Reshape, {f32({2, 3, 4})}, {{"shape", S{-1}}}),
            f32({24}));
  EXPECT_EQ(infer1(Op::Reshape, {f32({0, 3})}, {{"shape", S{-1, 3}}}),
            f32({0, 3}));
  EXPECT_EQ(infer_error(Op::Reshape, {f32({2, 3, 4})}, {{"shape", S{-1, -1}}}),
            "reshape to [-1,-1] has more than one -1 dimension");
  EXPECT_EQ(infer_error(Op::Reshape, {f32({2, 3, 4})}, {{"shape", S{-1, 5}}}),
            "reshape cannot turn f32[2,3,4] (24 elements) into [-1,5]: 24 is "
            "not a multiple of 5");
  EXPECT_EQ(infer_error(Op::Reshape, {f32({0, 3})}, {{"shape", S{0, -1}}}),
            "reshape cannot infer the -1 of [0,-1] for f32[0,3]: the other "
            "dimensions hold 0 elements");
}

TEST(Infer, GeluAndErfTakeFloats) {
  EXPECT_EQ(infer1(Op::Gelu, {f32({2})}, {{"approximate", "tanh"}}), f32({2}));
  EXPECT_EQ(infer_error(Op::Gelu, {i32({2})}),
            "gelu expects a float operand, got i32[2]");
  EXPECT_EQ(infer_error(Op::Erf, {i64({2})}),
            "erf expects a float operand, got i64[2]");
  EXPECT_EQ(infer_error(Op::Gelu, {f32({2})}, {{"approximate", "fast"}}),
            "gelu attribute 'approximate' must be \"none\" or \"tanh\", got "
            "\"fast\"");
}

TEST(Infer, ClampNeedsABoundOfTheOperandsKind) {
  EXPECT_EQ(infer1(Op::Clamp, {f32({2})}, {{"max", 0.5}}), f32({2}));
  EXPECT_EQ(infer1(Op::Clamp, {i64({2})}, {{"min", -1.0}, {"max", 3.0}}),
            i64({2}));
  EXPECT_EQ(infer_error(Op::Clamp, {f32({2})}),
            "clamp needs attribute 'min' or 'max' (or both)");
  EXPECT_EQ(infer_error(Op::Clamp, {i32({2})}, {{"min", 0.5}}),
            "clamp of i32[2] needs integer bounds, got min = 0.5");
  EXPECT_EQ(infer_error(Op::Clamp, {boolean({2})}, {{"min", int64_t{0}}}),
            "clamp expects a numeric operand, got bool[2]");
}

TEST(Infer, BroadcastTo) {
  using S = std::vector<int64_t>;
  EXPECT_EQ(infer1(Op::BroadcastTo, {i32({})}, {{"shape", S{2, 2}}}),
            i32({2, 2}));
  EXPECT_EQ(infer1(Op::BroadcastTo, {f32({2, 1})}, {{"shape", S{3, 2, 5}}}),
            f32({3, 2, 5}));
  EXPECT_EQ(infer_error(Op::BroadcastTo, {f32({2, 3})}, {{"shape", S{3}}}),
            "broadcast_to cannot broadcast [2,3] to [3]");
  EXPECT_EQ(infer_error(Op::BroadcastTo, {f32({2})}, {{"shape", S{3}}}),
            "broadcast_to cannot broadcast [2] to [3]");
}

TEST(Infer, OneHot) {
  EXPECT_EQ(infer1(Op::OneHot, {i64({2, 3})}, {{"num_classes", int64_t{4}}}),
            f32({2, 3, 4}));
  EXPECT_EQ(infer1(Op::OneHot, {i32({5})},
                   {{"num_classes", int64_t{3}}, {"dtype", "f64"}}),
            f64({5, 3}));
  EXPECT_EQ(infer_error(Op::OneHot, {f32({4})}, {{"num_classes", int64_t{3}}}),
            "one_hot expects integer labels, got f32[4]");
  EXPECT_EQ(infer_error(Op::OneHot, {i32({4})}, {{"num_classes", int64_t{0}}}),
            "one_hot needs num_classes > 0, got 0");
  EXPECT_EQ(infer_error(Op::OneHot, {i32({4})}),
            "missing attribute 'num_classes'");
  EXPECT_EQ(infer_error(Op::OneHot, {i32({4})},
                        {{"num_classes", int64_t{3}}, {"dtype", "x"}}),
            "one_hot attribute 'dtype' must be a dtype name (\"f32\", \"f64\", "
            "\"i32\", \"i64\" or \"bool\"), got \"x\"");
}

// The Builder runs the same inference, checks arity and prefixes its scope.
TEST(Infer, BuilderReportsErrorsWithScope) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({64, 128}));
  Value *w = g.add_input("w", f32({256, 10}), InputKind::param);
  try {
    b.matmul(x, w);
    FAIL() << "expected kiln::Error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "matmul expects [*,256], got [64,128]");
  }
  b.set_scope("fc2 (Linear)");
  try {
    b.matmul(x, w);
    FAIL() << "expected kiln::Error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(),
                 "fc2 (Linear): matmul expects [*,256], got [64,128]");
  }
  try {
    b.op(Op::Add, {x});
    FAIL() << "expected kiln::Error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "fc2 (Linear): add expects 2 operands, got 1");
  }
  // Nothing was appended by the failed calls.
  EXPECT_TRUE(g.nodes().empty());
}

} // namespace
} // namespace kiln
