// Reverse-mode autodiff (passes/autodiff.h): a finite-difference gradient
// check for every differentiable op of the table (ir/ops.def), with
// broadcasting operands where the op broadcasts, plus accumulation, zero
// gradients, ties and kinks, and the `autodiff` pass's outputs.
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/interpreter.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"
#include "tests/support/gradcheck.h"

#include <gtest/gtest.h>

#include <functional>
#include <limits>

namespace kiln {
namespace {

using Data = std::vector<double>;
using kiln::testing::gradcheck;
using kiln::testing::gradcheck_inputs;

Type f64(Shape s) { return {DType::f64, std::move(s)}; }
Type f32(Shape s) { return {DType::f32, std::move(s)}; }

// sum(y * r) for a weight input r of y's type: a scalar whose gradient with
// respect to y is r, so that a VJP that mixes up elements is caught.
Value *weighted_sum(Graph &g, Builder &b, Value *y) {
  Value *r = g.add_input("r", y->type);
  return b.sum(b.mul(y, r));
}

struct GradCase {
  std::string name;
  Op op;                                            // the op under test
  std::function<Value *(Graph &, Builder &)> build; // returns the op's result
  double lo = -1, hi = 1;                           // input range
};

// Names the case in gtest's failure messages instead of dumping its bytes.
void PrintTo(const GradCase &c, std::ostream *os) { *os << c.name; }

GradCase unary(std::string name, Op op, double lo = -1, double hi = 1) {
  return {name, op,
          [op](Graph &g, Builder &b) {
            return b.op(op, {g.add_input("x", f64({2, 3}))});
          },
          lo, hi};
}

GradCase binary(std::string name, Op op, Shape a, Shape c, double lo = -1,
                double hi = 1) {
  return {
      name, op,
      [=](Graph &g, Builder &b) {
        return b.op(op, {g.add_input("a", f64(a)), g.add_input("b", f64(c))});
      },
      lo, hi};
}

GradCase reduce(std::string name, Op op, std::vector<int64_t> axes, bool keep) {
  return {name, op, [=](Graph &g, Builder &b) {
            Attrs at;
            if (!axes.empty())
              at.set("axes", axes);
            if (keep)
              at.set("keepdims", true);
            return b.op(op, {g.add_input("x", f64({2, 3, 4}))}, at);
          }};
}

std::vector<GradCase> cases() {
  std::vector<GradCase> c = {
      {"cast", Op::Cast,
       [](Graph &g, Builder &b) {
         return b.op(Op::Cast, {g.add_input("x", f64({2, 3}))},
                     {{"dtype", std::string("f64")}});
       }},
      unary("neg", Op::Neg),
      unary("abs", Op::Abs),
      unary("exp", Op::Exp),
      unary("log", Op::Log, 0.5, 2),
      unary("sqrt", Op::Sqrt, 0.5, 2),
      unary("rsqrt", Op::Rsqrt, 0.5, 2),
      unary("tanh", Op::Tanh),
      unary("sigmoid", Op::Sigmoid, -3, 3),
      unary("relu", Op::Relu),
      unary("erf", Op::Erf, -2, 2),
      unary("gelu", Op::Gelu, -3, 3),
      {"gelu_tanh", Op::Gelu,
       [](Graph &g, Builder &b) {
         return b.op(Op::Gelu, {g.add_input("x", f64({2, 3}))},
                     {{"approximate", "tanh"}});
       },
       -3, 3},
      {"clamp_both", Op::Clamp,
       [](Graph &g, Builder &b) {
         return b.op(Op::Clamp, {g.add_input("x", f64({2, 3}))},
                     {{"min", -0.5}, {"max", 0.5}});
       }},
      {"clamp_min", Op::Clamp,
       [](Graph &g, Builder &b) {
         return b.op(Op::Clamp, {g.add_input("x", f64({2, 3}))},
                     {{"min", 0.25}});
       }},
      {"clamp_max", Op::Clamp,
       [](Graph &g, Builder &b) {
         return b.op(Op::Clamp, {g.add_input("x", f64({2, 3}))},
                     {{"max", int64_t{0}}});
       }},
      binary("add_same", Op::Add, {2, 3}, {2, 3}),
      binary("add_row", Op::Add, {2, 3}, {3}),
      binary("add_both_broadcast", Op::Add, {2, 1, 3}, {4, 1}),
      binary("sub_column", Op::Sub, {2, 3}, {2, 1}),
      binary("sub_scalar_left", Op::Sub, {}, {2, 3}),
      binary("mul_row_left", Op::Mul, {3}, {2, 3}),
      binary("mul_outer", Op::Mul, {2, 1}, {1, 3}),
      binary("div_row", Op::Div, {2, 3}, {3}, 0.5, 2),
      binary("div_column_left", Op::Div, {2, 1}, {2, 3}, 0.5, 2),
      binary("pow_row", Op::Pow, {2, 3}, {3}, 0.5, 2),
      binary("pow_scalar_base", Op::Pow, {}, {2, 3}, 0.5, 2),
      binary("max_row", Op::Max, {2, 3}, {3}),
      binary("max_column_left", Op::Max, {2, 1}, {2, 3}),
      binary("min_row", Op::Min, {2, 3}, {3}),
      binary("min_outer", Op::Min, {2, 1}, {1, 3}),
      {"where_broadcast", Op::Where,
       [](Graph &g, Builder &b) {
         Value *c = g.add_input("c", {DType::boolean, {2, 1}});
         return b.where(c, g.add_input("a", f64({3})),
                        g.add_input("b", f64({2, 3})));
       }},
      {"where_scalar_branch", Op::Where,
       [](Graph &g, Builder &b) {
         Value *c = g.add_input("c", {DType::boolean, {2, 3}});
         return b.where(c, g.add_input("a", f64({})),
                        g.add_input("b", f64({1, 3})));
       }},
      reduce("sum_all", Op::Sum, {}, false),
      reduce("sum_axis0", Op::Sum, {0}, false),
      reduce("sum_axis1", Op::Sum, {1}, false),
      reduce("sum_axis2_keep", Op::Sum, {-1}, true),
      reduce("sum_axes02_keep", Op::Sum, {0, 2}, true),
      reduce("mean_all", Op::Mean, {}, false),
      reduce("mean_axis1", Op::Mean, {1}, false),
      reduce("mean_axes01_keep", Op::Mean, {0, 1}, true),
      reduce("amax_all", Op::Amax, {}, false),
      reduce("amax_axis0", Op::Amax, {0}, false),
      reduce("amax_axis2_keep", Op::Amax, {2}, true),
      {"log_softmax_last", Op::LogSoftmax,
       [](Graph &g, Builder &b) {
         return b.log_softmax(g.add_input("x", f64({2, 4})));
       }},
      {"log_softmax_axis0", Op::LogSoftmax,
       [](Graph &g, Builder &b) {
         return b.log_softmax(g.add_input("x", f64({3, 2, 2})), 0);
       }},
      {"softmax_last", Op::Softmax,
       [](Graph &g, Builder &b) {
         return b.softmax(g.add_input("x", f64({2, 4})));
       }},
      {"softmax_middle", Op::Softmax,
       [](Graph &g, Builder &b) {
         return b.softmax(g.add_input("x", f64({2, 3, 2})), 1);
       }},
      binary("matmul_2d", Op::Matmul, {2, 3}, {3, 4}),
      binary("matmul_batched", Op::Matmul, {2, 2, 3}, {2, 3, 2}),
      binary("matmul_broadcast_batch", Op::Matmul, {2, 1, 2, 3}, {3, 3, 2}),
      binary("matmul_shared_right", Op::Matmul, {2, 2, 3}, {3, 2}),
      {"transpose_3d", Op::Transpose,
       [](Graph &g, Builder &b) {
         return b.transpose(g.add_input("x", f64({2, 3, 4})), {2, 0, 1});
       }},
      {"reshape", Op::Reshape,
       [](Graph &g, Builder &b) {
         return b.reshape(g.add_input("x", f64({2, 3, 4})), {4, 6});
       }},
      {"broadcast_to", Op::BroadcastTo,
       [](Graph &g, Builder &b) {
         return b.broadcast_to(g.add_input("x", f64({3, 1})), {2, 3, 4});
       }},
      {"concat_three", Op::Concat,
       [](Graph &g, Builder &b) {
         return b.op(Op::Concat,
                     {g.add_input("a", f64({2, 3})),
                      g.add_input("b", f64({2, 1})),
                      g.add_input("c", f64({2, 2}))},
                     {{"axis", int64_t{-1}}});
       }},
      {"concat_axis0_reused", Op::Concat,
       [](Graph &g, Builder &b) {
         Value *a = g.add_input("a", f64({1, 3}));
         return b.op(Op::Concat, {a, g.add_input("b", f64({2, 3})), a});
       }},
      {"slice_bounds", Op::Slice,
       [](Graph &g, Builder &b) {
         return b.op(Op::Slice, {g.add_input("x", f64({3, 5}))},
                     {{"starts", std::vector<int64_t>{1, -4}},
                      {"stops", std::vector<int64_t>{100, 4}}});
       }},
      {"slice_strided", Op::Slice,
       [](Graph &g, Builder &b) {
         return b.op(Op::Slice, {g.add_input("x", f64({4, 7}))},
                     {{"starts", std::vector<int64_t>{0, 1}},
                      {"stops", std::vector<int64_t>{4, 7}},
                      {"steps", std::vector<int64_t>{3, 2}}});
       }},
      {"pad_edges", Op::Pad,
       [](Graph &g, Builder &b) {
         return b.op(
             Op::Pad, {g.add_input("x", f64({2, 3}))},
             {{"pads", std::vector<int64_t>{1, 0, 2, 1}}, {"value", 0.5}});
       }},
      {"pad_interior", Op::Pad,
       [](Graph &g, Builder &b) {
         return b.op(Op::Pad, {g.add_input("x", f64({2, 3}))},
                     {{"pads", std::vector<int64_t>{0, 1, 1, 0}},
                      {"interior", std::vector<int64_t>{2, 1}}});
       }},
      {"conv2d_strided_dilated_groups", Op::Conv2d,
       [](Graph &g, Builder &b) {
         return b.op(Op::Conv2d,
                     {g.add_input("x", f64({2, 4, 5, 6})),
                      g.add_input("w", f64({4, 2, 3, 2}))},
                     {{"stride", std::vector<int64_t>{2, 1}},
                      {"padding", std::vector<int64_t>{1, 2}},
                      {"dilation", std::vector<int64_t>{1, 2}},
                      {"groups", int64_t{2}}});
       }},
      {"im2col_padded", Op::Im2col,
       [](Graph &g, Builder &b) {
         return b.op(Op::Im2col, {g.add_input("x", f64({1, 2, 4, 5}))},
                     {{"kernel", std::vector<int64_t>{2, 3}},
                      {"stride", std::vector<int64_t>{1, 2}},
                      {"padding", std::vector<int64_t>{1, 1}}});
       }},
      {"col2im_groups", Op::Col2im,
       [](Graph &g, Builder &b) {
         // [N, groups, C/g*kh*kw, L] of a 2x4x4 image, kernel 2, stride 1.
         return b.op(Op::Col2im, {g.add_input("c", f64({1, 2, 4, 9}))},
                     {{"kernel", std::vector<int64_t>{2, 2}},
                      {"size", std::vector<int64_t>{4, 4}}});
       }},
      // Random inputs have no ties, so the max is differentiable.
      {"max_pool2d_overlapping_padded", Op::MaxPool2d,
       [](Graph &g, Builder &b) {
         return b.op(Op::MaxPool2d, {g.add_input("x", f64({2, 2, 5, 5}))},
                     {{"kernel", std::vector<int64_t>{3, 3}},
                      {"stride", std::vector<int64_t>{2, 2}},
                      {"padding", std::vector<int64_t>{1, 1}}});
       }},
      {"avg_pool2d_padded", Op::AvgPool2d,
       [](Graph &g, Builder &b) {
         return b.op(Op::AvgPool2d, {g.add_input("x", f64({1, 3, 4, 5}))},
                     {{"kernel", std::vector<int64_t>{2, 3}},
                      {"stride", std::vector<int64_t>{1, 2}},
                      {"padding", std::vector<int64_t>{1, 1}}});
       }},
      // Indices in [0, 3) (gradcheck_inputs), some repeated.
      {"gather_axis1", Op::Gather,
       [](Graph &g, Builder &b) {
         return b.op(Op::Gather,
                     {g.add_input("x", f64({2, 4, 3})),
                      g.add_input("i", {DType::i64, {2, 3}})},
                     {{"axis", int64_t{1}}});
       }},
      {"scatter_add_axis0", Op::ScatterAdd,
       [](Graph &g, Builder &b) {
         return b.op(Op::ScatterAdd,
                     {g.add_input("i", {DType::i32, {5}}),
                      g.add_input("u", f64({5, 2}))},
                     {{"size", int64_t{4}}});
       }},
  };
  return c;
}

// The graph of a case: its op, then a weighted sum as the loss.
std::unique_ptr<Graph> build(const GradCase &c) {
  auto g = std::make_unique<Graph>(c.name);
  Builder b(*g);
  Value *y = c.build(*g, b);
  g->add_output(weighted_sum(*g, b, y));
  return g;
}

class OpGradient : public ::testing::TestWithParam<GradCase> {};

TEST_P(OpGradient, MatchesFiniteDifferences) {
  const GradCase &c = GetParam();
  auto g = build(c);
  verify(*g);
  for (uint64_t seed : {1, 2}) {
    auto in = gradcheck_inputs(*g, seed, c.lo, c.hi);
    EXPECT_TRUE(gradcheck(*g, in)) << print(*g);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryOp, OpGradient, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<GradCase> &i) {
                           return i.param.name;
                         });

TEST(Autodiff, EveryDifferentiableOpHasAGradientCheck) {
  std::vector<GradCase> all = cases();
  for (int i = 0; i < kNumOps; ++i) {
    const OpInfo &info = op_info(static_cast<Op>(i));
    if (!info.vjp)
      continue;
    bool covered = false;
    for (const GradCase &c : all) {
      if (c.op != info.op)
        continue;
      auto g = build(c);
      for (auto &n : g->nodes())
        covered = covered || n->op == info.op;
    }
    EXPECT_TRUE(covered) << "no gradient check for op " << info.name;
  }
}

// --- hand-computed gradients ----------------------------------------------

// Gradients of g's first output w.r.t. the named inputs, evaluated.
std::vector<HostTensor> grads_of(Graph &g, std::vector<Value *> wrt,
                                 const std::vector<HostTensor> &in) {
  std::vector<Value *> gr = append_gradients(g, g.outputs.at(0).value, wrt);
  g.outputs.resize(1);
  for (Value *v : gr)
    g.add_output(v);
  verify(g);
  auto out = interpret(g, in);
  return {out.begin() + 1, out.end()};
}

TEST(Autodiff, AValueUsedSeveralTimesAccumulates) {
  // loss = sum(x*x + x + exp(0) * x) = sum(x^2 + 2x): dx = 2x + 2.
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({3}), InputKind::param);
  Value *one = b.exp(b.scalar(0, DType::f64));
  g.add_output(b.sum(b.add(b.add(b.mul(x, x), x), b.mul(one, x))));
  auto gr = grads_of(g, {x}, {HostTensor(f64({3}), {1, -2, 3})});
  EXPECT_EQ(gr[0].data, (Data{4, -2, 8}));
}

TEST(Autodiff, SharedSubexpressionsGradcheck) {
  // x feeds a softmax, a matmul and an elementwise chain at once.
  Graph g("shared");
  Builder b(g);
  Value *x = g.add_input("x", f64({2, 3}));
  Value *w = g.add_input("w", f64({3, 3}), InputKind::param);
  Value *h = b.tanh(b.matmul(x, w));
  Value *s = b.softmax(b.add(h, x));
  Value *y = b.mul(s, b.sigmoid(x));
  g.add_output(b.add(b.mean(y), b.sum(b.mul(h, h))));
  EXPECT_TRUE(gradcheck(g, gradcheck_inputs(g, 7)));
}

TEST(Autodiff, CrossEntropyGradcheck) {
  // -mean(sum(one_hot(y) * log_softmax(logits), -1)): labels get no
  // gradient (one_hot has none) and are skipped by gradcheck.
  Graph g("cross_entropy");
  Builder b(g);
  Value *x = g.add_input("x", f64({4, 5}));
  Value *w = g.add_input("w", f64({5, 3}), InputKind::param);
  Value *bias = g.add_input("b", f64({3}), InputKind::param);
  Value *y = g.add_input("y", {DType::i32, {4}});
  Value *logits = b.add(b.matmul(x, w), bias);
  Value *picked =
      b.sum(b.mul(b.one_hot(y, 3, DType::f64), b.log_softmax(logits)), {-1});
  g.add_output(b.neg(b.mean(picked)));
  EXPECT_TRUE(gradcheck(g, gradcheck_inputs(g, 3)));
  // With 1e4-scale logits the gradient is still finite and right.
  EXPECT_TRUE(gradcheck(g, gradcheck_inputs(g, 3, -100, 100),
                        {.eps = 1e-6, .rtol = 1e-5, .atol = 1e-6, .only = {}}));
}

TEST(Autodiff, UnusedParamGetsZeros) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2}), InputKind::param);
  Value *u = g.add_input("unused", f64({2, 2}), InputKind::param);
  g.add_output(b.sum(b.exp(x)));
  auto gr = grads_of(
      g, {x, u},
      {HostTensor(f64({2}), {0, 0}), HostTensor(f64({2, 2}), {5, 6, 7, 8})});
  EXPECT_EQ(gr[0].data, (Data{1, 1}));
  EXPECT_EQ(gr[1].type, f64({2, 2}));
  EXPECT_EQ(gr[1].data, (Data{0, 0, 0, 0}));
}

