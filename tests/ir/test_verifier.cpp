// The verifier (ir/verifier.cpp): one graph per check that violates it, and
// the exact message, which names the node (its index and op).
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/verifier.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

Type f32(Shape s) { return {DType::f32, std::move(s)}; }
Type f64(Shape s) { return {DType::f64, std::move(s)}; }

// The attribute of a well-formed elementwise fused node, for the checks of
// its other parts.
const Attrs kElementwiseKind{{"kind", std::string("elementwise")}};

std::string verify_error(const Graph &g) {
  try {
    verify(g);
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

// A body computing a * b + 0.5 over f32[2] operands.
std::unique_ptr<Graph> mul_add_body() {
  auto body = std::make_unique<Graph>("body");
  Builder b(*body);
  Value *a = body->add_input("a", f32({2}));
  Value *c = body->add_input("b", f32({2}));
  body->add_output(b.add(b.mul(a, c), 0.5));
  return body;
}

TEST(Verifier, AcceptsAWellFormedGraph) {
  Graph g("step");
  Builder b(g);
  Value *x = g.add_input("x", f32({2}));
  Value *w = g.add_input("w", f32({2}), InputKind::param);
  Value *m = g.add_input("m", f32({2}), InputKind::state);
  Value *y = b.relu(b.mul(x, w));
  Node *f = b.create(Op::Fused, {m, y}, {{"kind", std::string("elementwise")}},
                     {f32({2})}, mul_add_body());
  g.add_output(b.sum(y));
  g.add_output(f->result(), /*alias=*/2);
  g.add_output(b.sub(w, y), /*alias=*/1);
  EXPECT_NO_THROW(verify(g));
  EXPECT_EQ(verify_error(g), "<no error>");
}

TEST(Verifier, Arity) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Neg, {x}, {f32({2})});
  g.append(Op::Add, {x}, {f32({2})});
  EXPECT_EQ(verify_error(g),
            "verifier: node 1 (add): expects 2 operands, got 1");
}

TEST(Verifier, OperandUsedBeforeItsDefinition) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  Node *late = g.append(Op::Exp, {x}, {f32({2})});
  g.insert_before(late, Op::Neg, {late->result()}, {f32({2})});
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (neg): operand 0 is not defined before use");
}

TEST(Verifier, OperandFromAnotherGraph) {
  Graph other;
  Value *foreign = other.add_input("z", f32({2}));
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Exp, {x}, {f32({2})});
  g.append(Op::Add, {x, foreign}, {f32({2})});
  EXPECT_EQ(verify_error(g),
            "verifier: node 1 (add): operand 1 is not defined before use");
}

TEST(Verifier, NullOperand) {
  Graph g;
  g.add_input("x", f32({2}));
  g.append(Op::Exp, {nullptr}, {f32({2})});
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (exp): operand 0 is not defined before use");
}

TEST(Verifier, InferenceErrorNamesTheNode) {
  Graph g;
  Value *x = g.add_input("x", f32({64, 128}));
  Value *w = g.add_input("w", f32({256, 10}));
  g.append(Op::Matmul, {x, w}, {f32({64, 10})});
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (matmul): matmul expects [*,256], got [64,128]");
}

TEST(Verifier, ResultTypeDiffersFromInferred) {
  Graph g;
  Value *x = g.add_input("x", f32({2, 3}));
  g.append(Op::Exp, {x}, {f32({2, 3})});
  g.append(Op::Sum, {x}, {f32({2})}, {{"axes", std::vector<int64_t>{1}}});
  g.append(Op::Tanh, {x}, {f64({2, 3})});
  EXPECT_EQ(verify_error(g), "verifier: node 2 (tanh): result type f64[2,3] "
                             "does not match the inferred f32[2,3]");
}

TEST(Verifier, ResultCountDiffersFromInferred) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Neg, {x}, {f32({2}), f32({2})});
  EXPECT_EQ(verify_error(g), "verifier: node 0 (neg): result type f32[2], "
                             "f32[2] does not match the inferred f32[2]");
}

TEST(Verifier, FusedWithoutBody) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Fused, {x}, {f32({2})}, kElementwiseKind);
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (fused): fused node without a body");
}

TEST(Verifier, FusedBodyInputCount) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Fused, {x}, {f32({2})}, kElementwiseKind, mul_add_body());
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (fused): body has 2 inputs for 1 operands");
}

TEST(Verifier, FusedBodyInputType) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  Value *y = g.add_input("y", f64({2}));
  g.append(Op::Fused, {x, y}, {f32({2})}, kElementwiseKind, mul_add_body());
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (fused): body input 1 is f32[2], operand is "
            "f64[2]");
}

