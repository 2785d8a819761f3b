// Every op of the table, standalone, on the CPU backend (LLVM JIT kernels,
// OpenBLAS, host loops) against the reference interpreter, at awkward sizes
// and with broadcasts along each axis.
#include "cpu_test_util.h"

#include "ir/error.h"
#include "ir/interpreter.h"
#include "ir/op.h"
#include "ir/philox.h"
#include "passes/fuse_elementwise.h"

#include <cmath>
#include <limits>

namespace kiln {
namespace {

using test::check_against_interpreter;
using test::random_inputs;

bool positive_only(Op op) {
  return op == Op::Log || op == Op::Sqrt || op == Op::Rsqrt || op == Op::Pow;
}

std::vector<Op> elementwise_ops(int arity) {
  std::vector<Op> ops;
  for (int i = 0; i < kNumOps; ++i) {
    const OpInfo &info = op_info(static_cast<Op>(i));
    if (info.has(kElementwise) && info.arity == arity && info.op != Op::Cast)
      ops.push_back(info.op);
  }
  return ops;
}

bool float_only(Op op) {
  static const Op ops[] = {Op::Exp,     Op::Log, Op::Sqrt, Op::Rsqrt, Op::Tanh,
                           Op::Sigmoid, Op::Pow, Op::Erf,  Op::Gelu};
  return std::find(std::begin(ops), std::end(ops), op) != std::end(ops);
}

// The attributes an op needs standalone (clamp needs a bound).
Attrs standalone_attrs(Op op) {
  if (op == Op::Clamp)
    return {{"min", int64_t{-1}}, {"max", int64_t{2}}};
  return {};
}

TEST(CpuOps, UnaryElementwise) {
  std::vector<Op> ops = elementwise_ops(1);
  ASSERT_GE(ops.size(), 8u);
  for (Op op : ops)
    for (DType dt : {DType::f32, DType::f64, DType::i32})
      for (int64_t n : {1, 7, 1000003}) {
        if (float_only(op) && !is_float(dt))
          continue;
        Graph g;
        Value *x = g.add_input("x", {dt, {n}});
        Builder b(g);
        g.add_output(b.op(op, {x}, standalone_attrs(op)));
        double lo = positive_only(op) ? 0.05 : -3;
        check_against_interpreter(
            g, random_inputs(g, 1, lo, 3),
            fmt::format("{} {}[{}]", op_name(op), dtype_name(dt), n));
      }
}

// The attribute forms of gelu and clamp, on the JIT against the
// interpreter, and gelu in f32 against torch 1.13's f32 results.
TEST(CpuOps, GeluFormsAndClampBounds) {
  std::vector<Attrs> gelu = {{}, {{"approximate", "tanh"}}};
  std::vector<Attrs> clamp = {{{"min", 0.5}},
                              {{"max", -0.25}},
                              {{"min", -0.5}, {"max", 0.75}},
                              {{"min", 1.0}, {"max", -1.0}}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (auto &[op, list] :
         {std::pair{Op::Gelu, gelu}, std::pair{Op::Clamp, clamp}})
      for (const Attrs &at : list) {
        Graph g;
        Value *x = g.add_input("x", {dt, {1027}});
        Builder b(g);
        g.add_output(b.op(op, {x}, at));
        check_against_interpreter(
            g, random_inputs(g, 3, -4, 4),
            fmt::format("{} {} {}", op_name(op), dtype_name(dt),
                        g.nodes().back()->attrs.items().size()));
      }
  }
  const std::vector<double> x = {-3, -1, -0.25, 0, 0.5, 2, 4};
  const std::vector<double> none = {
      -0.004049867391586304, -0.1586552858352661, -0.10032343119382858, 0.0,
      0.3457311987876892,    1.9544999599456787,  3.999873161315918};
  const std::vector<double> tanh_form = {
      -0.0036374330520629883, -0.15880799293518066, -0.10032464563846588, 0.0,
      0.3457140028476715,     1.9545977115631104,   3.999929904937744};
  for (const char *form : {"none", "tanh"}) {
    Graph g;
    Value *in = g.add_input("x", {DType::f32, {7}});
    Builder b(g);
    g.add_output(b.op(Op::Gelu, {in}, {{"approximate", std::string(form)}}));
    auto exe = make_cpu_backend()->compile(g);
    std::vector<Array> inputs = {
        Array::from_host(HostTensor({DType::f32, {7}}, x))};
    auto out = exe->run(inputs);
    const auto &want = std::string(form) == "none" ? none : tanh_form;
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_NEAR(out[0].get(static_cast<int64_t>(i)), want[i],
                  2e-7 * (1 + std::fabs(want[i])))
          << form << " x=" << x[i];
  }
}

TEST(CpuOps, BinaryElementwiseBroadcasts) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{7}, {7}},
      {{1000003}, {1000003}},
      {{1000003}, {}},
      {{}, {1000003}},
      {{5, 7}, {7}},
      {{5, 7}, {5, 1}},
      {{5, 1}, {1, 7}},
      {{1, 7}, {5, 1}},
      {{3, 4, 5}, {4, 1}},
      {{1}, {3, 1, 5}},
      {{2, 3, 1, 17}, {3, 9, 1}}};
  std::vector<Op> ops = elementwise_ops(2);
  ASSERT_GE(ops.size(), 12u);
  for (Op op : ops)
    for (DType dt : {DType::f32, DType::f64, DType::i32})
      for (auto &[sa, sb] : shapes) {
        if (float_only(op) && !is_float(dt))
          continue;
        if (dt != DType::f32 && (numel(sa) > 1000 || numel(sb) > 1000))
          continue; // the large sizes once per op
        if (dt == DType::i32 && sa.size() + sb.size() > 3)
          continue;
        Graph g;
        Value *x = g.add_input("x", {dt, sa});
        Value *y = g.add_input("y", {dt, sb});
        Builder b(g);
        g.add_output(b.op(op, {x, y}));
        double lo = positive_only(op) ? 0.1 : -3;
        check_against_interpreter(g, random_inputs(g, 2, lo, 3),
                                  fmt::format("{} {} {} {}", op_name(op),
                                              dtype_name(dt), shape_str(sa),
                                              shape_str(sb)));
      }
}

