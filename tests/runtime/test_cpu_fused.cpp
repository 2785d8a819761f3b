// Fused nodes of all three kinds on the CPU backend against the reference
// interpreter, plus in-place updates and the executable's layout.
#include "cpu_test_util.h"

namespace kiln {
namespace {

using test::append_fused;
using test::check_against_interpreter;
using test::random_inputs;

// relu(x * w + b) * 0.5 + x with b broadcast along rows (or columns).
void bias_relu_graph(Graph &g, const Shape &xs, const Shape &bs, DType dt) {
  Value *x = g.add_input("x", {dt, xs});
  Value *w = g.add_input("w", {dt, xs});
  Value *bias = g.add_input("b", {dt, bs});
  Node *f = append_fused(
      g, "elementwise", {x, w, bias}, [&](Builder &b, std::vector<Value *> in) {
        Value *h = b.relu(b.add(b.mul(in[0], in[1]), in[2]));
        return std::vector<Value *>{b.add(b.mul(h, 0.5), in[0])};
      });
  g.add_output(f->result());
}

TEST(CpuFused, ElementwiseChainWithBroadcasts) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{1000003}, {}},    {{1000003}, {1000003}},
      {{64, 257}, {257}}, {{64, 257}, {64, 1}},
      {{7}, {1}},         {{3, 5, 7}, {5, 1}},
      {{1}, {1}}};
  for (DType dt : {DType::f32, DType::f64})
    for (auto &[xs, bs] : shapes) {
      Graph g;
      bias_relu_graph(g, xs, bs, dt);
      check_against_interpreter(g, random_inputs(g, 21),
                                fmt::format("fused {} {} {}", dtype_name(dt),
                                            shape_str(xs), shape_str(bs)));
    }
}

TEST(CpuFused, ElementwiseSeveralResultsConstantsAndCompare) {
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {13, 1003}});
  Value *y = g.add_input("y", {DType::f32, {1003}});
  Node *f = append_fused(
      g, "elementwise", {x, y}, [&](Builder &b, std::vector<Value *> in) {
        Value *c = b.constant(1.5, {DType::f32, {}});
        Value *s = b.sigmoid(b.sub(in[0], in[1]));
        Value *mask = b.gt(in[0], c);
        Value *t = b.where(mask, b.tanh(s), b.exp(b.neg(s)));
        return std::vector<Value *>{t, mask, b.cast(s, DType::f64)};
      });
  for (Value *r : f->results)
    g.add_output(r);
  // The f64 result is a cast of an f32 value: f32 tolerances.
  check_against_interpreter(g, random_inputs(g, 22), "multi-result fused", 1,
                            1e-5, 1e-6);
}

TEST(CpuFused, ReductionWithPrologue) {
  struct Case {
    Shape xs, ys;
    std::vector<int64_t> axes;
    bool keep;
  };
  const std::vector<Case> cases = {{{13, 1003}, {1003}, {1}, false},
                                   {{1003, 37}, {37}, {0}, true},
                                   {{1000003}, {}, {}, false},
                                   {{5, 6, 7}, {6, 1}, {0, 2}, false},
                                   {{64, 10}, {64, 1}, {1}, true}};
  for (Op op : {Op::Sum, Op::Mean, Op::Amax})
    for (const Case &c : cases) {
      Graph g;
      Value *x = g.add_input("x", {DType::f32, c.xs});
      Value *y = g.add_input("y", {DType::f32, c.ys});
      Node *f = append_fused(
          g, "reduction", {x, y}, [&](Builder &b, std::vector<Value *> in) {
            Value *d = b.sub(in[0], in[1]);
            Value *sq = b.mul(d, d);
            Value *r = op == Op::Sum    ? b.sum(sq, c.axes, c.keep)
                       : op == Op::Mean ? b.mean(sq, c.axes, c.keep)
                                        : b.amax(sq, c.axes, c.keep);
            return std::vector<Value *>{r};
          });
      g.add_output(f->result());
      check_against_interpreter(
          g, random_inputs(g, 23),
          fmt::format("fused {} of {}", op_name(op), shape_str(c.xs)));
    }
}

TEST(CpuFused, SoftmaxWithPrologue) {
  for (bool log : {false, true})
    for (int64_t axis : {1, 0}) {
      Graph g;
      Value *x = g.add_input("x", {DType::f32, {64, 10}});
      Value *t = g.add_input("t", {DType::f32, {}});
      Node *f = append_fused(
          g, "reduction", {x, t}, [&](Builder &b, std::vector<Value *> in) {
            Value *z = b.div(in[0], in[1]);
            return std::vector<Value *>{log ? b.log_softmax(z, axis)
                                            : b.softmax(z, axis)};
          });
      g.add_output(f->result());
      check_against_interpreter(g, random_inputs(g, 24, 0.5, 3),
                                fmt::format("fused softmax {} {}", log, axis));
    }
}