TEST(Verifier, FusedBodyOutputCount) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Fused, {x, x}, {f32({2}), f32({2})}, kElementwiseKind,
           mul_add_body());
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (fused): body returns 1 values for 2 results");
}

TEST(Verifier, FusedBodyOutputType) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Fused, {x, x}, {f64({2})}, kElementwiseKind, mul_add_body());
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (fused): body output 0 is f32[2], result is "
            "f64[2]");
}

TEST(Verifier, ErrorsInsideABodyNameBothNodes) {
  auto body = std::make_unique<Graph>("body");
  Value *a = body->add_input("a", f32({2}));
  body->append(Op::Exp, {a}, {f32({2})});
  Node *bad = body->append(Op::Log, {a}, {f64({2})});
  body->add_output(bad->result());
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Neg, {x}, {f32({2})});
  g.append(Op::Fused, {x}, {f64({2})}, kElementwiseKind, std::move(body));
  EXPECT_EQ(verify_error(g),
            "verifier: node 1 (fused): node 1 (log): result type f64[2] does "
            "not match the inferred f32[2]");
}

TEST(Verifier, BodyMayNotUseOuterValues) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  auto body = std::make_unique<Graph>("body");
  Value *a = body->add_input("a", f32({2}));
  Node *n = body->append(Op::Add, {a, x}, {f32({2})});
  body->add_output(n->result());
  g.append(Op::Fused, {x}, {f32({2})}, kElementwiseKind, std::move(body));
  EXPECT_EQ(verify_error(g), "verifier: node 0 (fused): node 0 (add): operand "
                             "1 is not defined before use");
}

TEST(Verifier, BodyOutputNotDefined) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  auto body = std::make_unique<Graph>("body");
  body->add_input("a", f32({2}));
  body->add_output(x);
  g.append(Op::Fused, {x}, {f32({2})}, kElementwiseKind, std::move(body));
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (fused): output 0 is not defined");
}

TEST(Verifier, OnlyFusedNodesHaveABody) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Neg, {x}, {f32({2})}, {}, mul_add_body());
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (neg): only fused nodes have a body");
}

TEST(Verifier, OutputNotDefined) {
  Graph other;
  Value *foreign = other.add_input("z", f32({2}));
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.add_output(x);
  g.add_output(foreign);
  EXPECT_EQ(verify_error(g), "verifier: output 1 is not defined");
}

TEST(Verifier, AliasOfAMissingInput) {
  Graph g;
  Value *w = g.add_input("w", f32({2}), InputKind::param);
  g.add_output(w, /*alias=*/3);
  EXPECT_EQ(verify_error(g),
            "verifier: output 0 aliases input 3, which does not exist");
}

TEST(Verifier, AliasOfADataInput) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2}));
  g.add_output(b.neg(x), /*alias=*/0);
  EXPECT_EQ(verify_error(g),
            "verifier: output 0 updates data input %x in place; only param "
            "and state inputs may be updated");
}

TEST(Verifier, AliasOfAnotherType) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2}));
  g.add_input("w", f32({2}), InputKind::param);
  g.add_output(b.neg(x), /*alias=*/1);
  EXPECT_EQ(verify_error(g),
            "verifier: output 0 is f64[2] but updates %w of type f32[2]");
}

TEST(Verifier, InputUpdatedTwice) {
  Graph g;
  Builder b(g);
  Value *m = g.add_input("m", f32({2}), InputKind::state);
  g.add_output(b.neg(m), /*alias=*/0);
  g.add_output(b.exp(m), /*alias=*/0);
  EXPECT_EQ(verify_error(g), "verifier: input %m is updated in place twice");
}

// --- constants and fused kinds (issue 15, item 3) ---------------------------

TEST(Verifier, ConstantNeedsOneResult) {
  Graph g;
  g.append(Op::Constant, {}, {f32({}), f32({})}, {{"value", 1.0}});
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (constant): constant has 2 results, expected 1");
}

TEST(Verifier, ConstantNeedsANumericValue) {
  Graph g;
  g.append(Op::Constant, {}, {f32({})});
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (constant): constant needs attribute 'value' (a "
            "number)");
  Graph h;
  h.append(Op::Constant, {}, {f32({})}, {{"value", std::string("one")}});
  EXPECT_EQ(verify_error(h), "verifier: node 0 (constant): constant attribute "
                             "'value' must be a number, got \"one\"");
  Graph l;
  l.append(Op::Constant, {}, {f32({})},
           {{"value", std::vector<int64_t>{1, 2}}});
  EXPECT_EQ(verify_error(l), "verifier: node 0 (constant): constant attribute "
                             "'value' must be a number, got [1, 2]");
}

