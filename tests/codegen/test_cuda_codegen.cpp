// The CUDA emitter, checked without a GPU: every generated kernel compiles
// with NVRTC to PTX (compute_90) and to a cubin (sm_90), and ptxas assembles
// the PTX for sm_90; the one-translation-unit form compiles with nvcc. A
// codegen error therefore fails CI on a machine without a GPU.
#include "codegen/cuda_emitter.h"
#include "codegen/cuda_nvrtc.h"
#include "cuda_test_graphs.h"
#include "ir/builder.h"
#include "passes/fuse_elementwise.h"
#include "passes/fuse_optimizer.h"
#include "plan/kernel_plan.h"
#include "tests/support/random_graph.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace kiln::cuda {
namespace {

namespace fs = std::filesystem;

std::string tool(const char *name) {
  for (std::string dir :
       {std::string(KILN_CUDA_BIN_DIR), std::string("/usr/local/cuda/bin")}) {
    fs::path p = fs::path(dir) / name;
    if (fs::exists(p))
      return p.string();
  }
  return name;
}

fs::path scratch() {
  fs::path d = fs::temp_directory_path() /
               ("kiln_cuda_codegen_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

struct Counts {
  int kernels = 0, units = 0, ptx = 0, cubin = 0, ptxas = 0;
  ~Counts() {
    std::printf("[cuda codegen] %d kernels in %d translation units: NVRTC "
                "PTX %d, NVRTC cubin %d, ptxas %d\n",
                kernels, units, ptx, cubin, ptxas);
  }
};
Counts counts;

// The kernels of a graph in one translation unit, as the runtime compiles
// them: NVRTC to PTX (compute_90) and to a cubin (sm_90), then ptxas on the
// PTX; no kernel cache, so everything really goes through the compilers.
void compile_graph(const Graph &g) {
  SCOPED_TRACE("graph @" + g.name);
  std::vector<CudaKernel> ks;
  ASSERT_NO_THROW(ks = emit_cuda_kernels(g));
  if (ks.empty())
    return;
  std::string src = emit_cuda_translation_unit(g);
  ++counts.units;
  NvrtcOptions o;
  o.ptx = true;
  NvrtcResult ptx;
  ASSERT_NO_THROW(ptx = nvrtc_compile(src, g.name, o, nullptr)) << src;
  for (const CudaKernel &k : ks)
    EXPECT_NE(ptx.binary.find(".entry " + k.name), std::string::npos) << k.name;
  counts.ptx += static_cast<int>(ks.size());
  counts.kernels += static_cast<int>(ks.size());
  o.ptx = false;
  NvrtcResult cubin;
  ASSERT_NO_THROW(cubin = nvrtc_compile(src, g.name, o, nullptr)) << src;
  ASSERT_GT(cubin.binary.size(), 4u);
  EXPECT_EQ(cubin.binary.substr(1, 3), "ELF");
  counts.cubin += static_cast<int>(ks.size());
  fs::path dir = scratch();
  fs::path p = dir / (g.name + ".ptx");
  std::ofstream(p) << ptx.binary;
  std::string cmd = fmt::format("{} -arch=sm_90 {} -o {} 2>&1", tool("ptxas"),
                                p.string(), (dir / (g.name + ".o")).string());
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd;
  if (rc == 0)
    counts.ptxas += static_cast<int>(ks.size());
}

class CudaCodegen : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!nvrtc_available(&why))
      GTEST_SKIP() << "no NVRTC: " << why;
  }
};

TEST_F(CudaCodegen, EveryStandaloneOpCompiles) {
  auto graphs = testing::standalone_op_graphs();
  // Every elementwise, reduction and new layout op appears at least once.
  for (int o = 0; o < kNumOps; ++o) {
    const OpInfo &info = op_info(static_cast<Op>(o));
    bool layout =
        info.op == Op::Concat || info.op == Op::Slice || info.op == Op::Pad;
    if (!info.has(kElementwise) && !info.has(kReduction) && !layout)
      continue;
    bool seen = false;
    for (auto &ng : graphs)
      seen = seen || ng.graph->nodes().back()->op == info.op;
    EXPECT_TRUE(seen) << info.name;
  }
  compile_graph(*testing::merge_graphs(graphs, "standalone_ops"));
}

