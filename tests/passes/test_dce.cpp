#include "ir/builder.h"
#include "passes/dce.h"
#include "test_util.h"

namespace kiln {
namespace {

TEST(Dce, RemovesUnreachableKeepsInputs) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {3}});
  g.add_input("unused", {DType::f32, {3}});
  Value *live = b.exp(x);
  b.log(b.neg(x)); // dead chain
  Value *seed = b.constant(0, {DType::i64, {}});
  b.random_uniform(seed, seed, {DType::f32, {3}}); // dead draw
  g.add_output(live);
  EXPECT_TRUE(run_dce(g));
  EXPECT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.inputs().size(), 2u);
  EXPECT_FALSE(run_dce(g));
  verify(g);
}

} // namespace
} // namespace kiln