// SGD with momentum and weight decay over several params of different
// shapes in one multi_tensor launch; params and momenta updated in place.
void sgd_graph(Graph &g, const std::vector<Shape> &shapes) {
  std::vector<Value *> ps, gs, vs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    ps.push_back(g.add_input(fmt::format("p{}", i), {DType::f32, shapes[i]},
                             InputKind::param));
    vs.push_back(g.add_input(fmt::format("v{}", i), {DType::f32, shapes[i]},
                             InputKind::state));
    gs.push_back(g.add_input(fmt::format("g{}", i), {DType::f32, shapes[i]}));
  }
  Value *lr = g.add_input("lr", {DType::f32, {}});
  std::vector<Value *> ops = ps;
  ops.insert(ops.end(), vs.begin(), vs.end());
  ops.insert(ops.end(), gs.begin(), gs.end());
  ops.push_back(lr);
  size_t n = shapes.size();
  Node *f = append_fused(
      g, "multi_tensor", ops, [&](Builder &b, std::vector<Value *> in) {
        std::vector<Value *> pn, vn;
        for (size_t i = 0; i < n; ++i) {
          Value *p = in[i], *v = in[n + i], *gr = in[2 * n + i];
          Value *d = b.add(gr, b.mul(p, 5e-4));
          Value *v2 = b.add(b.mul(v, 0.9), d);
          pn.push_back(b.sub(p, b.mul(in[3 * n], v2)));
          vn.push_back(v2);
        }
        pn.insert(pn.end(), vn.begin(), vn.end());
        return pn;
      });
  for (size_t i = 0; i < n; ++i)
    g.add_output(f->results[i], g.input_index(ps[i]));
  for (size_t i = 0; i < n; ++i)
    g.add_output(f->results[n + i], g.input_index(vs[i]));
}

TEST(CpuFused, MultiTensorSgdInPlace) {
  Graph g;
  sgd_graph(g, {{784, 256}, {256}, {256, 10}, {10}, {1}, {1000003}});
  auto exe = make_cpu_backend()->compile(g);
  const CpuExecutableStats *st = cpu_executable_stats(*exe);
  EXPECT_EQ(st->kernel_launches, 1);
  EXPECT_EQ(st->inplace_outputs, 12);
  EXPECT_EQ(st->copies, 0);
  EXPECT_EQ(st->arena_bytes, 0u);
  std::vector<Array> in = random_inputs(g, 25);
  std::vector<Array> out = exe->run(in);
  EXPECT_TRUE(out[0].shares_storage(in[0]));
  check_against_interpreter(g, random_inputs(g, 26), "multi_tensor sgd", 3);
}

TEST(CpuFused, AliasedOutputReadLaterIsCopied) {
  // p_next = p - 0.1 * g aliases p, but p is read again afterwards: the
  // update must not overwrite p before sum(p) reads it.
  Graph g;
  Value *p = g.add_input("p", {DType::f32, {1003}}, InputKind::param);
  Value *gr = g.add_input("g", {DType::f32, {1003}});
  Builder b(g);
  Value *pn = b.sub(p, b.mul(gr, 0.1));
  Value *s = b.sum(p);
  g.add_output(s);
  g.add_output(pn, 0);
  g.add_output(p); // the old value, as a plain output
  auto exe = make_cpu_backend()->compile(g);
  EXPECT_EQ(cpu_executable_stats(*exe)->inplace_outputs, 0);
  check_against_interpreter(g, random_inputs(g, 27), "aliased read later", 2);
}

TEST(CpuFused, ContractViolationsAreErrors) {
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {4, 5}});
  Node *f = append_fused(g, "elementwise", {x},
                         [&](Builder &b, std::vector<Value *> in) {
                           return std::vector<Value *>{b.sum(in[0], {1})};
                         });
  g.add_output(f->result());
  EXPECT_THROW(make_cpu_backend()->compile(g), Error);
  Graph h;
  Value *y = h.add_input("y", {DType::f32, {4}});
  Node *k = h.append(Op::Fused, {y}, {y->type}, {{"kind", std::string("odd")}},
                     std::make_unique<Graph>("body"));
  k->body->add_output(k->body->add_input("a", y->type));
  h.add_output(k->result());
  EXPECT_THROW(make_cpu_backend()->compile(h), Error);
}

} // namespace
} // namespace kiln