TEST(Autodiff, ParamBehindANonDifferentiableOpGetsZeros) {
  // A comparison and a cast to an integer let no gradient through.
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({3}), InputKind::param);
  Value *mask = b.cast(b.gt(x, b.scalar(0, DType::f64)), DType::f64);
  Value *trunc = b.cast(b.cast(x, DType::i32), DType::f64);
  g.add_output(b.sum(b.add(mask, trunc)));
  auto gr = grads_of(g, {x}, {HostTensor(f64({3}), {-1.5, 0.25, 2.5})});
  EXPECT_EQ(gr[0].data, (Data{0, 0, 0}));
}

TEST(Autodiff, CastThroughF32) {
  // d/dx sum(cast(cast(x, f32), f64) * 3) = 3, typed f64.
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2}), InputKind::param);
  Value *y = b.cast(b.cast(x, DType::f32), DType::f64);
  g.add_output(b.sum(b.mul(y, 3.0)));
  auto gr = grads_of(g, {x}, {HostTensor(f64({2}), {0.1, -7})});
  EXPECT_EQ(gr[0].type, f64({2}));
  EXPECT_EQ(gr[0].data, (Data{3, 3}));
}

TEST(Autodiff, F32GraphsGetF32Gradients) {
  Graph g;
  Builder b(g);
  Value *w = g.add_input("w", f32({2, 2}), InputKind::param);
  Value *x = g.add_input("x", f32({1, 2}));
  g.add_output(b.sum(b.matmul(x, w)));
  auto gr = grads_of(g, {w, x},
                     {HostTensor(f32({2, 2}), {1, 2, 3, 4}),
                      HostTensor(f32({1, 2}), {0.5, -1})});
  // d/dW sum(x W) = x^T 1 ; d/dx = 1 W^T (row sums of W).
  EXPECT_EQ(gr[0].type, f32({2, 2}));
  EXPECT_EQ(gr[0].data, (Data{0.5, 0.5, -1, -1}));
  EXPECT_EQ(gr[1].data, (Data{3, 7}));
}