TEST_F(CudaCodegen, HandBuiltFusedNodesCompile) {
  compile_graph(*testing::merge_graphs(testing::fused_graphs(), "fused"));
}

TEST_F(CudaCodegen, RandomGraphsCompileStandaloneAndFused) {
  std::vector<testing::NamedGraph> plain, fused;
  for (uint64_t seed = 1; seed <= 12; ++seed)
    for (DType dt : {DType::f32, DType::f64}) {
      testing::RandomGraphOptions opt;
      opt.dtype = dt;
      plain.push_back({"random", testing::random_graph(seed, opt)});
      auto g = testing::random_graph(seed, opt);
      run_fuse_elementwise(*g);
      fused.push_back({"random_fused", std::move(g)});
    }
  int fused_nodes = 0;
  for (auto &ng : fused)
    for (auto &n : ng.graph->nodes())
      fused_nodes += n->op == Op::Fused;
  EXPECT_GT(fused_nodes, 0);
  compile_graph(*testing::merge_graphs(plain, "random"));
  compile_graph(*testing::merge_graphs(fused, "random_fused"));
}

TEST_F(CudaCodegen, MultiTensorSharesCodeAcrossShapes) {
  auto graphs = testing::fused_graphs();
  const Graph &g = *graphs.back().graph;
  ASSERT_EQ(g.name, "fused_sgd_multi_tensor");
  CudaKernel k = emit_cuda_kernel(*g.nodes().back(), "kiln_mt");
  ASSERT_TRUE(k.multi_tensor);
  ASSERT_EQ(k.mt_entries.size(), 3u);
  // Three chains of one structure: one code path, one switch case.
  for (const MtEntry &e : k.mt_entries)
    EXPECT_EQ(e.variant, 0);
  EXPECT_EQ(k.kernel.find("case 1:"), std::string::npos);
  EXPECT_EQ(k.mt_entries[0].numel, 784 * 256);
  EXPECT_EQ(k.mt_entries[1].block_begin, (784 * 256 + 4095) / 4096);
  EXPECT_EQ(k.launch.exact_grid, k.mt_entries[2].block_begin + 1);
  // Slots: lr, w, v, g, then the two results of chain 0.
  std::vector<int> first(k.mt_slots.begin(), k.mt_slots.begin() + 6);
  EXPECT_EQ(first, (std::vector<int>{0, 1, 2, 3, -1, -2}));
}

// The execution plan's broadcast copy kernel (plan/kernel_plan.h): a fused
// elementwise node whose body output is its body input, stored over the
// node's (broadcast) result shape; and the one-line launch description of
// `kiln ir --stage plan --target cuda`.
TEST(CudaCopyKernel, BodyInputAsOutputIsStoredBroadcast) {
  for (Shape from : {Shape{3}, Shape{}, Shape{2, 1}}) {
    SCOPED_TRACE(shape_str(from));
    auto g = make_copy_kernel({DType::f32, from}, {2, 3});
    const Node &n = *g->nodes()[0];
    CudaKernel k;
    ASSERT_NO_THROW(k = emit_cuda_kernel(n, "kiln_copy"));
    EXPECT_NE(k.kernel.find("out0["), std::string::npos) << k.kernel;
    EXPECT_EQ(k.launch.units, 2); // 6 elements, 4 per unit
    EXPECT_EQ(cuda_launch_detail(n, "kiln_k3_broadcast_to"),
              "cuda: kiln_k3_broadcast_to grid<=1 block=256x1 units=2");
  }
  auto g = make_copy_kernel({DType::f32, {3}}, {2, 3});
  CudaKernel k = emit_cuda_kernel(*g->nodes()[0], "kiln_copy");
  EXPECT_NE(k.kernel.find("in0[((i % 3LL))]"), std::string::npos) << k.kernel;
  EXPECT_EQ(cuda_kernel_name(3, *g->nodes()[0]), "kiln_k3_fused_elementwise");
}

