// Passes that copy nodes into a new graph (Graph::copy_node) keep every
// node's location, so an error about a copied node still names where in the
// text (or which module) it came from.
#include "ir/error.h"
#include "ir/fused_kind.h"
#include "ir/parser.h"
#include "passes/fuse_elementwise.h"
#include "passes/fuse_optimizer.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(CopyLocations, FuseOptimizerKeepsTheBodyNodesLocations) {
  auto g = parse("graph @sgd(%g1: f32[2], %g2: f32[2], param %w1: f32[2], "
                 "param %w2: f32[2]) {\n"
                 "  %n1 = fused(%w1, %g1) {kind = \"elementwise\"} : f32[2] "
                 "graph @fused_0(%a: f32[2], %b: f32[2]) {\n"
                 "    %u1 = sub(%a, %b) : f32[2]\n"
                 "    return %u1\n"
                 "  }\n"
                 "  %n2 = fused(%w2, %g2) {kind = \"elementwise\"} : f32[2] "
                 "graph @fused_1(%a: f32[2], %b: f32[2]) {\n"
                 "      %u2 = sub(%a, %b) : f32[2]\n"
                 "    return %u2\n"
                 "  }\n"
                 "  return %n1 -> %w1, %n2 -> %w2\n"
                 "}\n",
                 "sgd.kir");
  ASSERT_TRUE(run_fuse_optimizer(*g));
  const Node *m = nullptr;
  for (auto &n : g->nodes())
    if (is_fused(*n, FusedKind::multi_tensor))
      m = n.get();
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->body->nodes().size(), 2u);
  const Node &u1 = *m->body->nodes()[0], &u2 = *m->body->nodes()[1];
  EXPECT_EQ(u1.results[0]->name, "u1");
  EXPECT_EQ(located(u1, "boom"), "sgd.kir:3:11: error: boom");
  EXPECT_EQ(located(u2, "boom"), "sgd.kir:7:13: error: boom");
}

TEST(CopyLocations, FuseElementwiseKeepsTheMembersLocations) {
  auto g = parse("graph @g(%x: f32[4], %y: f32[4]) {\n"
                 "  %a = add(%x, %y) : f32[4]\n"
                 "    %e = exp(%a) : f32[4]\n"
                 "  return %e\n"
                 "}\n",
                 "ew.kir");
  ASSERT_TRUE(run_fuse_elementwise(*g));
  ASSERT_EQ(g->nodes().size(), 1u);
  const Node &f = *g->nodes()[0];
  ASSERT_TRUE(is_fused(f, FusedKind::elementwise));
  ASSERT_EQ(f.body->nodes().size(), 2u);
  EXPECT_EQ(located(*f.body->nodes()[0], "boom"), "ew.kir:2:8: error: boom");
  EXPECT_EQ(located(*f.body->nodes()[1], "boom"), "ew.kir:3:10: error: boom");
}

} // namespace
} // namespace kiln
