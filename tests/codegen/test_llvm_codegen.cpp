// The LLVM code generator itself: kernels vectorize, the process cache
// reuses compiled code, plans collapse axes as documented.
#include "codegen/llvm_kernel.h"
#include "codegen/llvm_plan.h"
#include "ir/builder.h"
#include "ir/error.h"
#include "runtime/cpu_backend.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

std::unique_ptr<Graph> unary_graph(Op op, Type t) {
  auto g = std::make_unique<Graph>();
  Value *x = g->add_input("x", t);
  Value *y = g->add_input("y", t);
  Builder b(*g);
  g->add_output(op == Op::Add ? b.add(x, y) : b.op(op, {x}));
  return g;
}

TEST(LlvmCodegen, ContiguousLoopVectorizes) {
  auto g = unary_graph(Op::Add, {DType::f32, {1000003}});
  auto w = wrap_as_fused(*g->nodes()[0]);
  std::string ir = llvm_kernel_ir(*w->nodes()[0], /*optimized=*/true);
  EXPECT_NE(ir.find("x float>"), std::string::npos) << ir;
  std::string raw = llvm_kernel_ir(*w->nodes()[0], /*optimized=*/false);
  EXPECT_NE(raw.find("noalias"), std::string::npos) << raw;
}

TEST(LlvmCodegen, RowReductionVectorizes) {
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {64, 1000}});
  Builder b(g);
  g.add_output(b.sum(x, {1}));
  auto w = wrap_as_fused(*g.nodes()[0]);
  std::string ir = llvm_kernel_ir(*w->nodes()[0], /*optimized=*/true);
  EXPECT_NE(ir.find("x double>"), std::string::npos) << ir;
}

TEST(LlvmCodegen, PlansCollapseAxes) {
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {8, 4, 16}});
  Value *bias = g.add_input("b", {DType::f32, {16}});
  Value *col = g.add_input("c", {DType::f32, {8, 4, 1}});
  Builder b(g);
  b.add(x, x);
  b.add(x, bias);
  b.mul(x, col);
  b.sum(x, {0});
  b.sum(x, {2});
  auto plan = [&](int i) {
    auto w = wrap_as_fused(*g.nodes()[i]);
    return plan_kernel(*w->nodes()[0]);
  };
  EXPECT_EQ(plan(0).segments[0].dims, (Shape{512}));
  EXPECT_EQ(plan(1).segments[0].dims, (Shape{32, 16}));
  EXPECT_EQ(plan(2).segments[0].dims, (Shape{32, 16}));
  KernelPlan cols = plan(3);
  EXPECT_EQ(cols.red.dims, (Shape{8, 64}));
  EXPECT_EQ(cols.red.r_total, 8);
  EXPECT_EQ(cols.red.i_total, 64);
  KernelPlan rows = plan(4);
  EXPECT_EQ(rows.red.o_total, 32);
  EXPECT_EQ(rows.red.r_total, 16);
  EXPECT_EQ(rows.work, 32);
}

TEST(LlvmCodegen, ProcessCacheReusesKernels) {
  auto g = unary_graph(Op::Tanh, {DType::f64, {123, 7}});
  auto cpu = make_cpu_backend();
  auto first = cpu->compile(*g);
  size_t cached = llvm_kernel_cache_size();
  auto second = cpu->compile(*g);
  EXPECT_EQ(cpu_executable_stats(*second)->kernels_compiled, 0);
  EXPECT_EQ(llvm_kernel_cache_size(), cached);
  auto other = unary_graph(Op::Tanh, {DType::f64, {123, 8}});
  auto third = cpu->compile(*other);
  EXPECT_EQ(cpu_executable_stats(*third)->kernels_compiled, 1);
}

TEST(LlvmCodegen, DescribeRejectsNonFused) {
  auto g = unary_graph(Op::Exp, {DType::f32, {3}});
  EXPECT_THROW(describe_kernel(*g->nodes()[0]), Error);
}

} // namespace
} // namespace kiln

namespace kiln {
namespace {

TEST(LlvmCodegen, ExpVectorizesThroughLibmvec) {
  auto g = unary_graph(Op::Sigmoid, {DType::f32, {1000003}});
  auto w = wrap_as_fused(*g->nodes()[0]);
  std::string ir = llvm_kernel_ir(*w->nodes()[0], /*optimized=*/true);
  // glibc's libmvec names vector functions _ZGV<isa><mask><lanes>v_expf.
  bool vector_exp = ir.find("_ZGV") != std::string::npos;
  if (!vector_exp)
    GTEST_SKIP() << "no vector exp on this host (libmvec missing?)";
  EXPECT_NE(ir.find("x float>"), std::string::npos);
}

} // namespace
} // namespace kiln