TEST_F(CudaCodegen, CopyKernelsCompile) {
  auto g = std::make_unique<Graph>("copies");
  for (Shape from : {Shape{3}, Shape{}, Shape{2, 1}, Shape{2, 3}}) {
    auto c = make_copy_kernel({DType::f32, from}, {2, 3});
    const Node &n = *c->nodes()[0];
    Value *x = g->add_input("x", n.operands[0]->type);
    g->add_output(g->copy_node(n, {x})->result());
  }
  compile_graph(*g);
}

TEST_F(CudaCodegen, ElementwiseKernelShape) {
  auto graphs = testing::fused_graphs();
  const Graph &g = *graphs.front().graph;
  CudaKernel k = emit_cuda_kernel(*g.nodes().back(), "kiln_bias_relu");
  // Vector path for full-size operands, broadcast row offset, hoisted scalar,
  // a comment naming the fused ops, f32 literals.
  EXPECT_NE(k.kernel.find("kiln_vec4<float>"), std::string::npos);
  EXPECT_NE(k.kernel.find("kiln_aligned4(in0)"), std::string::npos);
  EXPECT_EQ(k.kernel.find("kiln_aligned4(in1)"), std::string::npos);
  EXPECT_NE(k.kernel.find("in1[((i % 256LL))]"), std::string::npos);
  EXPECT_NE(k.kernel.find("= in2[0];"), std::string::npos);
  EXPECT_NE(k.kernel.find("[add, relu, mul, constant, gt]"), std::string::npos)
      << k.kernel;
  EXPECT_NE(k.kernel.find("0.5f"), std::string::npos);
  EXPECT_EQ(k.launch.units, 64 * 256 / 4);
}

TEST_F(CudaCodegen, ReductionLayouts) {
  auto kernel_of = [](std::vector<int64_t> axes, Shape s) {
    Graph g("r");
    Builder b(g);
    Value *x = g.add_input("x", {DType::f32, s});
    b.sum(x, axes);
    return emit_cuda_kernel(*g.nodes().back(), "k");
  };
  EXPECT_NE(kernel_of({1}, {64, 10}).kernel.find("kiln_warp_reduce"),
            std::string::npos);
  EXPECT_NE(kernel_of({1}, {4, 5000}).kernel.find("kiln_block_reduce"),
            std::string::npos);
  CudaKernel col = kernel_of({0}, {1024, 130});
  EXPECT_NE(col.kernel.find("part[8][33]"), std::string::npos);
  EXPECT_EQ(col.launch.block_y, 8);
  EXPECT_NE(kernel_of({0, 2}, {4, 5, 6}).kernel.find("const long long base"),
            std::string::npos);
}

TEST_F(CudaCodegen, ContractExtensionsCompile) {
  auto graphs = testing::contract_graphs();
  for (auto &ng : graphs) {
    SCOPED_TRACE(ng.name);
    const Node &n = *ng.graph->nodes().back();
    ASSERT_EQ(n.op, Op::Fused);
    ASSERT_NO_THROW(emit_cuda_kernel(n, "k"));
  }
  compile_graph(*testing::merge_graphs(graphs, "contract"));
}

// A graph with iotas, unfused and after fuse-elementwise (whatever fused
// nodes the pass makes of it are within the contract).
TEST_F(CudaCodegen, IotaGraphCompilesStandaloneAndFused) {
  auto plain = testing::iota_loss_graph();
  compile_graph(*plain);
  auto fused = testing::iota_loss_graph();
  run_fuse_elementwise(*fused);
  int fused_nodes = 0;
  for (auto &n : fused->nodes())
    fused_nodes += n->op == Op::Fused;
  EXPECT_GT(fused_nodes, 0);
  compile_graph(*fused);
}

