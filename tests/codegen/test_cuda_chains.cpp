// The CUDA emitter's multi-tensor chains are the plan's (plan/kernel_plan.h,
// output_chains): the `chains` attribute, not a grouping of its own. Needs
// no GPU: only the emitted table is checked.
#include "codegen/cuda_emitter.h"
#include "ir/builder.h"
#include "ir/error.h"
#include "plan/kernel_plan.h"

#include <gtest/gtest.h>

namespace kiln::cuda {
namespace {

// One multi_tensor node over x: f32[4], y: f32[4] computing neg(x), exp(y),
// neg(y): three independent results, grouped by `chains`.
std::unique_ptr<Graph> three_results(std::vector<int64_t> chains) {
  auto g = std::make_unique<Graph>("g");
  Value *x = g->add_input("x", {DType::f32, {4}});
  Value *y = g->add_input("y", {DType::f32, {4}});
  auto body = std::make_unique<Graph>("body");
  Value *bx = body->add_input("x", x->type);
  Value *by = body->add_input("y", y->type);
  Builder b(*body);
  for (Value *r : {b.neg(bx), b.exp(by), b.neg(by)})
    body->add_output(r);
  std::vector<Type> types(3, x->type);
  Node *f = g->append(
      Op::Fused, {x, y}, types,
      {{"kind", std::string("multi_tensor")}, {"chains", std::move(chains)}},
      std::move(body));
  for (Value *r : f->results)
    g->add_output(r);
  return g;
}

TEST(CudaChains, MultiTensorTableFollowsTheChainsAttribute) {
  auto g = three_results({2, 1});
  const Node &n = *g->nodes()[0];
  CudaKernel k = emit_cuda_kernel(n, "k");
  ASSERT_EQ(k.mt_entries.size(), 2u);
  EXPECT_NE(k.summary.find("2 chains"), std::string::npos) << k.summary;
  // Slots: chain 0 reads x, y and writes results 0, 1; chain 1 reads y and
  // writes result 2 (results are -k-1).
  EXPECT_EQ(k.mt_slots, (std::vector<int>{0, 1, -1, -2, 1, -3}));
  EXPECT_EQ(k.mt_entries[1].ptr_offset, 4);
  // The same grouping as the plan's segments.
  KernelPlan p = plan_kernel(n);
  ASSERT_EQ(p.segments.size(), k.mt_entries.size());
  EXPECT_EQ(p.segments[0].outputs, (std::vector<int>{0, 1}));
}

TEST(CudaChains, ABadChainsAttributeIsAnError) {
  auto g = three_results({1, 1});
  EXPECT_THROW(emit_cuda_kernel(*g->nodes()[0], "k"), Error);
}

} // namespace
} // namespace kiln::cuda
