// gather and scatter_add (ir/gather_ops.cpp): shape inference and its
// errors with the exact text, and the reference interpreter's values
// against hand-computed ones, including an index out of range.
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/interpreter.h"
#include "ir/op.h"
#include "ir/verifier.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using Data = std::vector<double>;

Type f32(Shape s) { return {DType::f32, std::move(s)}; }
Type f64(Shape s) { return {DType::f64, std::move(s)}; }
Type i32(Shape s) { return {DType::i32, std::move(s)}; }
Type i64(Shape s) { return {DType::i64, std::move(s)}; }

Type infer1(Op op, std::vector<Type> in, Attrs attrs) {
  auto r = op_info(op).infer(op_name(op), in, attrs, {});
  EXPECT_EQ(r.size(), 1u);
  return r.at(0);
}

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

std::string infer_error(Op op, std::vector<Type> in, Attrs attrs) {
  return error_of([&] { infer1(op, std::move(in), std::move(attrs)); });
}

Attrs axis(int64_t a) { return {{"axis", a}}; }
Attrs axis_size(int64_t a, int64_t s) { return {{"axis", a}, {"size", s}}; }

TEST(GatherInfer, Shapes) {
  EXPECT_EQ(infer1(Op::Gather, {f32({5, 3}), i32({4})}, {}), f32({4, 3}));
  EXPECT_EQ(infer1(Op::Gather, {f64({5, 3}), i64({2, 6})}, axis(1)),
            f64({5, 2, 6}));
  EXPECT_EQ(infer1(Op::Gather, {f32({5, 3, 2}), i64({7})}, axis(-1)),
            f32({5, 3, 7}));
  EXPECT_EQ(infer1(Op::Gather, {f32({5, 3}), i64({})}, axis(0)), f32({3}));
  EXPECT_EQ(infer1(Op::Gather, {i64({5}), i32({2})}, {}), i64({2}));
  EXPECT_EQ(infer1(Op::ScatterAdd, {i32({4}), f32({4, 3})}, axis_size(0, 7)),
            f32({7, 3}));
  EXPECT_EQ(
      infer1(Op::ScatterAdd, {i64({2, 6}), f64({5, 2, 6})}, axis_size(1, 3)),
      f64({5, 3}));
  EXPECT_EQ(
      infer1(Op::ScatterAdd, {i64({7}), f32({5, 3, 7})}, axis_size(-1, 2)),
      f32({5, 3, 2}));
  EXPECT_EQ(infer1(Op::ScatterAdd, {i64({}), f32({3})}, axis_size(0, 4)),
            f32({4, 3}));
}

TEST(GatherInfer, Errors) {
  EXPECT_EQ(infer_error(Op::Gather, {f32({5, 3}), f32({4})}, {}),
            "gather: indices must be i32 or i64, got f32[4]");
  EXPECT_EQ(infer_error(Op::Gather, {f32({5, 3}), i32({4})}, axis(2)),
            "gather: axis 2 is out of range for an operand of rank 2");
  EXPECT_EQ(infer_error(Op::Gather, {f32({5, 3}), i32({4})}, axis(-3)),
            "gather: axis -3 is out of range for an operand of rank 2");
  EXPECT_EQ(infer_error(Op::Gather, {f32({}), i32({4})}, {}),
            "gather: cannot gather from a scalar f32[]");
  EXPECT_EQ(infer_error(Op::ScatterAdd, {f32({4}), f32({4})}, axis_size(0, 3)),
            "scatter_add: indices must be i32 or i64, got f32[4]");
  EXPECT_EQ(infer_error(Op::ScatterAdd, {i32({4}), i32({4})}, axis_size(0, 3)),
            "scatter_add: updates must be floating point, got i32[4]");
  EXPECT_EQ(infer_error(Op::ScatterAdd, {i32({4}), f32({4})}, axis_size(0, 0)),
            "scatter_add: size must be at least 1, got 0");
  EXPECT_EQ(
      infer_error(Op::ScatterAdd, {i32({2, 4}), f32({8})}, axis_size(0, 3)),
      "scatter_add: updates f32[8] have fewer axes than indices i32[2,4]");
  EXPECT_EQ(
      infer_error(Op::ScatterAdd, {i32({4}), f32({3, 4})}, axis_size(2, 3)),
      "scatter_add: axis 2 is out of range for an operand of rank 2");
  EXPECT_EQ(
      infer_error(Op::ScatterAdd, {i32({4}), f32({3, 4})}, axis_size(0, 3)),
      "scatter_add: updates f32[3,4] must have the indices' shape [4] at axes "
      "[0, 1), got [3]");
  // Shapes the parser accepts whose product it would not.
  const int64_t m = int64_t{1} << 20;
  EXPECT_EQ(infer_error(Op::Gather, {f32({m, m}), i64({m, m})}, {}),
            "gather: the result [1048576,1048576,1048576] has more than 2^56 "
            "elements");
  EXPECT_EQ(
      infer_error(Op::ScatterAdd, {i64({2}), f32({2, m, m})}, axis_size(0, m)),
      "scatter_add: the result [1048576,1048576,1048576] has more than 2^56 "
      "elements");
}

