// The printer (ir/printer.h): exact text for small graphs with parameters,
// attributes, a fused node with its body, and an in-place alias.
#include "ir/builder.h"
#include "ir/printer.h"
#include "ir/verifier.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

Type f32(Shape s) { return {DType::f32, std::move(s)}; }
Type f64(Shape s) { return {DType::f64, std::move(s)}; }

TEST(Printer, StepGraph) {
  Graph g("step");
  Builder b(g);
  Value *x = g.add_input("x", f32({2, 3}));
  Value *w = g.add_input("w", f32({3, 4}), InputKind::param);
  Value *m = g.add_input("m", f32({3, 4}), InputKind::state);
  Value *lr = g.add_input("", f32({}));
  Value *h = b.matmul(x, w);
  Value *loss = b.sum(b.log_softmax(h), {0, 1}, /*keepdims=*/true);

  auto body = std::make_unique<Graph>("update");
  {
    Builder bb(*body);
    Value *a = body->add_input("a", f32({3, 4}));
    Value *c = body->add_input("b", f32({3, 4}));
    Value *r = body->add_input("", f32({}));
    Value *next = bb.sub(a, bb.mul(c, r));
    next->name = "next";
    body->add_output(next);
  }
  Node *f =
      b.create(Op::Fused, {m, w, lr}, {{"kind", std::string("elementwise")}},
               {f32({3, 4})}, std::move(body));
  Value *half = b.scalar(0.5, DType::f64);
  Value *out = b.mul(b.cast(loss, DType::f64), half);
  out->name = "x"; // clashes with the input %x
  g.add_output(out);
  g.add_output(f->result(), /*alias=*/2);
  verify(g);

  EXPECT_EQ(print(g),
            "graph @step(%x: f32[2,3], param %w: f32[3,4], state %m: "
            "f32[3,4], %0: f32[]) {\n"
            "  %1 = matmul(%x, %w) : f32[2,4]\n"
            "  %2 = log_softmax(%1) {axis = -1} : f32[2,4]\n"
            "  %3 = sum(%2) {axes = [0, 1], keepdims = true} : f32[1,1]\n"
            "  %4 = fused(%m, %w, %0) {kind = \"elementwise\"} : f32[3,4] "
            "graph @update(%a: f32[3,4], %b: f32[3,4], %0: f32[]) {\n"
            "    %1 = mul(%b, %0) : f32[3,4]\n"
            "    %next = sub(%a, %1) : f32[3,4]\n"
            "    return %next\n"
            "  }\n"
            "  %5 = constant() {value = 0.5} : f64[]\n"
            "  %6 = cast(%3) {dtype = \"f64\"} : f64[1,1]\n"
            "  %x_1 = mul(%6, %5) : f64[1,1]\n"
            "  return %x_1, %4 -> %m\n"
            "}\n");
}

TEST(Printer, EmptyGraph) {
  Graph g;
  EXPECT_EQ(print(g), "graph @main() {\n  return\n}\n");
}

TEST(Printer, NumericNamesAreRenumbered) {
  Graph g("g");
  Builder b(g);
  Value *a = g.add_input("7", f64({2}));
  Value *e = b.exp(a);
  e->name = "42";
  g.add_output(b.neg(e));
  EXPECT_EQ(print(g), "graph @g(%0: f64[2]) {\n"
                      "  %1 = exp(%0) : f64[2]\n"
                      "  %2 = neg(%1) : f64[2]\n"
                      "  return %2\n"
                      "}\n");
}

TEST(Printer, NamedValuesDoNotTakeNumbers) {
  // A value named "1" is numbered in order; a name that collides with a
  // number already given is skipped over.
  Graph g("g");
  Builder b(g);
  Value *a = g.add_input("a", f32({}));
  Value *one = b.exp(a);
  one->name = "y";
  Value *two = b.neg(one);
  Value *three = b.add(two, one);
  three->name = "y";
  g.add_output(three);
  EXPECT_EQ(print(g), "graph @g(%a: f32[]) {\n"
                      "  %y = exp(%a) : f32[]\n"
                      "  %0 = neg(%y) : f32[]\n"
                      "  %y_1 = add(%0, %y) : f32[]\n"
                      "  return %y_1\n"
                      "}\n");
}

TEST(Printer, AttributeValues) {
  Graph g("attrs");
  Builder b(g);
  Value *x = g.add_input("x", f32({2, 3, 4}));
  b.constant(1.0, f32({}));
  b.constant(1e-5, f64({2}));
  b.constant(-2.5, f64({}));
  b.transpose(x, {2, 0, 1});
  b.reshape(x, {-1});
  Value *l = g.add_input("l", {DType::i64, {3}});
  b.one_hot(l, 4);
  g.add_output(x);
  EXPECT_EQ(print(g), "graph @attrs(%x: f32[2,3,4], %l: i64[3]) {\n"
                      "  %0 = constant() {value = 1.0} : f32[]\n"
                      "  %1 = constant() {value = 1e-05} : f64[2]\n"
                      "  %2 = constant() {value = -2.5} : f64[]\n"
                      "  %3 = transpose(%x) {perm = [2, 0, 1]} : f32[4,2,3]\n"
                      "  %4 = reshape(%x) {shape = [24]} : f32[24]\n"
                      "  %5 = one_hot(%l) {dtype = \"f32\", num_classes = 4} : "
                      "f32[3,4]\n"
                      "  return %x\n"
                      "}\n");
}

TEST(Printer, SeveralResultsAndAnnotations) {
  Graph g("multi");
  Value *x = g.add_input("x", f32({2}));
  auto body = std::make_unique<Graph>("body");
  {
    Builder bb(*body);
    Value *a = body->add_input("a", f32({2}));
    body->add_output(bb.exp(a));
    body->add_output(bb.neg(a));
  }
  Node *f = g.append(Op::Fused, {x}, {f32({2}), f32({2})},
                     {{"kind", std::string("elementwise")}}, std::move(body));
  g.add_output(f->results[1]);
  g.add_output(f->results[0]);
  verify(g);
  PrintOptions opts;
  opts.annotate = [](const Node &n) {
    return n.op == Op::Fused ? std::string("kernel 0") : std::string();
  };
  EXPECT_EQ(print(g, opts),
            "graph @multi(%x: f32[2]) {\n"
            "  %0, %1 = fused(%x) {kind = \"elementwise\"} : f32[2], f32[2] "
            "graph @body(%a: f32[2]) {\n"
            "    %0 = exp(%a) : f32[2]\n"
            "    %1 = neg(%a) : f32[2]\n"
            "    return %0, %1\n"
            "  }  // kernel 0\n"
            "  return %1, %0\n"
            "}\n");
}

} // namespace
} // namespace kiln
