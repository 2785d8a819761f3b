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

TEST(NodeLocation, CopiedNodesKeepIt) {
  auto g = parse("graph @g(%a: f32[2], %b: f32[2]) {\n"
                 "  %s = add(%a, %b) : f32[2]\n"
                 "  %f = fused(%s) {kind = \"elementwise\"} : f32[2] "
                 "graph @fused_0(%x: f32[2]) {\n"
                 "    %e = exp(%x) : f32[2]\n"
                 "    return %e\n"
                 "  }\n"
                 "  return %f\n"
                 "}\n",
                 "c.kir");
  const Node &add = *g->nodes()[0];
  const Node &fused = *g->nodes()[1];
  // one_node_body: the standalone op the code generators compile.
  auto body = one_node_body(add);
  ASSERT_EQ(body->nodes().size(), 1u);
  EXPECT_EQ(located(*body->nodes()[0], "boom"), "c.kir:2:8: error: boom");

  // Graph::copy_node through a value map: op, attributes, body, location
  // and result names, and the map learns the results.
  Graph h("h");
  std::unordered_map<const Value *, Value *> map;
  map[add.results[0]] = h.add_input("s", add.results[0]->type);
  Node *c = h.copy_node(fused, map);
  EXPECT_EQ(c->op, Op::Fused);
  EXPECT_EQ(c->attrs.get_str("kind"), "elementwise");
  EXPECT_EQ(c->operands[0], map.at(add.results[0]));
  EXPECT_EQ(c->results[0]->name, "f");
  EXPECT_EQ(map.at(fused.results[0]), c->results[0]);
  ASSERT_TRUE(c->body);
  EXPECT_NE(c->body.get(), fused.body.get());
  EXPECT_EQ(c->body->nodes()[0]->loc.line, 4);
  EXPECT_EQ(c->loc.file, "c.kir");
  EXPECT_EQ(c->loc.line, 3);
}

} // namespace
} // namespace kiln