// Float -> int casts saturate (NaN -> 0) and integer constants are clamped
// and spelled as valid C (INT64_MIN is not a literal): the source compiles,
// standalone and fused. The values are checked on the interpreter and the
// CPU backend (no GPU was at hand to run these kernels).
TEST_F(CudaCodegen, SaturatingCastsAndExtremeIntConstantsCompile) {
  auto build = [] {
    auto g = std::make_unique<Graph>("casts");
    Builder b(*g);
    for (DType from : {DType::f32, DType::f64}) {
      Value *x =
          g->add_input(fmt::format("x{}", dtype_name(from)), Type{from, {37}});
      Value *y = b.add(x, b.scalar(1, from));
      for (DType to : {DType::i32, DType::i64, DType::boolean})
        g->add_output(b.cast(y, to));
    }
    for (DType to : {DType::i32, DType::i64})
      for (double v : {1e20, -1e20, -0x1p63, -0x1p31}) {
        Value *k = b.constant(v, Type{to, {}});
        g->add_output(b.add(k, b.constant(0, Type{to, {37}})));
      }
    return g;
  };
  auto plain = build();
  compile_graph(*plain);
  std::string src = emit_cuda_translation_unit(*plain);
  EXPECT_NE(src.find("(-9223372036854775807LL - 1)"), std::string::npos);
  EXPECT_NE(src.find("(-2147483647 - 1)"), std::string::npos);
  EXPECT_NE(src.find("9223372036854775807LL"), std::string::npos);
  auto fused = build();
  ASSERT_TRUE(run_fuse_elementwise(*fused));
  compile_graph(*fused);
}

// The kernel of the fused node of contract graph `name`.
CudaKernel contract_kernel(const std::string &name) {
  for (auto &ng : testing::contract_graphs())
    if (ng.name == name)
      return emit_cuda_kernel(*ng.graph->nodes().back(), "kiln_" + name);
  ADD_FAILURE() << "no contract graph " << name;
  return {};
}

bool has(const CudaKernel &k, const std::string &text) {
  return k.kernel.find(text) != std::string::npos;
}

TEST_F(CudaCodegen, IotaInElementwiseKernels) {
  // [1,10] along axis 1 and [64,1] along axis 0 of a [64,10] space: the
  // coordinate along the matching space axis, in the register type; the full
  // input still takes the vector path (the iota is computed per element).
  CudaKernel k = contract_kernel("iota_ew_f32_rows_cols");
  EXPECT_TRUE(has(k, "kiln_cvt<float>((long long)((i % 10LL)))")) << k.kernel;
  EXPECT_TRUE(has(k, "kiln_cvt<float>((long long)((i / 10LL)))")) << k.kernel;
  EXPECT_TRUE(has(k, "kiln_vec4<float>"));
  EXPECT_TRUE(has(k, "kiln_aligned4(in0)"));
  EXPECT_NE(k.summary.find("iota"), std::string::npos);
  // 3-D: a [5,1] iota lines up with space axis 1, a rank-1 one with the last.
  CudaKernel k3 = contract_kernel("iota_ew_i32_3d");
  EXPECT_TRUE(has(k3, "kiln_cvt<int>((long long)(((i / 6LL) % 5LL)))"))
      << k3.kernel;
  EXPECT_TRUE(has(k3, "kiln_cvt<int>((long long)((i % 6LL)))")) << k3.kernel;
  EXPECT_TRUE(has(k3, "kiln_cvt<long long>((long long)((i / 30LL)))"))
      << k3.kernel;
  // Size 1 along the iota's axis: always 0.
  CudaKernel z = contract_kernel("iota_ew_f64_unit_axis");
  EXPECT_TRUE(has(z, "kiln_cvt<double>((long long)0)")) << z.kernel;
  // one_hot by iota: no contiguous input, the output alone decides the
  // vector path.
  CudaKernel oh = contract_kernel("iota_ew_one_hot");
  EXPECT_TRUE(has(oh, "if (kiln_aligned4(out0)) {")) << oh.kernel;
}