// A graph under construction plus the values fed to its inputs.
struct Fixture {
  Graph g{"t"};
  Builder b{g};
  std::vector<HostTensor> feeds;

  Value *in(Type t, Data d) {
    feeds.emplace_back(t, std::move(d));
    return g.add_input("in" + std::to_string(feeds.size() - 1), t);
  }
  HostTensor run(Value *out) {
    g.outputs.clear();
    g.add_output(out);
    verify(g);
    return interpret(g, feeds).at(0);
  }
};

TEST(GatherInterp, PicksRowsAlongTheAxis) {
  Fixture f;
  Value *x = f.in(f64({3, 2}), {1, 2, 3, 4, 5, 6});
  Value *i = f.in(i32({2, 2}), {2, 0, 2, 1});
  HostTensor r = f.run(f.b.op(Op::Gather, {x, i}));
  EXPECT_EQ(r.type, f64({2, 2, 2}));
  EXPECT_EQ(r.data, (Data{5, 6, 1, 2, 5, 6, 3, 4}));
  // Axis 1 of [2, 3, 2] with indices [2, 2, 0]: per outer row and column.
  Fixture g;
  Value *y = g.in(f32({2, 3, 2}), {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Value *j = g.in(i64({3}), {2, 2, 0});
  r = g.run(g.b.op(Op::Gather, {y, j}, axis(1)));
  EXPECT_EQ(r.type, f32({2, 3, 2}));
  EXPECT_EQ(r.data, (Data{4, 5, 4, 5, 0, 1, 10, 11, 10, 11, 6, 7}));
  // A scalar index drops the axis.
  Fixture h;
  Value *z = h.in(f64({2, 3}), {1, 2, 3, 4, 5, 6});
  Value *k = h.in(i64({}), {1});
  r = h.run(h.b.op(Op::Gather, {z, k}, axis(-1)));
  EXPECT_EQ(r.type, f64({2}));
  EXPECT_EQ(r.data, (Data{2, 5}));
}

TEST(GatherInterp, KeepsExactI64Values) {
  Fixture f;
  Value *x = f.in(i64({2}), {0, 0});
  const int64_t big = (int64_t{1} << 62) + 3;
  f.feeds[0].i64 = {big, 5};
  Value *i = f.in(i32({3}), {0, 1, 0});
  HostTensor r = f.run(f.b.op(Op::Gather, {x, i}));
  EXPECT_EQ(r.int_at(0), big);
  EXPECT_EQ(r.int_at(1), 5);
  EXPECT_EQ(r.int_at(2), big);
}

TEST(ScatterAddInterp, SumsRepeatedIndices) {
  Fixture f;
  Value *i = f.in(i64({4}), {1, 3, 1, 1});
  Value *u = f.in(f64({4, 2}), {1, 2, 3, 4, 5, 6, 7, 8});
  HostTensor r = f.run(f.b.op(Op::ScatterAdd, {i, u}, axis_size(0, 4)));
  EXPECT_EQ(r.type, f64({4, 2}));
  EXPECT_EQ(r.data, (Data{0, 0, 13, 16, 0, 0, 3, 4}));
  // Axis 1 with 2-D indices: [2, {2x2}] -> [2, 3].
  Fixture g;
  Value *j = g.in(i32({2, 2}), {0, 2, 2, 2});
  Value *v = g.in(f32({2, 2, 2}), {1, 2, 3, 4, 10, 20, 30, 40});
  r = g.run(g.b.op(Op::ScatterAdd, {j, v}, axis_size(1, 3)));
  EXPECT_EQ(r.type, f32({2, 3}));
  EXPECT_EQ(r.data, (Data{1, 0, 9, 10, 0, 90}));
}

TEST(GatherInterp, IndexOutOfRangeIsAnErrorNamingIt) {
  Fixture f;
  Value *x = f.in(f64({3, 2}), {1, 2, 3, 4, 5, 6});
  Value *i = f.in(i32({2, 2}), {0, 1, 3, 2});
  Value *y = f.b.op(Op::Gather, {x, i});
  EXPECT_EQ(
      error_of([&] { f.run(y); }),
      "gather: index 3 at indices[1,0] is out of range [0, 3) for axis 0");
  f.feeds[1].data[2] = -1;
  EXPECT_EQ(
      error_of([&] { f.run(y); }),
      "gather: index -1 at indices[1,0] is out of range [0, 3) for axis 0");
  Fixture g;
  Value *j = g.in(i64({3}), {0, 4, 1});
  Value *u = g.in(f64({2, 3}), {1, 2, 3, 4, 5, 6});
  Value *s = g.b.op(Op::ScatterAdd, {j, u}, axis_size(1, 4));
  EXPECT_EQ(
      error_of([&] { g.run(s); }),
      "scatter_add: index 4 at indices[1] is out of range [0, 4) for axis 1");
}

} // namespace
} // namespace kiln
