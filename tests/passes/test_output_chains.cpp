// The chains of a fused node (plan/kernel_plan.h, output_chains): a
// multi_tensor node's `chains` attribute says which results form one loop,
// and the plan's segments follow it; a body that disagrees with the
// attribute is an error, not a silently different grouping.
#include "ir/builder.h"
#include "ir/error.h"
#include "plan/kernel_plan.h"

#include <gtest/gtest.h>

#include <functional>

namespace kiln {
namespace {

using Chains = std::vector<std::vector<int>>;
using BodyFn = std::function<std::vector<Value *>(
    Builder &, const std::vector<Value *> &)>;

// A graph holding one fused node of `kind` over inputs x: f32[4], y: f32[4],
// s: f32[2]; `chains` is set when not empty.
std::unique_ptr<Graph> one_fused(const std::string &kind, const BodyFn &fn,
                                 std::vector<int64_t> chains = {}) {
  auto g = std::make_unique<Graph>("g");
  std::vector<Value *> outer = {g->add_input("x", {DType::f32, {4}}),
                                g->add_input("y", {DType::f32, {4}}),
                                g->add_input("s", {DType::f32, {2}})};
  auto body = std::make_unique<Graph>("body");
  std::vector<Value *> ins;
  for (Value *v : outer)
    ins.push_back(body->add_input(v->name, v->type));
  Builder b(*body);
  std::vector<Type> types;
  for (Value *r : fn(b, ins)) {
    body->add_output(r);
    types.push_back(r->type);
  }
  Attrs attrs{{"kind", kind}};
  if (!chains.empty())
    attrs.set("chains", chains);
  Node *f = g->append(Op::Fused, outer, types, attrs, std::move(body));
  for (Value *r : f->results)
    g->add_output(r);
  return g;
}

const Node &fused_of(const Graph &g) { return *g.nodes()[0]; }

Chains segment_outputs(const KernelPlan &p) {
  Chains out;
  for (const SegmentPlan &s : p.segments)
    out.push_back(s.outputs);
  return out;
}

std::string error_of(const Node &n) {
  try {
    plan_kernel(n);
  } catch (const Error &e) {
    return e.what();
  }
  return "(no error)";
}

// Three results over independent inputs: without the attribute each is its
// own loop; `chains = [2, 1]` makes the first two one loop.
std::vector<Value *> three_results(Builder &b, const std::vector<Value *> &a) {
  return {b.neg(a[0]), b.exp(a[1]), b.neg(a[1])};
}

TEST(OutputChains, MultiTensorSegmentsFollowTheChainsAttribute) {
  auto g = one_fused("multi_tensor", three_results, {2, 1});
  const Node &n = fused_of(*g);
  EXPECT_EQ(output_chains(n), (Chains{{0, 1}, {2}}));
  KernelPlan p = plan_kernel(n);
  ASSERT_EQ(segment_outputs(p), (Chains{{0, 1}, {2}}));
  // Each segment evaluates exactly its chain's cone.
  EXPECT_EQ(p.segments[0].needed, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(p.segments[1].needed, (std::vector<bool>{false, false, true}));
  EXPECT_EQ(p.segments[0].numel, 4);
  EXPECT_EQ(p.segments[1].start, 4);
  EXPECT_EQ(p.work, 8);
  // The attribute is part of the machine code's identity.
  auto other = one_fused("multi_tensor", three_results, {1, 2});
  EXPECT_NE(kernel_key(n), kernel_key(fused_of(*other)));
  EXPECT_EQ(segment_outputs(plan_kernel(fused_of(*other))),
            (Chains{{0}, {1, 2}}));
}

TEST(OutputChains, WithoutTheAttributeSharedNodesJoinOutputs) {
  // Hand-written .kir may leave `chains` out: outputs whose cones share a
  // body node are one chain, in order of their first output.
  auto g = one_fused("multi_tensor", [](Builder &b, const auto &a) {
    Value *t = b.neg(a[1]);
    return std::vector<Value *>{b.neg(a[0]), b.exp(t), b.neg(a[2]), b.abs(t)};
  });
  EXPECT_EQ(output_chains(fused_of(*g)), (Chains{{0}, {1, 3}, {2}}));
  EXPECT_EQ(segment_outputs(plan_kernel(fused_of(*g))),
            (Chains{{0}, {1, 3}, {2}}));
}

TEST(OutputChains, ElementwiseIsOneChain) {
  auto g = one_fused("elementwise", [](Builder &b, const auto &a) {
    return std::vector<Value *>{b.neg(a[0]), b.exp(a[1])};
  });
  EXPECT_EQ(output_chains(fused_of(*g)), (Chains{{0, 1}}));
}

TEST(OutputChains, ScalarConstantsMayBeShared) {
  // A fill constant has no operands: two chains may read one.
  auto g =
      one_fused("multi_tensor",
                [](Builder &b, const auto &a) {
                  Value *c = b.constant(0.5, {DType::f32, {}});
                  return std::vector<Value *>{b.mul(a[0], c), b.mul(a[2], c)};
                },
                {1, 1});
  KernelPlan p = plan_kernel(fused_of(*g));
  ASSERT_EQ(segment_outputs(p), (Chains{{0}, {1}}));
  EXPECT_EQ(p.segments[0].needed, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(p.segments[1].needed, (std::vector<bool>{true, false, true}));
}

TEST(OutputChains, ChainsSharingABodyNodeAreAContractViolation) {
  auto g =
      one_fused("multi_tensor",
                [](Builder &b, const auto &a) {
                  Value *t = b.neg(a[0]);
                  return std::vector<Value *>{b.exp(t), b.neg(a[1]), b.abs(t)};
                },
                {1, 1, 1});
  EXPECT_EQ(error_of(fused_of(*g)), "fused multi_tensor chains 0 and 2 share "
                                    "body node 0 (neg)");
  EXPECT_THROW(output_chains(fused_of(*g)), Error);
}

TEST(OutputChains, CountsMustCoverTheResults) {
  auto few = one_fused("multi_tensor", three_results, {2});
  EXPECT_EQ(error_of(fused_of(*few)),
            "fused multi_tensor chains list 2 results but the node has 3");
  auto many = one_fused("multi_tensor", three_results, {2, 2});
  EXPECT_EQ(error_of(fused_of(*many)),
            "fused multi_tensor chains list 4 results but the node has 3");
  auto empty = one_fused("multi_tensor", three_results, {0, 3});
  EXPECT_EQ(error_of(fused_of(*empty)),
            "fused multi_tensor chain 0 lists 0 results; a chain has 1 to 3");
}

TEST(OutputChains, AChainsResultsShareOneShape) {
  auto g = one_fused("multi_tensor",
                     [](Builder &b, const auto &a) {
                       return std::vector<Value *>{b.neg(a[0]), b.neg(a[2])};
                     },
                     {2});
  EXPECT_EQ(error_of(fused_of(*g)),
            "fused multi_tensor chain 0 mixes result shapes [4] and [2]");
}

} // namespace
} // namespace kiln