TEST_F(CudaCodegen, StandaloneIotaKernel) {
  Graph g("iota");
  Builder b(g);
  g.add_output(b.iota({DType::i64, {2, 3, 4}}, 1));
  CudaKernel k = emit_cuda_kernel(*g.nodes().back(), "kiln_iota");
  EXPECT_TRUE(has(k, "out0[i] = kiln_cvt<long long>((long long)(((i / 4LL) "
                     "% 3LL)));"))
      << k.kernel;
  EXPECT_EQ(k.launch.units, 24);
  compile_graph(g);
}

TEST_F(CudaCodegen, IotaInReductionPrologue) {
  CudaKernel k = contract_kernel("red_iota_one_hot_loss");
  // The class index is computed inside the prologue function at i.
  size_t x = k.kernel.find("kiln_red_iota_one_hot_loss_x(long long i");
  ASSERT_NE(x, std::string::npos) << k.kernel;
  size_t iota = k.kernel.find("kiln_cvt<int>((long long)((i % 10LL)))");
  ASSERT_NE(iota, std::string::npos) << k.kernel;
  EXPECT_LT(x, iota);
  EXPECT_LT(iota, k.kernel.find("__global__"));
  CudaKernel m = contract_kernel("red_middle_axis_iota_extra");
  EXPECT_TRUE(has(m, "kiln_cvt<double>((long long)(((i / 33LL) % 40LL)))"))
      << m.kernel;
}

TEST_F(CudaCodegen, ReductionEpilogues) {
  // sum, then / 64 and neg, as a function of the reduced value applied
  // before the store of out0.
  CudaKernel loss = contract_kernel("red_loss_epilogue");
  EXPECT_TRUE(has(loss, "__device__ __forceinline__ float "
                        "kiln_red_loss_epilogue_y(float r) {"))
      << loss.kernel;
  EXPECT_TRUE(has(loss, " = 64.0f;")) << loss.kernel;
  EXPECT_TRUE(has(loss, "(r / e")) << loss.kernel;
  EXPECT_TRUE(has(loss, "out0[row] = kiln_red_loss_epilogue_y(acc);"))
      << loss.kernel;
  // mean: the division comes first, then the epilogue.
  CudaKernel mean = contract_kernel("red_mean_epilogue_rows");
  EXPECT_TRUE(has(mean, "kiln_red_mean_epilogue_rows_y(acc / 100.0f)"))
      << mean.kernel;
  // amax with a bool result: the stored form of the epilogue's bool.
  CudaKernel amax = contract_kernel("red_amax_epilogue_extra");
  EXPECT_TRUE(has(amax, "__device__ __forceinline__ bool "
                        "kiln_red_amax_epilogue_extra_y(float r)"))
      << amax.kernel;
  EXPECT_TRUE(has(amax, "kiln_bool_t *__restrict__ out0")) << amax.kernel;
  EXPECT_TRUE(
      has(amax, "out0[row] = (kiln_bool_t)(kiln_red_amax_epilogue_extra_y("))
      << amax.kernel;
  // i32 out of an i32 sum.
  CudaKernel cnt = contract_kernel("red_i32_count_epilogue");
  EXPECT_TRUE(has(cnt, "int kiln_red_i32_count_epilogue_y(int r)"))
      << cnt.kernel;
  // Without an epilogue there is no _y function.
  auto graphs = testing::fused_graphs();
  for (auto &ng : graphs)
    if (ng.name == "fused_reduce_rows") {
      CudaKernel k = emit_cuda_kernel(*ng.graph->nodes().back(), "kr");
      EXPECT_EQ(k.kernel.find("kr_y"), std::string::npos);
    }
}

