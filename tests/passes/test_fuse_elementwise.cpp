#include "ir/builder.h"
#include "ir/error.h"
#include "ir/interpreter.h"
#include "ir/printer.h"
#include "passes/fuse_elementwise.h"
#include "test_util.h"

#include "../support/kernel_contract.h"
#include "../support/random_graph.h"

namespace kiln {
namespace {

using testing::count_kind;
using testing::count_ops;

const Node *only_fused(const Graph &g) {
  const Node *f = nullptr;
  for (auto &n : g.nodes())
    if (n->op == Op::Fused) {
      EXPECT_EQ(f, nullptr) << "more than one fused node";
      f = n.get();
    }
  return f;
}

TEST(FuseElementwise, ChainBecomesOneKernel) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f64, {4, 3}});
  Value *bias = g.add_input("bias", {DType::f64, {3}});
  Value *r = b.tanh(b.relu(b.add(x, bias)));
  g.add_output(b.mul(r, 2.0));
  auto ref = g.clone();
  EXPECT_TRUE(run_fuse_elementwise(g));
  verify(g);
  const Node *f = only_fused(g);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->attrs.get_str("kind"), "elementwise");
  EXPECT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(f->operands.size(), 2u) << "the scalar 2 is a body constant";
  EXPECT_EQ(f->body->nodes().size(), 5u);
  EXPECT_EQ(testing::check_kernel_contract(g), "");
  auto in = testing::random_inputs(g, 1);
  EXPECT_TRUE(testing::same_outputs(interpret(*ref, in), interpret(g, in), 0));
}

TEST(FuseElementwise, NoFusionAcrossMatmul) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f64, {4, 3}});
  Value *w = g.add_input("w", {DType::f64, {3, 3}});
  Value *a = b.relu(x);
  Value *m = b.matmul(a, w);
  g.add_output(b.exp(m));
  run_fuse_elementwise(g);
  verify(g);
  EXPECT_EQ(count_ops(g, Op::Matmul), 1);
  EXPECT_EQ(count_kind(g, "elementwise"), 2);
}

TEST(FuseElementwise, ValueUsedOutsideIsAnExtraResult) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f64, {3, 3}});
  Value *w = g.add_input("w", {DType::f64, {3, 3}});
  Value *a = b.exp(x);               // used by the matmul and the chain
  Value *c = b.mul(b.sigmoid(a), a); // same space as a
  g.add_output(b.add(c, b.matmul(a, w)));
  g.add_output(c);
  auto ref = g.clone();
  run_fuse_elementwise(g);
  verify(g);
  EXPECT_EQ(testing::check_kernel_contract(g), "");
  // exp, sigmoid and mul form one kernel with two results (a and c); the
  // final add reads c and the matmul.
  int two = 0;
  for (auto &n : g.nodes())
    two += n->op == Op::Fused && n->results.size() == 2;
  EXPECT_EQ(two, 1);
  auto in = testing::random_inputs(g, 2);
  EXPECT_TRUE(testing::same_outputs(interpret(*ref, in), interpret(g, in), 0));
}

TEST(FuseElementwise, BroadcastAndConstantFoldIntoBody) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f64, {4, 3}});
  Value *v = g.add_input("v", {DType::f64, {4, 1}});
  Value *bv = b.broadcast_to(v, {4, 3});
  Value *z = b.constant(0.5, {DType::f64, {4, 3}});
  g.add_output(b.mul(b.add(x, bv), z));
  auto ref = g.clone();
  run_fuse_elementwise(g);
  verify(g);
  EXPECT_EQ(g.nodes().size(), 1u);
  const Node *f = only_fused(g);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->operands, (std::vector<Value *>{v, x}))
      << "the body reads v and broadcasts it\n"
      << print(g);
  EXPECT_EQ(testing::check_kernel_contract(g), "");
  auto in = testing::random_inputs(g, 3);
  EXPECT_TRUE(testing::same_outputs(interpret(*ref, in), interpret(g, in), 0));
}

TEST(FuseElementwise, ReductionWithPrologue) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f64, {5, 4}});
  Value *dy = g.add_input("dy", {DType::f64, {5, 4}});
  Value *zero = b.scalar(0, DType::f64);
  Value *gz = b.where(b.gt(x, zero), dy, zero); // relu backward
  g.add_output(b.sum(gz, {0}));                 // bias gradient
  g.add_output(b.log_softmax(b.add(x, dy), -1));
  auto ref = g.clone();
  run_fuse_elementwise(g);
  verify(g);
  EXPECT_EQ(count_kind(g, "reduction"), 2);
  EXPECT_EQ(g.nodes().size(), 2u);
  EXPECT_EQ(testing::check_kernel_contract(g), "");
  auto in = testing::random_inputs(g, 4);
  EXPECT_TRUE(testing::same_outputs(interpret(*ref, in), interpret(g, in), 0));
}