TEST(CpuOps, WhereAndBool) {
  Graph g;
  Value *c = g.add_input("c", {DType::boolean, {5, 1}});
  Value *x = g.add_input("x", {DType::f32, {1, 1003}});
  Value *y = g.add_input("y", {DType::f32, {5, 1003}});
  Builder b(g);
  g.add_output(b.where(c, x, y));
  g.add_output(b.where(b.lt(x, y), x, b.neg(y)));
  g.add_output(b.ne(c, b.ge(x, y)));
  check_against_interpreter(g, random_inputs(g, 3), "where");
}

TEST(CpuOps, CastBetweenAllDtypes) {
  const DType all[] = {DType::f32, DType::f64, DType::i32, DType::i64,
                       DType::boolean};
  for (DType from : all)
    for (DType to : all) {
      Graph g;
      Value *x = g.add_input("x", {from, {1003}});
      Builder b(g);
      g.add_output(b.cast(x, to));
      check_against_interpreter(
          g, random_inputs(g, 4, -5, 5),
          fmt::format("cast {} -> {}", dtype_name(from), dtype_name(to)));
    }
}

TEST(CpuOps, IntegerDivisionRoundsLikeTheInterpreter) {
  Graph g;
  Value *x = g.add_input("x", {DType::i32, {9}});
  Value *y = g.add_input("y", {DType::i32, {9}});
  Builder b(g);
  g.add_output(b.div(x, y));
  std::vector<Array> in = {Array(x->type), Array(y->type)};
  const int xs[] = {7, -7, 7, -7, 0, 5, 1, -1, 100};
  const int ys[] = {2, 2, -2, -2, 3, 0, 0, 0, 7};
  for (int i = 0; i < 9; ++i) {
    in[0].set(i, xs[i]);
    in[1].set(i, ys[i]);
  }
  check_against_interpreter(g, in, "i32 div");
}

struct ReduceCase {
  Shape shape;
  std::vector<int64_t> axes;
  bool keepdims;
};

TEST(CpuOps, Reductions) {
  const std::vector<ReduceCase> cases = {
      {{1000003}, {}, false},  {{13, 1003}, {1}, false},
      {{13, 1003}, {1}, true}, {{1003, 37}, {0}, false},
      {{1003, 37}, {0}, true}, {{5, 6, 7}, {0, 2}, false},
      {{4, 5, 6}, {1}, true},  {{4, 5, 600}, {0, 1}, false},
      {{7}, {0}, false},       {{1}, {0}, false},
      {{3, 1, 5}, {1}, false}, {{2, 3, 4, 5}, {1, 3}, true},
      {{64, 10}, {-1}, false}};
  for (Op op : {Op::Sum, Op::Mean, Op::Amax})
    for (DType dt : {DType::f32, DType::f64})
      for (const ReduceCase &c : cases) {
        Graph g;
        Value *x = g.add_input("x", {dt, c.shape});
        Builder b(g);
        Value *r = op == Op::Sum    ? b.sum(x, c.axes, c.keepdims)
                   : op == Op::Mean ? b.mean(x, c.axes, c.keepdims)
                                    : b.amax(x, c.axes, c.keepdims);
        g.add_output(r);
        check_against_interpreter(
            g, random_inputs(g, 5),
            fmt::format("{} {}{} axes [{}] keepdims {}", op_name(op),
                        dtype_name(dt), shape_str(c.shape),
                        fmt::join(c.axes, ","), c.keepdims));
      }
}

