// Node locations (ir/graph.h SourceLoc): a parsed node knows its
// FILE:LINE:COL, a traced node its module path; clones keep them, and the
// verifier and passes name them in their messages.
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "ir/verifier.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

TEST(NodeLocation, ParsedNodesKnowTheirPosition) {
  auto g = parse("graph @g(%a: f32[2]) {\n"
                 "  %0 = neg(%a) : f32[2]\n"
                 "    %1 = exp(%0) : f32[2]\n"
                 "  return %1\n"
                 "}\n",
                 "t.kir");
  ASSERT_EQ(g->nodes().size(), 2u);
  const Node &first = *g->nodes()[0];
  EXPECT_EQ(first.loc.file, "t.kir");
  EXPECT_EQ(first.loc.line, 2);
  EXPECT_EQ(first.loc.col, 8);
  EXPECT_EQ(g->nodes()[1]->loc.line, 3);
  EXPECT_EQ(g->nodes()[1]->loc.col, 10);
  EXPECT_EQ(located(first, "boom"), "t.kir:2:8: error: boom");
  auto c = g->clone();
  EXPECT_EQ(c->nodes()[1]->loc.line, 3);
  EXPECT_EQ(c->nodes()[1]->loc.file, "t.kir");
}

TEST(NodeLocation, TracedNodesKnowTheirModule) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {2}});
  b.set_scope("fc2 (Linear)");
  Value *y = b.neg(x);
  b.set_scope("");
  Value *z = b.exp(y);
  EXPECT_EQ(y->def->loc.scope, "fc2 (Linear)");
  EXPECT_EQ(located(*y->def, "boom"), "fc2 (Linear): boom");
  EXPECT_TRUE(z->def->loc.empty());
  EXPECT_EQ(located(*z->def, "boom"), "boom");
}

TEST(NodeLocation, VerifierNamesTheParsedNode) {
  auto g = parse("graph @g(%a: f32[2], %b: f32[2]) {\n"
                 "  %0 = add(%a, %b) : f32[2]\n"
                 "  return %0\n"
                 "}\n",
                 "v.kir");
  // Break the graph after parsing: the declared type no longer matches.
  g->nodes()[0]->results[0]->type = {DType::f64, {2}};
  std::string m = error_of([&] { verify(*g); });
  EXPECT_EQ(m.rfind("v.kir:2:8: error: verifier: node 0 (add):", 0), 0u) << m;
}

} // namespace
} // namespace kiln
