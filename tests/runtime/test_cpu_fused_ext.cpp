// The fused-node contract's extensions on the CPU backend, against the
// reference interpreter: iota as a body node (elementwise bodies and
// reduction prologues), a standalone iota, and reductions with an epilogue
// and extra outputs (multi-output fusion).
#include "codegen/llvm_kernel.h"
#include "cpu_test_util.h"

namespace kiln {
namespace {

using test::append_fused;
using test::check_against_interpreter;
using test::random_inputs;

// Integer labels in [0, classes).
Array random_labels(const Type &t, int64_t classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> u(0, classes - 1);
  Array a(t);
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, static_cast<double>(u(rng)));
  return a;
}

// ---- iota in elementwise bodies ----

struct IotaCase {
  Shape space, iota;
  int axis;
};

const std::vector<IotaCase> &iota_cases() {
  static const std::vector<IotaCase> cases = {{{37, 1}, {37, 1}, 0},
                                              {{37, 13}, {1, 13}, 1},
                                              {{37, 13}, {37, 1}, 0},
                                              {{37, 13}, {37, 13}, 0},
                                              {{37, 13}, {37, 13}, 1},
                                              {{4, 6}, {6}, 0},
                                              {{3, 5, 7}, {5, 1}, 0},
                                              {{3, 5, 7}, {3, 5, 7}, 2},
                                              {{3, 5, 7}, {3, 1, 7}, 0},
                                              {{3, 5, 7}, {3, 5, 7}, 1},
                                              {{257, 1031}, {1, 1031}, 1},
                                              {{257, 1031}, {257, 1}, 0},
                                              {{7}, {7}, 0},
                                              {{1}, {1}, 0}};
  return cases;
}

TEST(CpuFusedExt, IotaInElementwiseFloat) {
  for (DType dt : {DType::f32, DType::f64})
    for (const IotaCase &c : iota_cases()) {
      Graph g;
      Value *x = g.add_input("x", {dt, c.space});
      Node *f = append_fused(
          g, "elementwise", {x}, [&](Builder &b, std::vector<Value *> in) {
            Value *i = b.iota({dt, c.iota}, c.axis);
            // (i + 1) * x + i, with i read twice.
            Value *one = b.constant(1, {dt, {}});
            return std::vector<Value *>{b.add(b.mul(b.add(i, one), in[0]), i)};
          });
      g.add_output(f->result());
      check_against_interpreter(g, random_inputs(g, 31),
                                fmt::format("iota {} {} axis {} in {}",
                                            dtype_name(dt), shape_str(c.iota),
                                            c.axis, shape_str(c.space)));
    }
}

TEST(CpuFusedExt, IotaInElementwiseInteger) {
  for (DType dt : {DType::i32, DType::i64})
    for (const IotaCase &c : iota_cases()) {
      Graph g;
      Value *y = g.add_input("y", {DType::i32, c.space});
      Node *f = append_fused(
          g, "elementwise", {y}, [&](Builder &b, std::vector<Value *> in) {
            Value *i = b.iota({dt, c.iota}, c.axis);
            // y * 3 + i in i32 (integer arithmetic via the f64 working type),
            // whether y equals i (one_hot's comparison) and y - i.
            Value *three = b.constant(3, {DType::i32, {}});
            Value *i32 = b.cast(i, DType::i32);
            Value *s = b.add(b.mul(in[0], three), i32);
            Value *t = b.sub(b.cast(in[0], dt), i); // in the iota's dtype
            return std::vector<Value *>{s, b.eq(in[0], i32), t};
          });
      for (Value *r : f->results)
        g.add_output(r);
      std::vector<Array> in = {random_labels(y->type, 8, 32)};
      check_against_interpreter(g, in,
                                fmt::format("iota {} {} axis {} in {}",
                                            dtype_name(dt), shape_str(c.iota),
                                            c.axis, shape_str(c.space)));
    }
}

// An iota of the full space as a result: a fused node without inputs,
// alone and next to another chain's result.
TEST(CpuFusedExt, IotaAsResultWithoutInputs) {
  for (DType dt : {DType::f32, DType::i32, DType::i64, DType::f64})
    for (const IotaCase &c : iota_cases()) {
      if (c.iota != c.space)
        continue;
      Graph g;
      Node *f = append_fused(
          g, "elementwise", {}, [&](Builder &b, std::vector<Value *>) {
            Value *i = b.iota({dt, c.iota}, c.axis);
            return std::vector<Value *>{i, b.mul(i, b.constant(2, {dt, {}}))};
          });
      for (Value *r : f->results)
        g.add_output(r);
      check_against_interpreter(g, {},
                                fmt::format("iota result {} {} axis {}",
                                            dtype_name(dt), shape_str(c.space),
                                            c.axis));
    }
}

TEST(CpuFusedExt, StandaloneIota) {
  for (DType dt : {DType::f32, DType::i32, DType::i64, DType::f64})
    for (const IotaCase &c : iota_cases()) {
      if (c.iota != c.space)
        continue;
      Graph g;
      Value *x = g.add_input("x", {dt, c.space});
      Builder b(g);
      Value *i = b.iota({dt, c.space}, c.axis);
      g.add_output(i);
      g.add_output(b.add(x, i)); // a standalone add on the iota's array
      auto exe = make_cpu_backend()->compile(g);
      EXPECT_EQ(cpu_executable_stats(*exe)->kernel_launches, 2);
      check_against_interpreter(g, random_inputs(g, 33),
                                fmt::format("standalone iota {} {} axis {}",
                                            dtype_name(dt), shape_str(c.space),
                                            c.axis));
    }
}

// ---- iota in reduction prologues ----

// one_hot(y) by iota inside a reduction: sum(x * (y == iota)) over `axes`.
TEST(CpuFusedExt, IotaInReductionPrologue) {
  struct Case {
    Shape xs;
    std::vector<int64_t> axes;
    bool keep;
  };
  const std::vector<Case> cases = {
      {{64, 10}, {0, 1}, false}, {{64, 10}, {1}, true},
      {{64, 10}, {0}, false},    {{257, 1031}, {1}, false},
      {{257, 1031}, {0}, true},  {{7, 1}, {0}, false},
      {{1, 7}, {1}, false}};
  for (Op op : {Op::Sum, Op::Mean, Op::Amax})
    for (DType dt : {DType::f32, DType::f64})
      for (const Case &c : cases) {
        Graph g;
        Value *x = g.add_input("x", {dt, c.xs});
        Value *y = g.add_input("y", {DType::i32, {c.xs[0], 1}});
        Node *f = append_fused(
            g, "reduction", {x, y}, [&](Builder &b, std::vector<Value *> in) {
              Value *i = b.iota({DType::i32, {1, c.xs[1]}}, 1);
              Value *oh = b.cast(b.eq(in[1], i), dt);
              Value *p = b.mul(in[0], oh);
              Value *r = op == Op::Sum    ? b.sum(p, c.axes, c.keep)
                         : op == Op::Mean ? b.mean(p, c.axes, c.keep)
                                          : b.amax(p, c.axes, c.keep);
              return std::vector<Value *>{r};
            });
        g.add_output(f->result());
        std::mt19937 rng(34);
        std::vector<Array> in = {test::random_array(x->type, rng),
                                 random_labels(y->type, c.xs[1], 35)};
        check_against_interpreter(g, in,
                                  fmt::format("one_hot {} {} of {} axes {}",
                                              op_name(op), dtype_name(dt),
                                              shape_str(c.xs), c.axes.size()));
      }
}

// A float iota along each axis of a 3-D space, reduced over the others.
TEST(CpuFusedExt, IotaInReductionPrologue3d) {
  const Shape xs = {6, 70, 300};
  for (int axis = 0; axis < 3; ++axis)
    for (const std::vector<int64_t> &axes :
         std::vector<std::vector<int64_t>>{{1}, {0}, {2}, {0, 2}, {0, 1, 2}}) {
      Graph g;
      Value *x = g.add_input("x", {DType::f32, xs});
      Node *f = append_fused(
          g, "reduction", {x}, [&](Builder &b, std::vector<Value *> in) {
            Value *i = b.iota({DType::f32, xs}, axis);
            return std::vector<Value *>{b.sum(b.mul(in[0], i), axes)};
          });
      g.add_output(f->result());
      check_against_interpreter(
          g, random_inputs(g, 36),
          fmt::format("iota axis {} reduced over {} axes", axis, axes.size()));
    }
}

// ---- reductions with extra outputs ----

struct ExtraCase {
  Shape xs, bs; // bs broadcasts to xs
  std::vector<int64_t> axes;
  bool keep;
};

const std::vector<ExtraCase> &extra_cases() {
  static const std::vector<ExtraCase> cases = {
      {{64, 128}, {128}, {0}, true},       // bias gradient, I = 128
      {{64, 1000}, {1000}, {0}, false},    // I > 256: tiled
      {{257, 1031}, {1031}, {0}, true},    // large, tiled
      {{64, 128}, {64, 1}, {-1}, false},   // I == 1
      {{257, 1031}, {1}, {-1}, true},      // large, I == 1
      {{64, 128}, {128}, {0, 1}, false},   // everything
      {{6, 70, 300}, {70, 1}, {1}, false}, // middle axis, O = 6, I = 300
      {{6, 7, 5}, {5}, {1}, true},         // middle axis, small
      {{1, 1}, {1}, {0}, false},           // size 1
      {{7}, {}, {0}, false},               // size 7
      {{7, 7}, {7, 1}, {1}, false}};
  return cases;
}

// The bias-gradient body: h = x + b; m = h > 0; w = where(m, g, 0);
// outputs op(w) and, as extras, w, m and h (h directly an add of inputs).
Node *extras_graph(Graph &g, const ExtraCase &c, Op op, DType dt,
                   bool epilogue) {
  Value *x = g.add_input("x", {dt, c.xs});
  Value *bias = g.add_input("b", {dt, c.bs});
  Value *gr = g.add_input("g", {dt, c.xs});
  return append_fused(g, "reduction", {x, bias, gr},
                      [&](Builder &b, std::vector<Value *> in) {
                        Value *h = b.add(in[0], in[1]);
                        Value *zero = b.constant(0, {dt, {}});
                        Value *m = b.gt(h, zero);
                        Value *w = b.where(m, in[2], zero);
                        Value *r = op == Op::Sum    ? b.sum(w, c.axes, c.keep)
                                   : op == Op::Mean ? b.mean(w, c.axes, c.keep)
                                                    : b.amax(w, c.axes, c.keep);
                        if (epilogue) // 2 * r + 0.25, then its square
                          r = b.mul(b.add(b.mul(r, b.constant(2, {dt, {}})),
                                          b.constant(0.25, {dt, {}})),
                                    b.add(b.mul(r, b.constant(2, {dt, {}})),
                                          b.constant(0.25, {dt, {}})));
                        return std::vector<Value *>{r, w, m, h};
                      });
}

TEST(CpuFusedExt, ReductionExtraOutputs) {
  for (Op op : {Op::Sum, Op::Mean, Op::Amax})
    for (DType dt : {DType::f32, DType::f64})
      for (bool epilogue : {false, true})
        for (const ExtraCase &c : extra_cases()) {
          if (numel(c.xs) > 100000 && dt == DType::f64 && op != Op::Sum)
            continue; // the interpreter is slow; f32 covers these
          Graph g;
          Node *f = extras_graph(g, c, op, dt, epilogue);
          for (Value *r : f->results)
            g.add_output(r);
          check_against_interpreter(
              g, random_inputs(g, 37),
              fmt::format("extras {} {} epilogue {} of {} axes {}", op_name(op),
                          dtype_name(dt), epilogue, shape_str(c.xs),
                          c.axes.size()));
        }
}

// An extra output that is a body input itself, the reduction's operand.
TEST(CpuFusedExt, ReductionExtraIsOperand) {
  for (const ExtraCase &c : extra_cases()) {
    Graph g;
    Value *x = g.add_input("x", {DType::f32, c.xs});
    Node *f = append_fused(
        g, "reduction", {x}, [&](Builder &b, std::vector<Value *> in) {
          Value *e = b.exp(in[0]); // a prologue value not in the cone of R
          Value *s = b.sum(in[0], c.axes, c.keep);
          return std::vector<Value *>{s, in[0], e};
        });
    for (Value *r : f->results)
      g.add_output(r);
    check_against_interpreter(g, random_inputs(g, 38),
                              "extra is operand " + shape_str(c.xs));
  }
}

// The extra output updates its input in place (same shape, read at the
// index it writes), twice, with the reduction of the old values.
TEST(CpuFusedExt, ReductionExtraInPlace) {
  for (const ExtraCase &c : extra_cases()) {
    Graph g;
    Value *p = g.add_input("p", {DType::f32, c.xs}, InputKind::param);
    Value *gr = g.add_input("g", {DType::f32, c.xs});
    Node *f = append_fused(
        g, "reduction", {p, gr}, [&](Builder &b, std::vector<Value *> in) {
          Value *pn = b.sub(in[0], b.mul(in[1], 0.1));
          return std::vector<Value *>{b.sum(b.mul(in[0], in[0]), c.axes), pn};
        });
    g.add_output(f->results[0]);
    g.add_output(f->results[1], 0);
    auto exe = make_cpu_backend()->compile(g);
    EXPECT_EQ(cpu_executable_stats(*exe)->inplace_outputs, 1);
    EXPECT_EQ(cpu_executable_stats(*exe)->copies, 0);
    check_against_interpreter(g, random_inputs(g, 39),
                              "extra in place " + shape_str(c.xs), 2);
  }
}

TEST(CpuFusedExt, ExtraOutputsCountInBytesPerItem) {
  const ExtraCase &c = extra_cases()[0];
  Graph g, h;
  Node *f = extras_graph(g, c, Op::Sum, DType::f32, false);
  Value *x = h.add_input("x", {DType::f32, c.xs});
  Node *k = append_fused(
      h, "reduction", {x}, [&](Builder &b, std::vector<Value *> in) {
        return std::vector<Value *>{b.sum(in[0], c.axes, c.keep)};
      });
  LlvmKernelInfo with = describe_kernel(*f), without = describe_kernel(*k);
  EXPECT_EQ(with.num_args, 3 + 4);
  EXPECT_EQ(with.work, without.work);
  // The operand (4 bytes) plus w, m and h (4 + 1 + 4) per point.
  EXPECT_DOUBLE_EQ(with.bytes_per_item, without.bytes_per_item * 13 / 4);
}

// ---- epilogues ----

// The loss of a softmax-cross-entropy step: -(sum(x * y) / 64).
TEST(CpuFusedExt, LossEpilogue) {
  for (DType dt : {DType::f32, DType::f64}) {
    Graph g;
    Value *x = g.add_input("x", {dt, {64, 10}});
    Value *y = g.add_input("y", {dt, {64, 10}});
    Node *f = append_fused(g, "reduction", {x, y},
                           [&](Builder &b, std::vector<Value *> in) {
                             Value *s = b.sum(b.mul(in[0], in[1]), {0, 1});
                             Value *n = b.constant(64.0, {dt, {}});
                             return std::vector<Value *>{b.neg(b.div(s, n))};
                           });
    g.add_output(f->result());
    check_against_interpreter(g, random_inputs(g, 40),
                              fmt::format("loss {}", dtype_name(dt)));
  }
}

// Epilogues after sum, mean and amax over several spaces, with results of
// another dtype (a comparison, a cast) and a constant defined before the
// reduction.
TEST(CpuFusedExt, EpilogueKinds) {
  struct Case {
    Shape xs;
    std::vector<int64_t> axes;
    bool keep;
  };
  const std::vector<Case> cases = {{{64, 10}, {1}, true},
                                   {{64, 10}, {0}, false},
                                   {{257, 1031}, {0, 1}, false},
                                   {{257, 1031}, {0}, false},
                                   {{6, 70, 300}, {1}, true},
                                   {{6, 70, 300}, {0, 2}, false},
                                   {{1}, {0}, false},
                                   {{7}, {0}, true}};
  for (Op op : {Op::Sum, Op::Mean, Op::Amax})
    for (DType dt : {DType::f32, DType::f64})
      for (const Case &c : cases)
        for (int variant = 0; variant < 3; ++variant) {
          Graph g;
          Value *x = g.add_input("x", {dt, c.xs});
          Node *f = append_fused(
              g, "reduction", {x}, [&](Builder &b, std::vector<Value *> in) {
                Value *eps = b.constant(1e-5, {dt, {}});
                Value *sq = b.mul(in[0], in[0]);
                Value *r = op == Op::Sum    ? b.sum(sq, c.axes, c.keep)
                           : op == Op::Mean ? b.mean(sq, c.axes, c.keep)
                                            : b.amax(sq, c.axes, c.keep);
                Value *y = variant == 0   ? b.rsqrt(b.add(r, eps))
                           : variant == 1 ? b.gt(r, b.constant(1, {dt, {}}))
                                          : b.cast(b.sqrt(r), DType::i32);
                std::vector<Value *> outs = {y};
                if (variant != 2)
                  outs.push_back(sq);
                return outs;
              });
          for (Value *r : f->results)
            g.add_output(r);
          check_against_interpreter(
              g, random_inputs(g, 41),
              fmt::format("epilogue {} {} variant {} of {} axes {}",
                          op_name(op), dtype_name(dt), variant, shape_str(c.xs),
                          c.axes.size()));
        }
}

// ---- contract violations ----

TEST(CpuFusedExt, ContractViolationsAreErrors) {
  auto compile_throws = [](auto body_fn, Shape xs) {
    Graph g;
    Value *x = g.add_input("x", {DType::f32, xs});
    Node *f = append_fused(g, "reduction", {x}, body_fn);
    for (Value *r : f->results)
      g.add_output(r);
    EXPECT_THROW(make_cpu_backend()->compile(g), Error);
  };
  // An epilogue reading a body input.
  compile_throws(
      [](Builder &b, std::vector<Value *> in) {
        Value *s = b.sum(in[0], {0}, true);
        return std::vector<Value *>{b.add(s, in[0])};
      },
      {4, 5});
  // An epilogue reading a prologue value.
  compile_throws(
      [](Builder &b, std::vector<Value *> in) {
        Value *e = b.exp(in[0]);
        Value *s = b.sum(e, {0}, true);
        return std::vector<Value *>{b.add(s, e)};
      },
      {4, 5});
  // An extra output not of the operand's shape.
  compile_throws(
      [](Builder &b, std::vector<Value *> in) {
        Value *s = b.sum(in[0], {0}, true);
        return std::vector<Value *>{s, b.exp(s)};
      },
      {4, 5});
  // Output 0 a prologue value.
  compile_throws(
      [](Builder &b, std::vector<Value *> in) {
        Value *e = b.exp(in[0]);
        return std::vector<Value *>{e, b.sum(e, {0})};
      },
      {4, 5});
  // Extras after softmax.
  compile_throws(
      [](Builder &b, std::vector<Value *> in) {
        Value *e = b.exp(in[0]);
        return std::vector<Value *>{b.softmax(e, 1), e};
      },
      {4, 5});
}

} // namespace
} // namespace kiln