TEST(FuseElementwise, CheapValueIsRecomputedInBothKernels) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f64, {5, 4}});
  Value *y = g.add_input("y", {DType::f64, {5, 4}});
  Value *a = b.add(x, y); // cheap, used by two kernels
  g.add_output(b.sum(a, {1}));
  g.add_output(b.relu(a));
  run_fuse_elementwise(g);
  verify(g);
  EXPECT_EQ(g.nodes().size(), 2u);
  for (auto &n : g.nodes())
    EXPECT_EQ(count_ops(*n->body, Op::Add), 1) << print(g);
}

TEST(FuseElementwise, NoCycleThroughMatmul) {
  // a feeds a matmul whose result joins a's consumer: a must not become an
  // extra result of that consumer's kernel.
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f64, {3, 3}});
  Value *a = b.exp(x);
  Value *m = b.matmul(a, a);
  g.add_output(b.mul(b.log(a), m));
  auto ref = g.clone();
  run_fuse_elementwise(g);
  verify(g);
  EXPECT_EQ(testing::check_kernel_contract(g), "");
  auto in = testing::random_inputs(g, 5);
  EXPECT_TRUE(testing::same_outputs(interpret(*ref, in), interpret(g, in), 0));
}

// one_hot of a data input fuses as an iota compare; labels out of [0, C)
// are still an error, now from the input's range, before anything runs.
TEST(FuseElementwise, OneHotOfAnInputKeepsItsLabelCheck) {
  Graph g("hot");
  Builder b(g);
  Value *y = g.add_input("y", {DType::i32, {5}});
  Value *p = g.add_input("p", {DType::f64, {5, 4}});
  Value *h = b.one_hot(y, 4, DType::f64);
  g.add_output(b.sum(b.mul(p, h), {0, 1}));
  g.add_output(b.sub(b.exp(p), h));
  auto ref = g.clone();
  ASSERT_TRUE(run_fuse_elementwise(g));
  verify(g);
  EXPECT_EQ(testing::check_kernel_contract(g), "");
  EXPECT_EQ(count_ops(g, Op::OneHot), 0);
  EXPECT_EQ(count_kind(g, "reduction") + count_kind(g, "elementwise"), 2);
  ASSERT_TRUE(g.inputs()[0].range.has_value());
  EXPECT_EQ(*g.inputs()[0].range, (InputRange{0, 4}));
  std::vector<HostTensor> in = testing::random_inputs(*ref, 3);
  in[0].data = {0, 3, 1, 2, 3};
  EXPECT_TRUE(testing::same_outputs(interpret(*ref, in), interpret(g, in), 0));
  in[0].data[2] = 4;
  try {
    interpret(g, in);
    ADD_FAILURE() << "label 4 of 4 classes was accepted";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "input %y of @hot: element 2 is 4, outside [0, 4), "
                           "the range of the one_hot {num_classes = 4} that "
                           "reads it");
  }
}

// Fused against unfused on random graphs, f64, relative 1e-12; the kernel
// contract holds for every fused node.
TEST(FuseElementwise, RandomGraphsMatchTheInterpreter) {
  int fused_nodes = 0, multi_op = 0, reductions = 0, extras = 0, epilogues = 0;
  for (uint64_t seed = 0; seed < 250; ++seed) {
    testing::RandomGraphOptions opt;
    opt.num_nodes = 8 + static_cast<int>(seed % 13);
    auto g = testing::random_graph(seed, opt);
    auto ref = g->clone();
    for (const char *pipeline :
         {"fuse-elementwise", "canonicalize,cse,dce,fuse-elementwise"}) {
      auto f = ref->clone();
      testing::run_passes(*f, pipeline);
      ASSERT_EQ(testing::check_kernel_contract(*f), "")
          << "seed " << seed << "\n"
          << print(*f);
      auto in = testing::random_inputs(*g, seed);
      ASSERT_TRUE(
          testing::same_outputs(interpret(*ref, in), interpret(*f, in), 1e-12))
          << "seed " << seed << " " << pipeline << "\n"
          << print(*ref) << print(*f);
      for (auto &n : f->nodes()) {
        fused_nodes += n->op == Op::Fused;
        multi_op += n->op == Op::Fused && n->body->nodes().size() > 2;
        reductions += n->op == Op::Fused &&
                      n->attrs.get_str("kind") == "reduction" &&
                      n->body->nodes().size() > 1;
        if (n->op != Op::Fused || n->attrs.get_str("kind") != "reduction")
          continue;
        extras += n->results.size() > 1;
        epilogues += !n->body->nodes().back()->info().has(kReduction);
      }
      for (auto &n : f->nodes())
        EXPECT_FALSE(n->info().has(kElementwise))
            << "elementwise op left unfused, seed " << seed;
    }
  }
  EXPECT_GT(fused_nodes, 500);
  EXPECT_GT(multi_op, 200) << "the generator should make real chains";
  EXPECT_GT(reductions, 50) << "reductions with a prologue";
  EXPECT_GT(extras, 20) << "reductions that also write a prologue value";
  EXPECT_GT(epilogues, 20) << "reductions with an epilogue";
}

} // namespace
} // namespace kiln
