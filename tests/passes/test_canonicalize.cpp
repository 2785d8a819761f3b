#include "ir/builder.h"
#include "passes/canonicalize.h"
#include "passes/dce.h"
#include "test_util.h"

#include "../support/random_graph.h"

namespace kiln {
namespace {

using testing::count_ops;

struct G {
  Graph g;
  Builder b{g};
  Value *x = g.add_input("x", {DType::f64, {2, 3}});
  Value *w = g.add_input("w", {DType::f64, {2, 3}}, InputKind::param);
};

TEST(Canonicalize, IdentitiesFoldToOperand) {
  G t;
  Value *one = t.b.scalar(1, DType::f64), *zero = t.b.scalar(0, DType::f64);
  t.g.add_output(t.b.mul(t.x, one));
  t.g.add_output(t.b.mul(one, t.x));
  t.g.add_output(t.b.add(t.x, zero));
  t.g.add_output(t.b.add(zero, t.x));
  t.g.add_output(t.b.sub(t.x, zero));
  t.g.add_output(t.b.div(t.x, one));
  t.g.add_output(t.b.neg(t.b.neg(t.x)));
  EXPECT_TRUE(run_canonicalize(t.g));
  for (const GraphOutput &o : t.g.outputs)
    EXPECT_EQ(o.value, t.x);
  EXPECT_FALSE(run_canonicalize(t.g)) << "a fixed point reports no change";
}

TEST(Canonicalize, IdentityThatWouldBroadcastStays) {
  G t;
  Value *zero = t.b.constant(0, {DType::f64, {4, 2, 3}});
  Value *r = t.b.add(t.x, zero);
  t.g.add_output(r);
  run_canonicalize(t.g);
  EXPECT_EQ(t.g.outputs[0].value->type.shape, (Shape{4, 2, 3}));
  EXPECT_NE(t.g.outputs[0].value, t.x);
}

TEST(Canonicalize, GradientZeroingVanishes) {
  G t;
  Value *zeros = t.b.constant(0, t.w->type);
  Value *g = t.b.mul(t.x, t.w);
  t.g.add_output(t.b.add(zeros, g));
  run_canonicalize(t.g);
  EXPECT_EQ(t.g.outputs[0].value, g);
}

TEST(Canonicalize, SubSelfIsZero) {
  G t;
  t.g.add_output(t.b.sub(t.x, t.x));
  run_canonicalize(t.g);
  auto c = t.g.outputs[0].value;
  ASSERT_TRUE(c->def && c->def->op == Op::Constant);
  EXPECT_EQ(c->def->attrs.get_float("value"), 0.0);
  EXPECT_EQ(c->type, t.x->type);
}

TEST(Canonicalize, TransposeChains) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {2, 3, 4}});
  Value *t1 = b.transpose(x, {1, 2, 0});
  Value *back = b.transpose(t1, {2, 0, 1}); // inverse
  Value *t2 = b.transpose(b.transpose(x, {1, 0, 2}), {0, 2, 1});
  g.add_output(back);
  g.add_output(t2);
  auto ref = g.clone();
  run_canonicalize(g);
  EXPECT_EQ(g.outputs[0].value, x);
  const Node *n = g.outputs[1].value->def;
  ASSERT_EQ(n->op, Op::Transpose);
  EXPECT_EQ(n->operands[0], x);
  // t2[i,j,k] = x[perm...]: the composed permutation gives the same type
  // and the same values.
  EXPECT_EQ(g.outputs[1].value->type, ref->outputs[1].value->type);
  auto in = testing::random_inputs(g, 3);
  EXPECT_TRUE(testing::same_outputs(interpret(*ref, in), interpret(g, in), 0));
}

TEST(Canonicalize, ReshapeAndBroadcastChains) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {2, 3}});
  Value *v = g.add_input("v", {DType::f32, {3}});
  g.add_output(b.reshape(b.reshape(x, {6}), {3, 2}));
  g.add_output(g.append(Op::Reshape, {x}, {x->type},
                        {{"shape", std::vector<int64_t>{2, 3}}})
                   ->result());
  g.add_output(b.broadcast_to(b.broadcast_to(v, {2, 3}), {4, 2, 3}));
  run_canonicalize(g);
  run_dce(g);
  EXPECT_EQ(g.outputs[0].value->def->operands[0], x);
  EXPECT_EQ(g.outputs[1].value, x);
  EXPECT_EQ(g.outputs[2].value->def->operands[0], v);
  EXPECT_EQ(count_ops(g, Op::Reshape), 1);
  EXPECT_EQ(count_ops(g, Op::BroadcastTo), 1);
}

TEST(Canonicalize, ConstantFolding) {
  Graph g;
  Builder b(g);
  Value *a = b.constant(2, {DType::f32, {3}});
  Value *c = b.constant(0.1, {DType::f32, {}});
  Value *e = b.exp(b.mul(a, c));               // elementwise
  Value *s = b.sum(b.broadcast_to(a, {4, 3})); // reduction: 24
  Value *i = b.cast(b.constant(2.7, {DType::f32, {}}), DType::i32);
  g.add_output(e);
  g.add_output(s);
  g.add_output(i);
  auto ref = g.clone();
  EXPECT_TRUE(run_canonicalize(g));
  run_dce(g);
  for (const GraphOutput &o : g.outputs)
    EXPECT_EQ(o.value->def->op, Op::Constant);
  EXPECT_EQ(g.nodes().size(), 3u);
  EXPECT_TRUE(testing::same_outputs(interpret(*ref, {}), interpret(g, {}), 0));
  EXPECT_EQ(g.outputs[2].value->def->attrs.get_float("value"), 2.0);
}

TEST(Canonicalize, NeverFoldsRandom) {
  Graph g;
  Builder b(g);
  Value *seed = b.constant(1, {DType::i64, {}});
  Value *off = b.constant(0, {DType::i64, {}});
  g.add_output(b.random_uniform(seed, off, {DType::f32, {8}}));
  run_canonicalize(g);
  EXPECT_EQ(count_ops(g, Op::RandomUniform), 1);
}

TEST(Canonicalize, MeanOfSumIsOneReduction) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f64, {4, 5}});
  g.add_output(b.mean(b.sum(x, {1})));
  auto ref = g.clone();
  run_canonicalize(g);
  run_dce(g);
  EXPECT_EQ(count_ops(g, Op::Sum), 1);
  EXPECT_EQ(count_ops(g, Op::Mean), 0);
  auto in = testing::random_inputs(g, 1);
  EXPECT_TRUE(
      testing::same_outputs(interpret(*ref, in), interpret(g, in), 1e-14));
}

TEST(Canonicalize, WhereOfConstantCondition) {
  G t;
  Value *c = t.b.constant(1, {DType::boolean, {}});
  t.g.add_output(t.b.where(c, t.x, t.w));
  run_canonicalize(t.g);
  EXPECT_EQ(t.g.outputs[0].value, t.x);
}

TEST(Canonicalize, KeepsRandomGraphValues) {
  for (uint64_t seed = 0; seed < 60; ++seed) {
    auto g = testing::random_graph(seed);
    auto ref = g->clone();
    run_canonicalize(*g);
    verify(*g);
    auto in = testing::random_inputs(*g, seed);
    EXPECT_TRUE(
        testing::same_outputs(interpret(*ref, in), interpret(*g, in), 1e-12))
        << "seed " << seed;
  }
}

} // namespace
} // namespace kiln