TEST_F(CudaCodegen, ReductionExtraOutputsInEveryLayout) {
  struct Case {
    std::string graph, layout;
    int extras;
  };
  const Case cases[] = {
      {"red_bias_grad_extra_cols", "part[8][33]", 1},
      {"red_rows_extras_warp", "kiln_warp_reduce(acc", 2},
      {"red_all_epilogue_extra", "kiln_warp_reduce(acc", 1},
      {"red_long_rows_extra_block", "kiln_block_reduce(acc", 1},
      {"red_all_long_extra_block", "kiln_block_reduce(acc", 1},
      {"red_noncontig_extra", "const long long base", 1},
      {"red_middle_axis_iota_extra", "part[8][33]", 1},
      {"red_amax_epilogue_extra", "kiln_warp_reduce(acc", 1},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.graph);
    CudaKernel k = contract_kernel(c.graph);
    EXPECT_TRUE(has(k, c.layout)) << k.kernel;
    std::string fn = "kiln_" + c.graph + "_x(";
    size_t kernel_at = k.kernel.find("__global__");
    ASSERT_NE(kernel_at, std::string::npos);
    std::string sig = k.kernel.substr(kernel_at);
    sig = sig.substr(0, sig.find('{'));
    size_t prev = sig.find("out0");
    ASSERT_NE(prev, std::string::npos) << sig;
    for (int e = 1; e <= c.extras; ++e) {
      std::string out = fmt::format("out{}", e);
      // A kernel parameter after out0, in order, stored by the prologue
      // function at i and passed to it by the kernel.
      size_t at = sig.find(" *__restrict__ " + out);
      ASSERT_NE(at, std::string::npos) << sig;
      EXPECT_GT(at, prev);
      prev = at;
      EXPECT_TRUE(has(k, out + "[i] = ")) << k.kernel;
      EXPECT_LT(k.kernel.find(out + "[i] = "), kernel_at);
      EXPECT_NE(k.kernel.find(", " + out, kernel_at), std::string::npos)
          << k.kernel;
    }
    EXPECT_EQ(sig.find(fmt::format("out{}", c.extras + 1)), std::string::npos);
    EXPECT_NE(k.summary.find("written as the reduction visits"),
              std::string::npos)
        << k.summary;
  }
  // The bool mask is stored as a byte; the bias gradient's out0 is [1,128].
  CudaKernel rows = contract_kernel("red_rows_extras_warp");
  EXPECT_TRUE(has(rows, "out2[i] = (kiln_bool_t)(")) << rows.kernel;
  CudaKernel bias = contract_kernel("red_bias_grad_extra_cols");
  EXPECT_NE(bias.summary.find("-> f32[1,128], f32[64,128]"), std::string::npos)
      << bias.summary;
}

TEST_F(CudaCodegen, ReductionContractViolationsNameThemselves) {
  auto expect_error = [](const std::string &what, const std::string &needle,
                         const std::function<std::vector<Value *>(
                             Builder &, const std::vector<Value *> &)> &fn) {
    SCOPED_TRACE(what);
    auto ng = testing::fused_graph(
        what, "reduction", {{DType::f32, {8, 16}}, {DType::f32, {8, 16}}}, fn);
    try {
      emit_cuda_kernel(*ng.graph->nodes().back(), "kiln_bad");
      ADD_FAILURE() << "expected an error";
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << e.what();
    }
  };
  using V = std::vector<Value *>;
  expect_error("epilogue_reads_input", "not the reduction's result",
               [](Builder &b, const V &a) {
                 return V{b.add(b.sum(a[0], {1}, true), a[1])};
               });
  expect_error("extra_of_wrong_shape", "not of the reduction input's shape",
               [](Builder &b, const V &a) {
                 return V{b.sum(a[0], {1}), b.scalar(1, DType::f32)};
               });
  expect_error(
      "two_reductions", "more than one reduction",
      [](Builder &b, const V &a) { return V{b.sum(b.sum(a[0], {1}))}; });
  expect_error("softmax_with_extra", "only output", [](Builder &b, const V &a) {
    Value *p = b.mul(a[0], a[1]);
    return V{b.softmax(p), p};
  });
}