TEST(Autodiff, AbsAndReluAtZero) {
  // d|x|/dx and relu' are taken as 0 at 0 (as PyTorch does).
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({3}), InputKind::param);
  g.add_output(b.sum(b.add(b.abs(x), b.mul(b.relu(x), 10.0))));
  auto gr = grads_of(g, {x}, {HostTensor(f64({3}), {-2, 0, 2})});
  EXPECT_EQ(gr[0].data, (Data{-1, 0, 11}));
}

TEST(Autodiff, BinaryMaxAndMinTiesSplitTheGradientAsTorch) {
  // As torch.maximum/minimum: where a == b each operand gets half of the
  // gradient (amax splits ties too).
  Graph g;
  Builder b(g);
  Value *a = g.add_input("a", f64({3}), InputKind::param);
  Value *c = g.add_input("b", f64({3}), InputKind::param);
  g.add_output(b.sum(b.add(b.max(a, c), b.mul(b.min(a, c), 10.0))));
  auto gr = grads_of(
      g, {a, c},
      {HostTensor(f64({3}), {1, 2, 5}), HostTensor(f64({3}), {3, 2, 4})});
  // Element 0: max is b, min is a. Element 1: tie. Element 2: max a, min b.
  EXPECT_EQ(gr[0].data, (Data{10, 5.5, 1}));
  EXPECT_EQ(gr[1].data, (Data{1, 5.5, 10}));
}