TEST(Verifier, FusedNeedsAKnownKind) {
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Fused, {x, x}, {f32({2})}, {}, mul_add_body());
  EXPECT_EQ(verify_error(g),
            "verifier: node 0 (fused): fused needs attribute 'kind' (a "
            "string)");
  Graph h;
  Value *y = h.add_input("y", f32({2}));
  h.append(Op::Fused, {y, y}, {f32({2})}, {{"kind", std::string("odd")}},
           mul_add_body());
  EXPECT_EQ(verify_error(h),
            "verifier: node 0 (fused): fused node has kind \"odd\" (expected "
            "\"elementwise\", \"reduction\" or \"multi_tensor\")");
  Graph k;
  Value *z = k.add_input("z", f32({2}));
  k.append(Op::Fused, {z, z}, {f32({2})}, {{"kind", int64_t{1}}},
           mul_add_body());
  EXPECT_EQ(verify_error(k),
            "verifier: node 0 (fused): fused attribute 'kind' must be a "
            "string, got 1");
}

TEST(Verifier, FusedKindMustMatchTheBody) {
  auto sum_body = [] {
    auto body = std::make_unique<Graph>("body");
    Builder b(*body);
    Value *a = body->add_input("a", f32({2}));
    body->add_output(b.sum(a));
    return body;
  };
  Graph g;
  Value *x = g.add_input("x", f32({2}));
  g.append(Op::Fused, {x}, {f32({})}, {{"kind", std::string("elementwise")}},
           sum_body());
  EXPECT_EQ(verify_error(g), "verifier: node 0 (fused): fused elementwise "
                             "body holds sum, which is not elementwise");
  Graph h;
  Value *y = h.add_input("y", f32({2}));
  h.append(Op::Fused, {y, y}, {f32({2})}, {{"kind", std::string("reduction")}},
           mul_add_body());
  EXPECT_EQ(verify_error(h), "verifier: node 0 (fused): fused reduction body "
                             "holds no reduction");
  Graph k;
  Value *z = k.add_input("z", f32({2}));
  k.append(Op::Fused, {z}, {f32({})}, {{"kind", std::string("reduction")}},
           sum_body());
  EXPECT_EQ(verify_error(k), "<no error>");
}

// --- sizes (issue 15, item 2) ------------------------------------------------

TEST(Verifier, ResultTooLargeToIndex) {
  Graph g;
  Value *x = g.add_input("x", f32({int64_t{1} << 30, 1}));
  Value *y = g.add_input("y", f32({int64_t{1} << 30}));
  g.append(Op::Add, {x, y}, {f32({int64_t{1} << 30, int64_t{1} << 30})});
  EXPECT_EQ(verify_error(g), "verifier: node 0 (add): result shape "
                             "[1073741824,1073741824] has more than 2^56 "
                             "elements");
}

TEST(Verifier, ReshapeToAnOverflowingShape) {
  Graph g;
  Value *x = g.add_input("x", f32({2, 3}));
  g.append(Op::Reshape, {x}, {f32({6})},
           {{"shape", std::vector<int64_t>{INT64_MAX, 3}}});
  EXPECT_EQ(verify_error(g), "verifier: node 0 (reshape): reshape to "
                             "[9223372036854775807,3] has more than 2^56 "
                             "elements");
}

TEST(Builder, RefusesAResultTooLargeToIndex) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({int64_t{1} << 40, 1}));
  Value *y = g.add_input("y", f32({int64_t{1} << 40}));
  try {
    b.add(x, y);
    FAIL() << "no error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(),
                 "shape [1099511627776,1099511627776] has more than 2^56 "
                 "elements");
  }
  EXPECT_THROW(b.reshape(x, {INT64_MAX, 4, -1}), Error);
}

TEST(Numel, IsCheckedAndZeroDimsStillBound) {
  EXPECT_EQ(numel({2, 3}), 6);
  EXPECT_EQ(numel({}), 1);
  EXPECT_EQ(numel({0, 5}), 0);
  EXPECT_EQ(numel({int64_t{1} << 56}), int64_t{1} << 56);
  EXPECT_THROW(numel({INT64_MAX, 3}), Error);
  EXPECT_THROW(numel({0, int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_THROW(numel({-1, 2}), Error);
}

} // namespace
} // namespace kiln