TEST(CpuOps, IntegerSum) {
  Graph g;
  Value *x = g.add_input("x", {DType::i32, {7, 1003}});
  Builder b(g);
  g.add_output(b.sum(x, {1}));
  g.add_output(b.amax(x, {0}));
  check_against_interpreter(g, random_inputs(g, 6, -100, 100), "i32 sum");
}

TEST(CpuOps, SoftmaxAndLogSoftmax) {
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{64, 10}, -1}, {{7, 1003}, 1}, {{1003, 7}, 0}, {{3, 5, 7}, 1},
      {{1}, 0},       {{5, 1}, 1},    {{1000003}, 0}, {{2, 300, 3}, 0}};
  for (bool log : {false, true})
    for (DType dt : {DType::f32, DType::f64})
      for (auto &[shape, axis] : cases) {
        Graph g;
        Value *x = g.add_input("x", {dt, shape});
        Builder b(g);
        g.add_output(log ? b.log_softmax(x, axis) : b.softmax(x, axis));
        check_against_interpreter(g, random_inputs(g, 7, -10, 10),
                                  fmt::format("{}softmax {}{} axis {}",
                                              log ? "log_" : "", dtype_name(dt),
                                              shape_str(shape), axis));
      }
}

TEST(CpuOps, Matmul) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{7, 5}, {5, 3}},      {{1, 1}, {1, 1}},    {{64, 784}, {784, 33}},
      {{2, 7, 5}, {5, 3}},   {{7, 5}, {4, 5, 3}}, {{3, 1, 4, 6}, {2, 6, 5}},
      {{2, 3, 4}, {2, 4, 5}}};
  for (DType dt : {DType::f32, DType::f64})
    for (auto &[sa, sb] : cases) {
      Graph g;
      Value *a = g.add_input("a", {dt, sa});
      Value *bv = g.add_input("b", {dt, sb});
      Builder b(g);
      g.add_output(b.matmul(a, bv));
      check_against_interpreter(g, random_inputs(g, 8),
                                fmt::format("matmul {} {} {}", dtype_name(dt),
                                            shape_str(sa), shape_str(sb)),
                                1, dt == DType::f32 ? 1e-4 : 1e-11,
                                // float GEMMs accumulate in float
                                dt == DType::f32 ? 4e-6 * sa.back() : 1e-11);
    }
}

TEST(CpuOps, MatmulFoldsTransposes) {
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {64, 33}});
  Value *w = g.add_input("w", {DType::f32, {17, 33}});
  Value *d = g.add_input("d", {DType::f32, {64, 17}});
  Value *bx = g.add_input("bx", {DType::f32, {3, 9, 5}});
  Builder b(g);
  Value *y = b.matmul(x, b.transpose(w));    // [64,17]
  Value *gw = b.matmul(b.transpose(d), x);   // [17,33]
  Value *gb = b.matmul(b.transpose(bx), bx); // [3,5,5]
  g.add_output(y);
  g.add_output(gw);
  g.add_output(gb);
  auto exe = make_cpu_backend()->compile(g);
  const CpuExecutableStats *st = cpu_executable_stats(*exe);
  ASSERT_NE(st, nullptr);
  EXPECT_GE(st->folded_transposes, 3);
  EXPECT_EQ(st->host_launches, 0);
  check_against_interpreter(g, random_inputs(g, 9), "folded transposes", 1,
                            1e-4, 1e-5);
}

TEST(CpuOps, LayoutOps) {
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {3, 5, 7}});
  Value *l = g.add_input("l", {DType::i32, {11}});
  Builder b(g);
  g.add_output(b.transpose(x, {2, 0, 1}));
  g.add_output(b.transpose(x, {0, 2, 1})); // also used below: not folded
  g.add_output(b.reshape(x, {15, 7}));
  g.add_output(b.broadcast_to(b.reshape(x, {3, 1, 35}), {3, 4, 35}));
  g.add_output(b.one_hot(l, 4));
  g.add_output(b.mul(b.reshape(x, {105}), b.constant(0.5, {DType::f32, {}})));
  g.add_output(b.constant(3.0, {DType::i64, {2, 3}}));
  std::vector<Array> in = random_inputs(g, 10);
  for (int i = 0; i < 11; ++i)
    in[1].set(i, i % 4);
  check_against_interpreter(g, in, "layout ops");
}