TEST(Autodiff, MaxMinReluAtTiesAndNaNMatchTorch) {
  // The numbers torch 1.13 gives (f64, backward of ones):
  //   torch.maximum(a, b), a = [1, 2, 3, nan, 1, nan], b = [1, 3, 2, 1, nan,
  //   nan]: a.grad = [0.5, 0, 1, 1, 1, 1], b.grad = [0.5, 1, 0, 1, 1, 1];
  //   torch.minimum: a.grad = [0.5, 1, 0, 1, 1, 1], b.grad = [0.5, 0, 1, 1,
  //   1, 1] (a NaN operand leaves both with the whole gradient);
  //   torch.relu(x), x = [-1, 0, 2, nan, inf, -inf]: x.grad = [0, 0, 1, 1,
  //   1, 0] (threshold_backward: 0 only where x <= 0).
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  HostTensor av(f64({6}), {1, 2, 3, nan, 1, nan});
  HostTensor bv(f64({6}), {1, 3, 2, 1, nan, nan});
  for (Op op : {Op::Max, Op::Min}) {
    Graph g;
    Builder b(g);
    Value *a = g.add_input("a", f64({6}), InputKind::param);
    Value *c = g.add_input("b", f64({6}), InputKind::param);
    g.add_output(b.sum(b.op(op, {a, c})));
    auto gr = grads_of(g, {a, c}, {av, bv});
    Data win_a =
        op == Op::Max ? Data{0.5, 0, 1, 1, 1, 1} : Data{0.5, 1, 0, 1, 1, 1};
    Data win_b =
        op == Op::Max ? Data{0.5, 1, 0, 1, 1, 1} : Data{0.5, 0, 1, 1, 1, 1};
    EXPECT_EQ(gr[0].data, win_a) << op_name(op);
    EXPECT_EQ(gr[1].data, win_b) << op_name(op);
  }
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({6}), InputKind::param);
  g.add_output(b.sum(b.relu(x)));
  auto gr =
      grads_of(g, {x}, {HostTensor(f64({6}), {-1, 0, 2, nan, inf, -inf})});
  EXPECT_EQ(gr[0].data, (Data{0, 0, 1, 1, 1, 0}));
}

