// The CUDA emitter, checked without a GPU: every generated kernel compiles
// with NVRTC to PTX (compute_90) and to a cubin (sm_90), and ptxas assembles
// the PTX for sm_90; the one-translation-unit form compiles with nvcc. A
// codegen error therefore fails CI on a machine without a GPU.
#include "codegen/cuda_emitter.h"
#include "codegen/cuda_nvrtc.h"
#include "cuda_test_graphs.h"
#include "passes/fuse_elementwise.h"
#include "passes/fuse_optimizer.h"
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
  // Every elementwise op of the table appears at least once.
  for (int o = 0; o < kNumOps; ++o) {
    const OpInfo &info = op_info(static_cast<Op>(o));
    if (!info.has(kElementwise) && !info.has(kReduction))
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
