// Builder helpers (ir/builder.h): reshape with -1, sum_to, transpose, cast,
// broadcast_to, scalars, scope and insert point. Shapes are checked on the
// created nodes and values through the interpreter against hand-computed
// numbers.
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/interpreter.h"
#include "ir/verifier.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using Ints = std::vector<int64_t>;

Type f64(Shape s) { return {DType::f64, std::move(s)}; }
Type f32(Shape s) { return {DType::f32, std::move(s)}; }

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

// Runs g (one input, one output) on x.
std::vector<double> run(Graph &g, Value *out, std::vector<double> x) {
  g.outputs.clear();
  g.add_output(out);
  verify(g);
  HostTensor in(g.inputs()[0].value->type, std::move(x));
  return interpret(g, {in}).at(0).data;
}

TEST(BuilderReshape, InfersMinusOne) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2, 3, 4}));
  EXPECT_EQ(b.reshape(x, {-1, 4})->type, f32({6, 4}));
  EXPECT_EQ(b.reshape(x, {4, -1})->type, f32({4, 6}));
  EXPECT_EQ(b.reshape(x, {2, -1, 3})->type, f32({2, 4, 3}));
  EXPECT_EQ(b.reshape(x, {-1})->type, f32({24}));
  Node *last = g.nodes().back().get();
  EXPECT_EQ(last->op, Op::Reshape);
  EXPECT_EQ(last->attrs.get_ints("shape"), Ints{24});
}

TEST(BuilderReshape, SameShapeIsTheIdentity) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2, 3}));
  EXPECT_EQ(b.reshape(x, {2, 3}), x);
  EXPECT_EQ(b.reshape(x, {2, -1}), x);
  EXPECT_TRUE(g.nodes().empty());
}

TEST(BuilderReshape, Errors) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2, 3, 4}));
  EXPECT_EQ(error_of([&] {
              b.reshape(x, {-1, 5});
            }),
            "reshape cannot turn f32[2,3,4] (24 elements) into [-1,5]: 24 is "
            "not a multiple of 5");
  EXPECT_EQ(error_of([&] {
              b.reshape(x, {-1, -1});
            }),
            "reshape to [-1,-1] has more than one -1 dimension");
  EXPECT_EQ(error_of([&] {
              b.reshape(x, {5, 5});
            }),
            "reshape cannot turn f32[2,3,4] (24 elements) into [5,5]");
}

TEST(BuilderReshape, KeepsRowMajorOrder) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2, 3}));
  Value *y = b.transpose(b.reshape(x, {3, -1}));
  // x = [[0,1,2],[3,4,5]] -> [[0,1],[2,3],[4,5]] -> [[0,2,4],[1,3,5]].
  EXPECT_EQ(run(g, y, {0, 1, 2, 3, 4, 5}),
            (std::vector<double>{0, 2, 4, 1, 3, 5}));
}

TEST(BuilderSumTo, IdentityWhenShapesMatch) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2, 3}));
  EXPECT_EQ(b.sum_to(x, {2, 3}), x);
  EXPECT_TRUE(g.nodes().empty());
}

TEST(BuilderSumTo, LeadingAxes) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2, 3}));
  Value *s = b.sum_to(x, {3});
  EXPECT_EQ(s->type, f64({3}));
  const Node &sum = *g.nodes().front();
  EXPECT_EQ(sum.op, Op::Sum);
  EXPECT_EQ(sum.attrs.get_ints("axes"), Ints{0});
  EXPECT_EQ(run(g, s, {1, 2, 3, 10, 20, 30}),
            (std::vector<double>{11, 22, 33}));
}

TEST(BuilderSumTo, StretchedAxes) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2, 3}));
  Value *rows = b.sum_to(x, {2, 1});
  EXPECT_EQ(rows->type, f64({2, 1}));
  EXPECT_EQ(run(g, rows, {1, 2, 3, 10, 20, 30}), (std::vector<double>{6, 60}));
  Value *cols = b.sum_to(x, {1, 3});
  EXPECT_EQ(run(g, cols, {1, 2, 3, 10, 20, 30}),
            (std::vector<double>{11, 22, 33}));
  Value *all = b.sum_to(x, {});
  EXPECT_EQ(all->type, f64({}));
  EXPECT_EQ(run(g, all, {1, 2, 3, 10, 20, 30}), (std::vector<double>{66}));
}