TEST(Autodiff, ClampAtItsBoundsAndNaNMatchesTorch) {
  // torch 1.13, f64, backward of ones: torch.clamp(x, 0, 1) with x = [-1, 0,
  // 0.5, 1, 2, nan] gives x.grad = [0, 1, 1, 1, 0, 0] (the bounds pass the
  // gradient, a NaN does not); clamp(x, min=0): [0, 1, 1, 1, 1, 0];
  // clamp(x, 2, 1) (min > max): all 0.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  HostTensor xv(f64({6}), {-1, 0, 0.5, 1, 2, nan});
  auto grad = [&](Attrs at) {
    Graph g;
    Builder b(g);
    Value *x = g.add_input("x", f64({6}), InputKind::param);
    g.add_output(b.sum(b.op(Op::Clamp, {x}, std::move(at))));
    return grads_of(g, {x}, {xv})[0].data;
  };
  EXPECT_EQ(grad({{"min", 0.0}, {"max", 1.0}}), (Data{0, 1, 1, 1, 0, 0}));
  EXPECT_EQ(grad({{"min", 0.0}}), (Data{0, 1, 1, 1, 1, 0}));
  EXPECT_EQ(grad({{"min", 2.0}, {"max", 1.0}}), (Data{0, 0, 0, 0, 0, 0}));
}