TEST_F(CudaCodegen, CompileErrorsCarryTheLog) {
  NvrtcOptions o;
  o.ptx = true;
  try {
    nvrtc_compile("extern \"C\" __global__ void k() { undefined_thing(); }",
                  "bad", o, nullptr);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("undefined_thing"), std::string::npos);
  }
}

TEST_F(CudaCodegen, UnsupportedNodesNameThemselves) {
  Graph g("bad");
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {4, 4}});
  Value *y = g.add_input("y", {DType::f32, {4, 4}});
  // A fused elementwise node whose body holds a matmul.
  testing::fused(g, "elementwise", {x, y},
                 [](Builder &bb, const std::vector<Value *> &a) {
                   return std::vector<Value *>{bb.matmul(a[0], a[1])};
                 });
  try {
    emit_cuda_kernel(*g.nodes().back(), "kiln_bad");
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("matmul"), std::string::npos)
        << e.what();
  }
}

// An MLP training step's kernels, all in one translation unit, compiled as
// is by nvcc: what `kiln ir --stage kernels --target cuda` prints.
TEST_F(CudaCodegen, TranslationUnitCompilesWithNvcc) {
  Graph g("mlp_step");
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {64, 784}});
  Value *y = g.add_input("y", {DType::i32, {64}});
  Value *lr = g.add_input("lr", {DType::f32, {}});
  Value *w = g.add_input("w", {DType::f32, {784, 10}}, InputKind::param);
  Value *bias = g.add_input("b", {DType::f32, {10}}, InputKind::param);
  Value *logits = b.matmul(x, w);
  Value *z = testing::fused(g, "elementwise", {logits, bias},
                            [](Builder &bb, const std::vector<Value *> &a) {
                              return std::vector<Value *>{bb.add(a[0], a[1])};
                            });
  Value *lp = b.log_softmax(z);
  Value *oh = b.one_hot(y, 10);
  // The negation sits in the prologue: the body ends in its reduction.
  Value *loss = testing::fused(
      g, "reduction", {lp, oh}, [](Builder &bb, const std::vector<Value *> &a) {
        return std::vector<Value *>{bb.mean(bb.neg(bb.mul(a[0], a[1])))};
      });
  Value *dz = b.sub(b.softmax(z), oh);
  Value *gw = b.matmul(b.transpose(x), dz);
  Value *gb = b.sum(dz, {0});
  Value *upd = testing::fused(g, "multi_tensor", {lr, w, gw, bias, gb},
                              [](Builder &bb, const std::vector<Value *> &a) {
                                return std::vector<Value *>{
                                    bb.sub(a[1], bb.mul(a[2], a[0])),
                                    bb.sub(a[3], bb.mul(a[4], a[0]))};
                              });
  g.add_output(loss);
  g.add_output(upd, 3);
  g.add_output(g.nodes().back()->results[1], 4);
  std::string tu = emit_cuda_translation_unit(g);
  EXPECT_NE(tu.find("kiln_k2_log_softmax"), std::string::npos) << tu;
  EXPECT_EQ(tu.find("kiln_k0_"), std::string::npos); // matmul: cuBLAS
  fs::path dir = scratch();
  fs::path cu = dir / "mlp_step.cu";
  std::ofstream(cu) << tu;
  std::string cmd =
      fmt::format("{} -arch=sm_90 -cubin -o {} {} 2>&1", tool("nvcc"),
                  (dir / "mlp_step.cubin").string(), cu.string());
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << tu;
  EXPECT_TRUE(fs::exists(dir / "mlp_step.cubin"));
}

} // namespace
} // namespace kiln::cuda