TEST(BuilderSumTo, MixedLeadingAndStretched) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2, 2, 3}));
  Value *s = b.sum_to(x, {2, 1});
  EXPECT_EQ(s->type, f64({2, 1}));
  // x[i][j][k] = 100 i + 10 j + k; sum over i and k for each j:
  // j=0: (0+1+2) + (100+101+102) = 306; j=1: 306 + 2*3*10 = 366.
  std::vector<double> data;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k)
        data.push_back(100 * i + 10 * j + k);
  EXPECT_EQ(run(g, s, data), (std::vector<double>{306, 366}));
  // A kept axis of size 1 in both is not summed.
  Value *y = g.add_input("y", f64({4, 1, 3}));
  b.sum_to(y, {1, 3});
  EXPECT_EQ(g.nodes().back()->op, Op::Reshape);
  EXPECT_EQ(g.nodes().back()->result()->type, f64({1, 3}));
  const Node &sum = *g.nodes()[g.nodes().size() - 2];
  EXPECT_EQ(sum.attrs.get_ints("axes"), (Ints{0}));
}

TEST(BuilderTranspose, SwapsTheLastTwoAxes) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2, 3, 4}));
  Value *t = b.transpose(x);
  EXPECT_EQ(t->type, f32({2, 4, 3}));
  EXPECT_EQ(t->def->attrs.get_ints("perm"), (Ints{0, 2, 1}));
  Value *m = g.add_input("m", f32({5, 7}));
  EXPECT_EQ(b.transpose(m)->def->attrs.get_ints("perm"), (Ints{1, 0}));
  EXPECT_EQ(b.transpose(x, {2, 0, 1})->type, f32({4, 2, 3}));
}

TEST(BuilderTranspose, NeedsRankTwo) {
  Graph g;
  Builder b(g);
  Value *v = g.add_input("v", f32({5}));
  EXPECT_EQ(error_of([&] { b.transpose(v); }),
            "transpose needs rank >= 2, got f32[5]");
  b.set_scope("attn (MultiHead)");
  EXPECT_EQ(error_of([&] { b.transpose(v); }),
            "attn (MultiHead): transpose needs rank >= 2, got f32[5]");
}

TEST(Builder, CastToTheSameDtypeIsTheIdentity) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2}));
  EXPECT_EQ(b.cast(x, DType::f32), x);
  Value *c = b.cast(x, DType::i32);
  EXPECT_EQ(c->type, (Type{DType::i32, {2}}));
  EXPECT_EQ(c->def->attrs.get_str("dtype"), "i32");
}

TEST(Builder, BroadcastToTheSameShapeIsTheIdentity) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2}));
  EXPECT_EQ(b.broadcast_to(x, {2}), x);
  EXPECT_EQ(b.broadcast_to(x, {3, 2})->type, f32({3, 2}));
}

TEST(Builder, ScalarsTakeTheOperandDtype) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2}));
  Value *y = b.mul(x, 0.5);
  ASSERT_EQ(g.nodes().size(), 2u);
  const Node &c = *g.nodes()[0];
  EXPECT_EQ(c.op, Op::Constant);
  EXPECT_EQ(c.result()->type, f64({}));
  EXPECT_EQ(c.attrs.get_float("value"), 0.5);
  EXPECT_EQ(y->type, f64({2}));
  EXPECT_EQ(run(g, b.add(y, 1.0), {4, 6}), (std::vector<double>{3, 4}));
}

TEST(Builder, ReductionAttributes) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2, 3}));
  EXPECT_TRUE(b.sum(x)->def->attrs.empty());
  const Attrs &a = b.mean(x, {1}, true)->def->attrs;
  EXPECT_EQ(a.get_ints("axes"), Ints{1});
  EXPECT_TRUE(a.get_bool("keepdims"));
  EXPECT_EQ(b.softmax(x)->def->attrs.get_int("axis"), -1);
  const Attrs &oh =
      b.one_hot(g.add_input("y", {DType::i32, {2}}), 5, DType::f64)->def->attrs;
  EXPECT_EQ(oh.get_int("num_classes"), 5);
  EXPECT_EQ(oh.get_str("dtype"), "f64");
}

TEST(Builder, InsertPoint) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2}));
  Value *e = b.exp(x);
  Value *l = b.log(e);
  b.set_insert_point(l->def);
  Value *n = b.neg(x);
  ASSERT_EQ(g.nodes().size(), 3u);
  EXPECT_EQ(g.nodes()[0]->op, Op::Exp);
  EXPECT_EQ(g.nodes()[1]->op, Op::Neg);
  EXPECT_EQ(g.nodes()[1]->result(), n);
  EXPECT_EQ(g.nodes()[2]->op, Op::Log);
  b.set_insert_point(nullptr);
  b.tanh(x);
  EXPECT_EQ(g.nodes().back()->op, Op::Tanh);
}

} // namespace
} // namespace kiln