TEST(Autodiff, GeluGradientsMatchTorch) {
  // torch 1.13: torch.nn.functional.gelu(x, approximate=...) in f64,
  // backward of ones, x = [-3, -1, -0.25, 0, 0.5, 2, 4].
  const Data none = {
      -0.01194564720418392, -0.08331547058768635, 0.304626645116364, 0.5,
      0.8674951246561629,   1.085231801078197,    1.0005036496612265};
  const Data tanh_form = {
      -0.011584166630969648, -0.08296408384578252, 0.30464590484893955, 0.5,
      0.8673699035346424,    1.0860992566236183,   1.000335123197122};
  for (const char *form : {"none", "tanh"}) {
    Graph g;
    Builder b(g);
    Value *x = g.add_input("x", f64({7}), InputKind::param);
    g.add_output(
        b.sum(b.op(Op::Gelu, {x}, {{"approximate", std::string(form)}})));
    auto gr =
        grads_of(g, {x}, {HostTensor(f64({7}), {-3, -1, -0.25, 0, 0.5, 2, 4})});
    const Data &want = std::string(form) == "none" ? none : tanh_form;
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(gr[0].data[i], want[i], 1e-14) << form << " " << i;
  }
}

TEST(Autodiff, AmaxTiesSplitTheGradientEvenly) {
  // Documented behaviour (as PyTorch's amax): the gradient of a maximum
  // attained by k elements is divided among them, g / k each, so that the
  // derivative along (1, 1, ..., 1) -- which moves the max by exactly 1 --
  // comes out as 1.
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2, 4}), InputKind::param);
  Value *w = g.add_input("w", f64({2}));
  g.add_output(b.sum(b.mul(b.amax(x, {1}), w)));
  auto gr = grads_of(g, {x},
                     {HostTensor(f64({2, 4}), {1, 3, 3, 2, 5, 5, 5, -1}),
                      HostTensor(f64({2}), {1, 6})});
  EXPECT_EQ(gr[0].data, (Data{0, 0.5, 0.5, 0, 2, 2, 2, 0}));
  // The same for a full reduction.
  Graph h;
  Builder hb(h);
  Value *y = h.add_input("y", f64({4}), InputKind::param);
  h.add_output(hb.amax(y));
  auto hr = grads_of(h, {y}, {HostTensor(f64({4}), {7, 7, 7, 7})});
  EXPECT_EQ(hr[0].data, (Data{0.25, 0.25, 0.25, 0.25}));
}

