// The LLVM code generator itself: kernels vectorize, the process cache
// reuses compiled code, plans collapse axes as documented.
#include "codegen/llvm_kernel.h"
#include "ir/builder.h"
#include "ir/error.h"
#include "passes/pass_manager.h"
#include "plan/kernel_plan.h"
#include "runtime/cpu_backend.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

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

// tanh and erf (and so gelu) call libm; LLVM 19's libmvec table has no
// tanh or erf, so the call names glibc's AVX2 variant itself and the loop
// vectorizes (a scalar tanhf per element was ~30x slower than torch).
TEST(LlvmCodegen, TanhAndErfVectorizeThroughLibmvec) {
  struct Case {
    Op op;
    Attrs attrs;
    DType dt;
    const char *variant;
  };
  const Case cases[] = {
      {Op::Tanh, {}, DType::f32, "@_ZGVdN8v_tanhf"},
      {Op::Tanh, {}, DType::f64, "@_ZGVdN4v_tanh("},
      {Op::Erf, {}, DType::f32, "@_ZGVdN8v_erff"},
      {Op::Erf, {}, DType::f64, "@_ZGVdN4v_erf("},
      {Op::Gelu, {}, DType::f32, "@_ZGVdN8v_erff"},
      {Op::Gelu, {{"approximate", "tanh"}}, DType::f32, "@_ZGVdN8v_tanhf"},
  };
  // The host's vector exp tells whether libmvec's AVX2 variants are used.
  auto sig = unary_graph(Op::Sigmoid, {DType::f32, {1000003}});
  std::string exp_ir =
      llvm_kernel_ir(*wrap_as_fused(*sig->nodes()[0])->nodes()[0], true);
  if (exp_ir.find("_ZGVdN8v_expf") == std::string::npos)
    GTEST_SKIP() << "no AVX2 libmvec on this host";
  for (const Case &c : cases) {
    Graph g;
    Value *x = g.add_input("x", {c.dt, {1000003}});
    Builder b(g);
    g.add_output(b.op(c.op, {x}, c.attrs));
    auto w = wrap_as_fused(*g.nodes()[0]);
    std::string ir = llvm_kernel_ir(*w->nodes()[0], /*optimized=*/true);
    std::string call =
        fmt::format("call <{} x {}> {}", c.dt == DType::f32 ? 8 : 4,
                    c.dt == DType::f32 ? "float" : "double", c.variant);
    EXPECT_NE(ir.find(call), std::string::npos)
        << op_name(c.op) << " " << dtype_name(c.dt) << ": no " << call;
  }
}

// Reductions over tensors with an empty axis (issue 15, item 1): after the
// default pipeline (canonicalize merges mean(sum(x)) into one reduction),
// the CPU backend plans and runs them as the reference does: nothing to
// write for f32[0], NaN (0/0) for the mean over an empty axis, 0 for a sum
// over it.
TEST(LlvmCodegen, EmptyAxisReductionsAfterThePipeline) {
  Graph g("empty");
  Value *x = g.add_input("x", {DType::f32, {0, 3, 4}});
  Value *y = g.add_input("y", {DType::f32, {2, 0, 4}});
  Builder b(g);
  g.add_output(b.mean(b.sum(x, {2}), {1}));
  g.add_output(b.mean(b.sum(y, {2}, true), {1}, true));
  g.add_output(b.sum(y, {1}));
  PassOptions opts;
  opts.read_env = false;
  opts.verify_each = true;
  PassManager pm(opts);
  pm.add_pipeline(default_pipeline());
  pm.run(g);
  std::vector<Array> in = {Array(x->type), Array(y->type)};
  auto cpu = make_cpu_backend()->compile(g);
  auto ref = make_interpreter_backend()->compile(g);
  std::vector<Array> a = cpu->run(in), r = ref->run(in);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(a[0].numel(), 0);
  for (size_t k = 1; k < 3; ++k) {
    ASSERT_EQ(a[k].numel(), r[k].numel());
    for (int64_t i = 0; i < a[k].numel(); ++i) {
      double u = a[k].get(i), v = r[k].get(i);
      EXPECT_TRUE(u == v || (std::isnan(u) && std::isnan(v)))
          << "output " << k << "[" << i << "]: " << u << " vs " << v;
    }
  }
  EXPECT_TRUE(std::isnan(a[1].get(0)));
  EXPECT_EQ(a[2].get(0), 0.0);
}

} // namespace
} // namespace kiln
