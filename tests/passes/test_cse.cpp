#include "ir/builder.h"
#include "passes/cse.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::count_ops;

TEST(Cse, MergesSameOpOperandsAttrs) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {2, 3}});
  Value *y = g.add_input("y", {DType::f32, {2, 3}});
  Value *a1 = b.add(x, y), *a2 = b.add(x, y);
  Value *s1 = b.sum(a1, {1}), *s2 = b.sum(a2, {1}); // match after a1 == a2
  g.add_output(s1);
  g.add_output(s2);
  EXPECT_TRUE(run_cse(g));
  EXPECT_EQ(g.outputs[0].value, g.outputs[1].value);
  EXPECT_EQ(count_ops(g, Op::Add), 1);
  EXPECT_EQ(count_ops(g, Op::Sum), 1);
  EXPECT_FALSE(run_cse(g));
}

TEST(Cse, CommutativeOperandsMatchSwapped) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {3}});
  Value *y = g.add_input("y", {DType::f32, {3}});
  g.add_output(b.mul(x, y));
  g.add_output(b.mul(y, x));
  g.add_output(b.sub(x, y));
  g.add_output(b.sub(y, x)); // not commutative: stays
  run_cse(g);
  EXPECT_EQ(g.outputs[0].value, g.outputs[1].value);
  EXPECT_NE(g.outputs[2].value, g.outputs[3].value);
}

TEST(Cse, DifferentAttributesOrTypesStay) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {2, 3}});
  g.add_output(b.sum(x, {0}));
  g.add_output(b.sum(x, {1}));
  g.add_output(b.sum(x, {1}, /*keepdims=*/true));
  g.add_output(b.constant(1, {DType::f32, {}}));
  g.add_output(b.constant(1, {DType::f64, {}}));
  g.add_output(b.constant(2, {DType::f32, {}}));
  g.add_output(b.constant(2, {DType::f32, {}})); // the one merge
  EXPECT_TRUE(run_cse(g));
  EXPECT_EQ(count_ops(g, Op::Sum), 3);
  EXPECT_EQ(count_ops(g, Op::Constant), 3);
}

TEST(Cse, NeverMergesRandom) {
  Graph g;
  Builder b(g);
  Value *seed = g.add_input("seed", {DType::i64, {}});
  Value *off = g.add_input("off", {DType::i64, {}});
  g.add_output(b.random_uniform(seed, off, {DType::f32, {4}}));
  g.add_output(b.random_uniform(seed, off, {DType::f32, {4}}));
  EXPECT_FALSE(run_cse(g));
  EXPECT_EQ(count_ops(g, Op::RandomUniform), 2);
}

} // namespace
} // namespace kiln