TEST(Autodiff, GradientOfTheLossItself) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({}), InputKind::param);
  g.add_output(x);
  auto gr = grads_of(g, {x}, {HostTensor(f64({}), {3})});
  EXPECT_EQ(gr[0].data, (Data{1}));
}

TEST(Autodiff, LossMustBeAFloatScalar) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2}));
  try {
    append_gradients(g, b.exp(x), {x});
    FAIL() << "expected kiln::Error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(),
                 "autodiff: the loss must be a float scalar, got f64[2]");
  }
  Value *n = g.add_input("n", {DType::i32, {}});
  EXPECT_THROW(append_gradients(g, n, {x}), Error);
}

TEST(Autodiff, FusedNodesHaveNoGradient) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2}), InputKind::param);
  auto body = std::make_unique<Graph>("body");
  {
    Builder bb(*body);
    body->add_output(bb.exp(body->add_input("a", f64({2}))));
  }
  Node *f = b.create(Op::Fused, {x}, {{"kind", std::string("elementwise")}},
                     {f64({2})}, std::move(body));
  try {
    append_gradients(g, b.sum(f->result()), {x});
    FAIL() << "expected kiln::Error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "autodiff: a fused node has no gradient; run "
                           "autodiff before fusion");
  }
}

// --- the `autodiff` pass ----------------------------------------------------