TEST(CpuOps, ConcatSlicePad) {
  // Host loops (runtime/cpu_host_ops.cpp) against the interpreter: concat
  // along each axis with unequal parts, slices with negative and clamped
  // bounds and steps, pads with a value and interior padding, in the
  // element sizes 1, 4 and 8.
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {3, 5, 7}});
  Value *y = g.add_input("y", {DType::f32, {3, 2, 7}});
  Value *i = g.add_input("i", {DType::i64, {4, 6}});
  Value *c = g.add_input("c", {DType::boolean, {2, 3}});
  Builder b(g);
  using V = std::vector<int64_t>;
  g.add_output(b.op(Op::Concat, {x, y, x}, {{"axis", int64_t{1}}}));
  g.add_output(b.op(Op::Concat, {x, x}, {{"axis", int64_t{-1}}}));
  g.add_output(b.op(Op::Concat, {i, i, i}));
  g.add_output(b.op(Op::Concat, {c, c}, {{"axis", int64_t{1}}}));
  g.add_output(
      b.op(Op::Slice, {x}, {{"starts", V{1, -4, 0}}, {"stops", V{3, 100, 7}}}));
  g.add_output(b.op(
      Op::Slice, {x},
      {{"starts", V{0, 1, -6}}, {"stops", V{3, 5, 7}}, {"steps", V{2, 3, 4}}}));
  g.add_output(
      b.op(Op::Slice, {i},
           {{"starts", V{3, 0}}, {"stops", V{4, 6}}, {"steps", V{1, 5}}}));
  g.add_output(b.op(Op::Pad, {x}, {{"pads", V{1, 0, 0, 2, 3, 1}}}));
  g.add_output(b.op(Op::Pad, {x},
                    {{"pads", V{0, 1, 1, 0, 0, 0}},
                     {"value", -2.5},
                     {"interior", V{1, 0, 2}}}));
  g.add_output(
      b.op(Op::Pad, {i}, {{"pads", V{1, 1, 0, 2}}, {"value", int64_t{9}}}));
  g.add_output(
      b.op(Op::Pad, {c}, {{"pads", V{1, 1, 1, 1}}, {"value", int64_t{1}}}));
  check_against_interpreter(g, random_inputs(g, 11), "concat slice pad");
}

TEST(CpuOps, OneHotRejectsOutOfRangeLabels) {
  Graph g;
  Value *l = g.add_input("l", {DType::i64, {3}});
  Builder b(g);
  g.add_output(b.one_hot(l, 4));
  auto exe = make_cpu_backend()->compile(g);
  std::vector<Array> in = {Array(l->type)};
  in[0].set(1, 4);
  EXPECT_THROW(exe->run(in), Error);
}

// NaN propagates through max, min, relu and amax (as in torch), fused and
// standalone, at sizes that take the vectorized loops; the interpreter is
// the reference (expect_close takes NaN only where NaN is wanted).
TEST(CpuOps, MaxMinReluAndAmaxPropagateNaN) {
  for (DType dt : {DType::f32, DType::f64}) {
    Graph g;
    Value *x = g.add_input("x", {dt, {9, 37}});
    Value *y = g.add_input("y", {dt, {37}});
    Builder b(g);
    g.add_output(b.max(x, y));
    g.add_output(b.min(x, y));
    g.add_output(b.relu(x));
    g.add_output(b.amax(x, {1}));
    g.add_output(b.amax(x, {0}));
    g.add_output(b.amax(b.relu(x)));
    std::vector<Array> in = random_inputs(g, 5);
    double nan = std::numeric_limits<double>::quiet_NaN();
    in[0].set(3 * 37 + 5, nan);
    in[0].set(8 * 37 + 36, nan);
    in[1].set(11, nan);
    check_against_interpreter(g, in, "nan");
    std::unique_ptr<Graph> fused = g.clone();
    ASSERT_TRUE(run_fuse_elementwise(*fused));
    check_against_interpreter(*fused, in, "nan, fused");
    std::vector<Array> out = make_cpu_backend()->compile(g)->run(in);
    EXPECT_TRUE(std::isnan(out[0].get(3 * 37 + 5)));
    EXPECT_TRUE(std::isnan(out[1].get(11)));
    EXPECT_TRUE(std::isnan(out[2].get(8 * 37 + 36)));
    EXPECT_TRUE(std::isnan(out[3].get(3)));
    EXPECT_FALSE(std::isnan(out[3].get(2)));
    EXPECT_TRUE(std::isnan(out[4].get(5)));
    EXPECT_TRUE(std::isnan(out[5].get(0)));
  }
}