TEST(AutodiffPass, AppendsGradOutputsInParamOrder) {
  // loss = sum(x * w1 + b) with x: data, w1 and b: params, m: state.
  Graph g("train");
  Builder b(g);
  Value *w1 = g.add_input("w1", f64({2, 2}), InputKind::param);
  Value *x = g.add_input("x", f64({2}));
  Value *m = g.add_input("m", f64({2}), InputKind::state);
  Value *bias = g.add_input("b", f64({2}), InputKind::param);
  g.add_output(b.sum(b.add(b.mul(x, w1), bias)));
  g.add_output(b.mul(m, 0.9), /*alias=*/2);
  EXPECT_TRUE(run_autodiff(g));
  verify(g);
  ASSERT_EQ(g.outputs.size(), 4u);
  EXPECT_EQ(g.outputs[2].value->name, "grad_w1");
  EXPECT_EQ(g.outputs[3].value->name, "grad_b");
  EXPECT_EQ(g.outputs[2].alias, -1);
  EXPECT_EQ(g.outputs[3].alias, -1);
  EXPECT_EQ(g.outputs[2].value->type, w1->type);
  EXPECT_EQ(g.outputs[3].value->type, bias->type);
  std::string text = print(g);
  EXPECT_NE(text.find("return %"), std::string::npos);
  EXPECT_NE(text.find(", %grad_w1, %grad_b\n}"), std::string::npos) << text;
  auto out = interpret(
      g, {HostTensor(f64({2, 2}), {1, 2, 3, 4}), HostTensor(f64({2}), {5, 6}),
          HostTensor(f64({2}), {1, 1}), HostTensor(f64({2}), {0.5, 0.25})});
  EXPECT_EQ(out[0].item(), 5 + 12 + 15 + 24 + 2 * 0.75);
  // x broadcasts over w1's rows: d/dw1 = [x; x]; d/db = 2 (two rows).
  EXPECT_EQ(out[2].data, (Data{5, 6, 5, 6}));
  EXPECT_EQ(out[3].data, (Data{2, 2}));
}

TEST(AutodiffPass, NoParamsAddsNothing) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f64({2}));
  g.add_output(b.sum(x));
  run_autodiff(g);
  EXPECT_EQ(g.outputs.size(), 1u);
}

TEST(AutodiffPass, NeedsAnOutput) {
  Graph g("empty");
  g.add_input("w", f64({2}), InputKind::param);
  try {
    run_autodiff(g);
    FAIL() << "expected kiln::Error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "autodiff: graph @empty has no outputs");
  }
}

// --- gradcheck itself must be able to fail ---------------------------------

TEST(Gradcheck, ReportsTheWorstElement) {
  // relu is not differentiable at 0: autodiff takes 0 there, central
  // differences see (0.5 h - 0) / 2h = 0.5, so the check must fail and name
  // that element. (|x| at 0 would pass: it is symmetric, both say 0.)
  Graph g("relu_kink");
  Builder b(g);
  Value *y = g.add_input("y", f64({3}));
  g.add_output(b.sum(b.relu(y)));
  auto r = gradcheck(g, {HostTensor(f64({3}), {0.5, 0.0, -1})});
  ASSERT_FALSE(r);
  EXPECT_NE(std::string(r.message())
                .find("gradcheck of @relu_kink failed:\n  d(out0)/d%y[1] "
                      "(element 1 of 3, 1 of 3 out of tolerance): autodiff "
                      "0, finite differences 0.5"),
            std::string::npos)
      << r.message();
}

TEST(Gradcheck, RejectsF32Inputs) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2}));
  g.add_output(b.sum(x));
  auto r = gradcheck(g, {HostTensor(f32({2}), {1, 2})});
  ASSERT_FALSE(r);
  EXPECT_STREQ(r.message(),
               "gradcheck: float inputs must be f64, %x is f32[2]");
}

} // namespace
} // namespace kiln