// Out-of-range float -> int casts saturate and NaN gives 0, as on the
// interpreter (tests/ir/test_interpreter_ops.cpp) and CUDA: llvm.fptosi.sat.
TEST(CpuOps, FloatToIntCastsSaturate) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> x = {inf, -inf, nan, 1e20, -1e20, 2.9, -2.9};
  const int64_t i64max = std::numeric_limits<int64_t>::max();
  const int64_t i64min = std::numeric_limits<int64_t>::min();
  const std::vector<int32_t> want32 = {
      2147483647, -2147483647 - 1, 0, 2147483647, -2147483647 - 1, 2, -2};
  const std::vector<int64_t> want64 = {i64max, i64min, 0, i64max,
                                       i64min, 2,      -2};
  for (DType dt : {DType::f32, DType::f64}) {
    for (bool fuse : {false, true}) {
      Graph g;
      Value *in = g.add_input("x", {dt, {7}});
      Builder b(g);
      // The add keeps each cast an elementwise kernel of its own input.
      Value *y = b.add(in, b.scalar(0, dt));
      g.add_output(b.cast(y, DType::i32));
      g.add_output(b.cast(y, DType::i64));
      g.add_output(b.cast(y, DType::boolean));
      if (fuse) {
        ASSERT_TRUE(run_fuse_elementwise(g));
      }
      Array a(Type{dt, {7}});
      for (int64_t i = 0; i < 7; ++i)
        a.set(i, x[i]);
      std::vector<Array> args{a};
      std::vector<Array> out = make_cpu_backend()->compile(g)->run(args);
      std::string what =
          fmt::format("{}{}", dtype_name(dt), fuse ? ", fused" : "");
      for (int64_t i = 0; i < 7; ++i) {
        EXPECT_EQ(out[0].as<int32_t>()[i], want32[i]) << what << " at " << i;
        EXPECT_EQ(out[1].as<int64_t>()[i], want64[i]) << what << " at " << i;
        EXPECT_EQ(out[2].get(i), 1.0) << what << " at " << i;
      }
      // The interpreter gives the same (check_against_interpreter cannot
      // compare the infinite inputs).
      std::vector<HostTensor> ref = interpret(g, {a.to_host()});
      for (size_t k = 0; k < 3; ++k)
        for (int64_t i = 0; i < 7; ++i)
          EXPECT_EQ(out[k].get(i), ref[k].data[i]) << what << " output " << k;
    }
  }
}

// A buffer larger than the machine is refused by its size, naming the
// array's type, before allocating (a failed allocation aborts under ASan).
TEST(CpuOps, HugeArrayIsRefusedBySize) {
  try {
    Array a(Type{DType::f32, {int64_t{1} << 42}});
    FAIL() << "no error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find(
                  "out of memory: an array of f32[4398046511104] needs "
                  "17592186044416 bytes"),
              std::string::npos)
        << e.what();
  }
}

TEST(CpuOps, RandomUniformMatchesPhilox) {
  Graph g;
  Value *seed = g.add_input("seed", {DType::i64, {}});
  Value *off = g.add_input("offset", {DType::i64, {}});
  Builder b(g);
  g.add_output(b.random_uniform(seed, off, {DType::f32, {1000003}}));
  g.add_output(b.random_uniform(seed, off, {DType::f64, {7}}));
  auto exe = make_cpu_backend()->compile(g);
  std::vector<Array> in = {Array(seed->type), Array(off->type)};
  in[0].set(0, 1234567);
  in[1].set(0, 42);
  std::vector<Array> out = exe->run(in);
  for (int64_t i : {0, 1, 6, 77777, 1000002})
    EXPECT_EQ(out[0].as<float>()[i], philox_uniform(1234567, 42, i)) << i;
  check_against_interpreter(g, in, "random_uniform", 1, 0, 0);
}

TEST(CpuOps, EmptyArrays) {
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {0, 5}});
  Builder b(g);
  g.add_output(b.exp(x));
  g.add_output(b.sum(x, {0}));
  g.add_output(b.sum(x, {1}));
  check_against_interpreter(g, random_inputs(g, 11), "empty");
}

} // namespace
} // namespace kiln
