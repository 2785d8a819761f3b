// Every op on the reference interpreter against hand-computed values (the
// literals were computed with Python's math module or by hand).
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/interpreter.h"
#include "ir/philox.h"
#include "ir/verifier.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

namespace kiln {
namespace {

using Data = std::vector<double>;

Type f32(Shape s) { return {DType::f32, std::move(s)}; }
Type f64(Shape s) { return {DType::f64, std::move(s)}; }
Type i32(Shape s) { return {DType::i32, std::move(s)}; }
Type i64(Shape s) { return {DType::i64, std::move(s)}; }
Type boolean(Shape s) { return {DType::boolean, std::move(s)}; }

// A graph under construction plus the values fed to its inputs.
struct Fixture {
  Graph g{"t"};
  Builder b{g};
  std::vector<HostTensor> feeds;

  Value *in(Type t, Data d) {
    EXPECT_EQ(static_cast<int64_t>(d.size()), t.numel());
    feeds.emplace_back(t, std::move(d));
    return g.add_input("in" + std::to_string(feeds.size() - 1), t);
  }
  HostTensor run(Value *out) {
    g.outputs.clear();
    g.add_output(out);
    verify(g);
    return interpret(g, feeds).at(0);
  }
};

void expect_near(const Data &got, const Data &want, double rel = 1e-15) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], rel * std::max(1.0, std::fabs(want[i])))
        << "at element " << i;
}

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

// --- elementwise, unary -----------------------------------------------------

const Data kX = {-2.0, -0.5, 0.0, 1.5};
const Data kPos = {0.25, 1.0, 2.0, 9.0};

TEST(InterpUnary, NegAbsRelu) {
  Fixture f;
  Value *x = f.in(f64({4}), kX);
  EXPECT_EQ(f.run(f.b.neg(x)).data, (Data{2.0, 0.5, 0.0, -1.5}));
  EXPECT_EQ(f.run(f.b.abs(x)).data, (Data{2.0, 0.5, 0.0, 1.5}));
  EXPECT_EQ(f.run(f.b.relu(x)).data, (Data{0.0, 0.0, 0.0, 1.5}));
}

TEST(InterpUnary, ExpTanhSigmoid) {
  Fixture f;
  Value *x = f.in(f64({4}), kX);
  expect_near(f.run(f.b.exp(x)).data, {0.1353352832366127, 0.6065306597126334,
                                       1.0, 4.4816890703380645});
  expect_near(
      f.run(f.b.tanh(x)).data,
      {-0.9640275800758169, -0.46211715726000974, 0.0, 0.9051482536448664});
  expect_near(
      f.run(f.b.sigmoid(x)).data,
      {0.11920292202211755, 0.3775406687981454, 0.5, 0.8175744761936437});
}

TEST(InterpUnary, LogSqrtRsqrt) {
  Fixture f;
  Value *x = f.in(f64({4}), kPos);
  expect_near(f.run(f.b.log(x)).data, {-1.3862943611198906, 0.0,
                                       0.6931471805599453, 2.1972245773362196});
  expect_near(f.run(f.b.sqrt(x)).data, {0.5, 1.0, 1.4142135623730951, 3.0});
  expect_near(f.run(f.b.rsqrt(x)).data,
              {2.0, 1.0, 0.7071067811865475, 0.3333333333333333});
}

TEST(InterpUnary, IntegerNegAbs) {
  Fixture f;
  Value *x = f.in(i32({3}), {-3, 0, 7});
  HostTensor r = f.run(f.b.abs(f.b.neg(x)));
  EXPECT_EQ(r.type, i32({3}));
  EXPECT_EQ(r.data, (Data{3, 0, 7}));
}

// --- elementwise, binary, with broadcasting ---------------------------------

TEST(InterpBinary, BroadcastRowColumnAndScalar) {
  Fixture f;
  Value *a = f.in(f64({2, 3}), {1, 2, 3, 4, 5, 6});
  Value *row = f.in(f64({3}), {10, 20, 30});
  Value *col = f.in(f64({2, 1}), {100, 200});
  Value *s = f.in(f64({}), {0.5});
  EXPECT_EQ(f.run(f.b.add(a, row)).data, (Data{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(f.run(f.b.add(row, a)).data, (Data{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(f.run(f.b.sub(a, col)).data,
            (Data{-99, -98, -97, -196, -195, -194}));
  EXPECT_EQ(f.run(f.b.sub(col, a)).data, (Data{99, 98, 97, 196, 195, 194}));
  EXPECT_EQ(f.run(f.b.mul(a, s)).data, (Data{0.5, 1, 1.5, 2, 2.5, 3}));
  EXPECT_EQ(f.run(f.b.div(s, a)).data,
            (Data{0.5, 0.25, 0.5 / 3, 0.125, 0.1, 0.5 / 6}));
  // Outer product shape: [2,1] * [3] -> [2,3].
  HostTensor outer = f.run(f.b.mul(col, row));
  EXPECT_EQ(outer.type, f64({2, 3}));
  EXPECT_EQ(outer.data, (Data{1000, 2000, 3000, 2000, 4000, 6000}));
}

TEST(InterpBinary, BroadcastMiddleAxis) {
  Fixture f;
  Value *a = f.in(f64({2, 1, 2}), {1, 2, 3, 4});
  Value *b = f.in(f64({3, 1}), {10, 20, 30});
  HostTensor r = f.run(f.b.add(a, b));
  EXPECT_EQ(r.type, f64({2, 3, 2}));
  EXPECT_EQ(r.data, (Data{11, 12, 21, 22, 31, 32, 13, 14, 23, 24, 33, 34}));
}

TEST(InterpBinary, PowMaxMin) {
  Fixture f;
  Value *a = f.in(f64({2, 1}), {2, 3});
  Value *e = f.in(f64({2}), {0.5, 3});
  expect_near(f.run(f.b.pow(a, e)).data,
              {1.4142135623730951, 8.0, 1.7320508075688772, 27.0});
  Value *x = f.in(f64({2, 2}), {1, 5, -1, 2});
  Value *y = f.in(f64({2}), {2, 2});
  EXPECT_EQ(f.run(f.b.max(x, y)).data, (Data{2, 5, 2, 2}));
  EXPECT_EQ(f.run(f.b.min(x, y)).data, (Data{1, 2, -1, 2}));
}

TEST(InterpBinary, IntegerDivisionTruncatesTowardZero) {
  Fixture f;
  Value *a = f.in(i32({4}), {7, -7, 6, 1});
  Value *b = f.in(i32({4}), {2, 2, 3, 3});
  EXPECT_EQ(f.run(f.b.div(a, b)).data, (Data{3, -3, 2, 0}));
}

TEST(InterpCompare, AllComparisonsBroadcast) {
  Fixture f;
  Value *a = f.in(f64({3, 1}), {1, 2, 3});
  Value *b = f.in(f64({2}), {2, 3});
  // a against b: rows a=1,2,3; columns b=2,3.
  auto run = [&](Op op) {
    HostTensor r = f.run(f.b.op(op, {a, b}));
    EXPECT_EQ(r.type, boolean({3, 2}));
    return r.data;
  };
  EXPECT_EQ(run(Op::Eq), (Data{0, 0, 1, 0, 0, 1}));
  EXPECT_EQ(run(Op::Ne), (Data{1, 1, 0, 1, 1, 0}));
  EXPECT_EQ(run(Op::Lt), (Data{1, 1, 0, 1, 0, 0}));
  EXPECT_EQ(run(Op::Le), (Data{1, 1, 1, 1, 0, 1}));
  EXPECT_EQ(run(Op::Gt), (Data{0, 0, 0, 0, 1, 0}));
  EXPECT_EQ(run(Op::Ge), (Data{0, 0, 1, 0, 1, 1}));
}

TEST(InterpWhere, BroadcastsAllThree) {
  Fixture f;
  Value *c = f.in(boolean({2, 1}), {1, 0});
  Value *a = f.in(f64({3}), {1, 2, 3});
  Value *b = f.in(f64({}), {-1});
  HostTensor r = f.run(f.b.where(c, a, b));
  EXPECT_EQ(r.type, f64({2, 3}));
  EXPECT_EQ(r.data, (Data{1, 2, 3, -1, -1, -1}));
  Value *x = f.in(f64({4}), kX);
  Value *zero = f.b.scalar(0, DType::f64);
  EXPECT_EQ(f.run(f.b.where(f.b.gt(x, zero), x, zero)).data,
            (Data{0, 0, 0, 1.5}));
}

// --- casts and rounding -----------------------------------------------------

TEST(InterpCast, F64ToF32Rounds) {
  Fixture f;
  Value *x = f.in(f64({3}), {0.1, 1.0 / 3.0, 16777217.0});
  HostTensor r = f.run(f.b.cast(x, DType::f32));
  EXPECT_EQ(r.type, f32({3}));
  // float(0.1), float(1/3), and 2^24 + 1 rounds to even 2^24.
  EXPECT_EQ(r.data,
            (Data{0.10000000149011612, 0.3333333432674408, 16777216.0}));
}

TEST(InterpCast, FloatToIntTruncates) {
  Fixture f;
  Value *x = f.in(f32({6}), {2.75, -2.75, 0.5, -0.5, 3.0, 1e3});
  EXPECT_EQ(f.run(f.b.cast(x, DType::i32)).data, (Data{2, -2, 0, 0, 3, 1000}));
  EXPECT_EQ(f.run(f.b.cast(x, DType::i64)).data, (Data{2, -2, 0, 0, 3, 1000}));
}

// Out-of-range float -> int casts saturate, NaN gives 0: one rule on every
// backend (CUDA's cvt.rzi; torch on CUDA). The CPU backend's twin is in
// tests/runtime/test_cpu_ops.cpp.
TEST(InterpCast, FloatToIntSaturatesAndNaNIsZero) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Fixture f;
  Value *x = f.in(f64({7}), {inf, -inf, nan, 1e20, -1e20, 2.9, -2.9});
  EXPECT_EQ(f.run(f.b.cast(x, DType::i32)).data,
            (Data{2147483647.0, -2147483648.0, 0, 2147483647.0, -2147483648.0,
                  2, -2}));
  HostTensor r = f.run(f.b.cast(x, DType::i64));
  EXPECT_EQ(r.i64,
            (std::vector<int64_t>{std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::min(), 0,
                                  std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::min(), 2, -2}));
  EXPECT_EQ(f.run(f.b.cast(x, DType::boolean)).data,
            (Data{1, 1, 1, 1, 1, 1, 1}));
  Value *y = f.in(f32({4}), {inf, -inf, nan, 3e9f});
  EXPECT_EQ(f.run(f.b.cast(y, DType::i32)).data,
            (Data{2147483647.0, -2147483648.0, 0, 2147483647.0}));
}

TEST(InterpCast, SaturatingConversions) {
  EXPECT_EQ(saturate_to_i64(0x1p63), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(saturate_to_i64(-0x1p63), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(saturate_to_i64(std::nan("")), 0);
  EXPECT_EQ(saturate_to_i64(-0x1p62), -(int64_t{1} << 62));
  EXPECT_EQ(saturate_to_i32(0x1p31), 2147483647);
  EXPECT_EQ(saturate_to_i32(-0x1p31 - 1), -2147483647 - 1);
  EXPECT_EQ(saturate_to_i32(-2.5), -2);
}

// i64 values beyond 2^53 are held exactly where no arithmetic touches them.
TEST(InterpI64, ExactThroughInputsLayoutWhereAndConstants) {
  const int64_t big = (int64_t{1} << 62) + 1; // 4611686018427387905
  const int64_t max = std::numeric_limits<int64_t>::max();
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", i64({2, 2}));
  Value *c = g.add_input("c", boolean({2}));
  Value *t = b.transpose(x);
  Value *r = b.reshape(t, {4});
  Value *k = b.create(Op::Constant, {}, {{"value", max}}, {i64({2})})->result();
  Value *w = b.where(c, b.reshape(x, {2, 2}), b.broadcast_to(k, {2, 2}));
  g.add_output(x);
  g.add_output(r);
  g.add_output(w);
  verify(g);
  HostTensor xin(i64({2, 2}), {0, 0, 0, 0});
  xin.i64 = {big, -big, max, std::numeric_limits<int64_t>::min()};
  for (size_t i = 0; i < 4; ++i)
    xin.data[i] = static_cast<double>(xin.i64[i]);
  std::vector<HostTensor> out =
      interpret(g, {xin, HostTensor(boolean({2}), {1, 0})});
  EXPECT_EQ(out[0].i64, xin.i64);
  EXPECT_EQ(out[1].i64,
            (std::vector<int64_t>{big, max, -big,
                                  std::numeric_limits<int64_t>::min()}));
  EXPECT_EQ(out[2].i64, (std::vector<int64_t>{big, max, max, max}));
  // Without exact values, data is what the input holds.
  std::vector<HostTensor> plain =
      interpret(g, {HostTensor(i64({2, 2}), {1, 2, 3, 4}),
                    HostTensor(boolean({2}), {1, 1})});
  EXPECT_EQ(plain[1].i64, (std::vector<int64_t>{1, 3, 2, 4}));
}

TEST(InterpI64, ExactThroughAFusedBody) {
  const int64_t big = (int64_t{1} << 62) + 1;
  Fixture f;
  Value *x = f.in(i64({1}), {0});
  f.feeds[0].i64 = {big};
  auto body = std::make_unique<Graph>("body");
  Value *a = body->add_input("a", i64({1}));
  Value *bc =
      body->append(Op::Cast, {a}, {i64({1})}, {{"dtype", std::string("i64")}})
          ->result();
  body->add_output(bc);
  Value *y = f.b.create(Op::Fused, {x}, {{"kind", std::string("elementwise")}},
                        {i64({1})}, std::move(body))
                 ->result();
  EXPECT_EQ(f.run(y).i64, (std::vector<int64_t>{big}));
}

// A tensor larger than the machine is refused up front, naming it and its
// size, before any allocation (which would abort under ASan).
TEST(InterpLayout, ConcatSlicePad) {
  using V = std::vector<int64_t>;
  Fixture f;
  // x = [[0 1 2] [3 4 5]]
  Value *x = f.in(f64({2, 3}), {0, 1, 2, 3, 4, 5});
  Value *y = f.in(f64({2, 1}), {10, 11});
  expect_near(
      f.run(f.b.op(Op::Concat, {x, y, x}, {{"axis", int64_t{-1}}})).data,
      {0, 1, 2, 10, 0, 1, 2, 3, 4, 5, 11, 3, 4, 5});
  expect_near(f.run(f.b.op(Op::Concat, {y, y})).data, {10, 11, 10, 11});
  // x[-1:, ::2] and x[0:100, -2:-1]
  expect_near(
      f.run(f.b.op(
                Op::Slice, {x},
                {{"starts", V{-1, 0}}, {"stops", V{2, 3}}, {"steps", V{1, 2}}}))
          .data,
      {3, 5});
  expect_near(f.run(f.b.op(Op::Slice, {x},
                           {{"starts", V{0, -2}}, {"stops", V{100, -1}}}))
                  .data,
              {1, 4});
  // One row before, one column after, a zero between columns.
  expect_near(
      f.run(f.b.op(Op::Pad, {x},
                   {{"pads", V{1, 0, 0, 1}},
                    {"value", -1.0},
                    {"interior", V{0, 1}}}))
          .data,
      {-1, -1, -1, -1, -1, -1, 0, -1, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1});
}

TEST(InterpErrors, HugeTensorNamesTheValueAndSize) {
  Graph g;
  Builder b(g);
  Value *k = b.constant(1.0, f32({int64_t{1} << 40}));
  k->name = "huge";
  g.add_output(k);
  std::string e = error_of([&] { interpret(g, {}); });
  EXPECT_NE(e.find("out of memory: %huge (f32[1099511627776]) in the "
                   "interpreter needs 8796093022208 bytes"),
            std::string::npos)
      << e;
}

TEST(InterpCast, BoolConversions) {
  Fixture f;
  Value *x = f.in(f64({4}), {0.0, -0.25, 2.0, 0.0});
  Value *bl = f.b.cast(x, DType::boolean);
  EXPECT_EQ(f.run(bl).data, (Data{0, 1, 1, 0}));
  EXPECT_EQ(f.run(f.b.cast(bl, DType::f32)).data, (Data{0, 1, 1, 0}));
}

TEST(InterpRounding, F32ResultsAreRoundedAfterEveryOp) {
  Fixture f;
  // Exactly representable f32 inputs.
  Value *a = f.in(f32({2}), {0.10000000149011612, 1.0});
  Value *b = f.in(f32({2}), {0.20000000298023224, 1.0 / 1073741824.0});
  // In double, 0.1f + 0.2f = 0.30000000447034836; f32 rounds it to
  // 0.30000001192092896. 1 + 2^-30 rounds to 1 in f32.
  EXPECT_EQ(f.run(f.b.add(a, b)).data, (Data{0.30000001192092896, 1.0}));
  Value *three = f.b.scalar(3, DType::f32);
  Value *one = f.b.scalar(1, DType::f32);
  EXPECT_EQ(f.run(f.b.div(one, three)).data, (Data{0.3333333432674408}));
  // The same in f64 keeps double precision.
  Value *c = f.in(f64({}), {1.0});
  EXPECT_EQ(f.run(f.b.div(c, f.b.scalar(3, DType::f64))).data,
            (Data{1.0 / 3.0}));
}

TEST(InterpRounding, ConstantsAreRoundedToTheirDtype) {
  Fixture f;
  f.in(f64({}), {0});
  EXPECT_EQ(f.run(f.b.constant(0.1, f32({2}))).data,
            (Data{0.10000000149011612, 0.10000000149011612}));
  EXPECT_EQ(f.run(f.b.constant(2.9, i32({}))).data, (Data{2}));
  EXPECT_EQ(f.run(f.b.constant(0.1, f64({}))).data, (Data{0.1}));
}

// --- reductions -------------------------------------------------------------

// x = [[1, 2, 3], [4, 5, 6]]
const Data kM = {1, 2, 3, 4, 5, 6};

TEST(InterpReduce, SumOverEachAxis) {
  Fixture f;
  Value *x = f.in(f64({2, 3}), kM);
  HostTensor all = f.run(f.b.sum(x));
  EXPECT_EQ(all.type, f64({}));
  EXPECT_EQ(all.data, (Data{21}));
  HostTensor a0 = f.run(f.b.sum(x, {0}));
  EXPECT_EQ(a0.type, f64({3}));
  EXPECT_EQ(a0.data, (Data{5, 7, 9}));
  HostTensor a1 = f.run(f.b.sum(x, {1}));
  EXPECT_EQ(a1.type, f64({2}));
  EXPECT_EQ(a1.data, (Data{6, 15}));
  HostTensor k0 = f.run(f.b.sum(x, {0}, true));
  EXPECT_EQ(k0.type, f64({1, 3}));
  EXPECT_EQ(k0.data, (Data{5, 7, 9}));
  HostTensor k1 = f.run(f.b.sum(x, {-1}, true));
  EXPECT_EQ(k1.type, f64({2, 1}));
  EXPECT_EQ(k1.data, (Data{6, 15}));
  HostTensor kall = f.run(f.b.sum(x, {}, true));
  EXPECT_EQ(kall.type, f64({1, 1}));
  EXPECT_EQ(kall.data, (Data{21}));
}

TEST(InterpReduce, MeanOverEachAxis) {
  Fixture f;
  Value *x = f.in(f64({2, 3}), kM);
  EXPECT_EQ(f.run(f.b.mean(x)).data, (Data{3.5}));
  EXPECT_EQ(f.run(f.b.mean(x, {0})).data, (Data{2.5, 3.5, 4.5}));
  EXPECT_EQ(f.run(f.b.mean(x, {1}, true)).data, (Data{2, 5}));
  // Integer mean truncates like integer division.
  Value *n = f.in(i32({3}), {1, 2, 2});
  EXPECT_EQ(f.run(f.b.mean(n)).data, (Data{1}));
}

TEST(InterpReduce, AmaxOverEachAxis) {
  Fixture f;
  Value *x = f.in(f64({2, 3}), {3, -1, 2, -5, -4, -6});
  EXPECT_EQ(f.run(f.b.amax(x)).data, (Data{3}));
  EXPECT_EQ(f.run(f.b.amax(x, {0})).data, (Data{3, -1, 2}));
  EXPECT_EQ(f.run(f.b.amax(x, {1})).data, (Data{3, -4}));
  HostTensor k = f.run(f.b.amax(x, {1}, true));
  EXPECT_EQ(k.type, f64({2, 1}));
  EXPECT_EQ(k.data, (Data{3, -4}));
}

// A NaN in a row makes its amax NaN, as torch.amax does.
TEST(InterpReduce, AmaxPropagatesNaN) {
  Fixture f;
  double nan = std::numeric_limits<double>::quiet_NaN();
  Value *x = f.in(f64({2, 3}), {3, nan, 2, -5, -4, -6});
  HostTensor r = f.run(f.b.amax(x, {1}));
  EXPECT_TRUE(std::isnan(r.data[0]));
  EXPECT_EQ(r.data[1], -4);
}

TEST(InterpReduce, ThreeDimensionalMiddleAndOuterAxes) {
  Fixture f;
  // x[i][j][k] = 100 i + 10 j + k, shape [2,3,2].
  Data d;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k)
        d.push_back(100 * i + 10 * j + k);
  Value *x = f.in(f64({2, 3, 2}), d);
  HostTensor mid = f.run(f.b.sum(x, {1}));
  EXPECT_EQ(mid.type, f64({2, 2}));
  EXPECT_EQ(mid.data, (Data{30, 33, 330, 333}));
  HostTensor outer = f.run(f.b.sum(x, {0, 2}, true));
  EXPECT_EQ(outer.type, f64({1, 3, 1}));
  EXPECT_EQ(outer.data, (Data{202, 242, 282}));
  EXPECT_EQ(f.run(f.b.amax(x, {0, 1})).data, (Data{120, 121}));
  EXPECT_EQ(f.run(f.b.mean(x, {2})).data,
            (Data{0.5, 10.5, 20.5, 100.5, 110.5, 120.5}));
}

TEST(InterpReduce, SizeOneAxes) {
  Fixture f;
  Value *x = f.in(f64({1, 3, 1}), {1, 2, 3});
  EXPECT_EQ(f.run(f.b.sum(x, {1})).data, (Data{6}));
  EXPECT_EQ(f.run(f.b.sum(x, {0})).data, (Data{1, 2, 3}));
  EXPECT_EQ(f.run(f.b.sum(x, {2}, true)).data, (Data{1, 2, 3}));
}

// --- softmax ----------------------------------------------------------------

TEST(InterpSoftmax, LastAxis) {
  Fixture f;
  Value *x = f.in(f64({2, 3}), {1, 2, 3, 0, 0, 0});
  expect_near(f.run(f.b.softmax(x)).data,
              {0.09003057317038046, 0.24472847105479764, 0.6652409557748218,
               1.0 / 3, 1.0 / 3, 1.0 / 3});
  expect_near(f.run(f.b.log_softmax(x)).data,
              {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804,
               -1.0986122886681098, -1.0986122886681098, -1.0986122886681098});
}

TEST(InterpSoftmax, FirstAxis) {
  Fixture f;
  // Columns (1,4), (2,5), (3,6) each differ by 3.
  Value *x = f.in(f64({2, 3}), kM);
  double lo = 0.04742587317756679, hi = 0.9525741268224334;
  expect_near(f.run(f.b.softmax(x, 0)).data, {lo, lo, lo, hi, hi, hi});
  double llo = -3.048587351573742, lhi = -0.04858735157374196;
  expect_near(f.run(f.b.log_softmax(x, 0)).data,
              {llo, llo, llo, lhi, lhi, lhi});
}

TEST(InterpSoftmax, StableForLargeLogits) {
  Fixture f;
  Value *x = f.in(f64({3}), {1e4, 1e4 + 1, 1e4 - 1});
  HostTensor s = f.run(f.b.softmax(x));
  HostTensor l = f.run(f.b.log_softmax(x));
  expect_near(s.data,
              {0.24472847105479764, 0.6652409557748218, 0.09003057317038046},
              1e-12);
  expect_near(l.data,
              {-1.4076059644443804, -0.4076059644443804, -2.4076059644443806},
              1e-12);
  // And in f32, where exp(1e4) alone would overflow.
  Value *y = f.in(f32({2}), {1e4, -1e4});
  EXPECT_EQ(f.run(f.b.softmax(y)).data, (Data{1, 0}));
  EXPECT_EQ(f.run(f.b.log_softmax(y)).data, (Data{0, -2e4}));
}

// --- layout and linear algebra ---------------------------------------------

TEST(InterpMatmul, TwoD) {
  Fixture f;
  Value *a = f.in(f64({2, 3}), kM);
  Value *b = f.in(f64({3, 2}), {7, 8, 9, 10, 11, 12});
  HostTensor r = f.run(f.b.matmul(a, b));
  EXPECT_EQ(r.type, f64({2, 2}));
  EXPECT_EQ(r.data, (Data{58, 64, 139, 154}));
}

TEST(InterpMatmul, BatchedWithBroadcastBatch) {
  Fixture f;
  // a: [2,1,1,2] (batch [2,1]), b: [3,2,1] (batch [3]) -> [2,3,1,1].
  Value *a = f.in(f64({2, 1, 1, 2}), {1, 2, 3, 4});
  Value *b = f.in(f64({3, 2, 1}), {1, 1, 1, -1, 2, 0});
  HostTensor r = f.run(f.b.matmul(a, b));
  EXPECT_EQ(r.type, f64({2, 3, 1, 1}));
  // [1,2]·(1,1)=3, ·(1,-1)=-1, ·(2,0)=2; [3,4]: 7, -1, 6.
  EXPECT_EQ(r.data, (Data{3, -1, 2, 7, -1, 6}));
  // A 2-D right operand shared by a batch of left operands.
  Value *c = f.in(f64({2, 1, 2}), {1, 2, 3, 4});
  Value *m = f.in(f64({2, 2}), {1, 0, 0, 2});
  EXPECT_EQ(f.run(f.b.matmul(c, m)).data, (Data{1, 4, 3, 8}));
}

TEST(InterpTranspose, ThreeD) {
  Fixture f;
  // x[i][j][k] = 100 i + 10 j + k, shape [2,3,4].
  Data d;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        d.push_back(100 * i + 10 * j + k);
  Value *x = f.in(f64({2, 3, 4}), d);
  HostTensor t = f.run(f.b.transpose(x, {2, 0, 1}));
  EXPECT_EQ(t.type, f64({4, 2, 3}));
  // t[k][i][j] = x[i][j][k].
  Data want;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        want.push_back(100 * i + 10 * j + k);
  EXPECT_EQ(t.data, want);
  HostTensor s = f.run(f.b.transpose(x));
  EXPECT_EQ(s.type, f64({2, 4, 3}));
  EXPECT_EQ(Data(s.data.begin(), s.data.begin() + 6),
            (Data{0, 10, 20, 1, 11, 21}));
}

TEST(InterpLayout, ReshapeAndBroadcastTo) {
  Fixture f;
  Value *x = f.in(f64({2, 3}), kM);
  HostTensor r = f.run(f.b.reshape(x, {3, 2}));
  EXPECT_EQ(r.type, f64({3, 2}));
  EXPECT_EQ(r.data, kM);
  Value *col = f.in(f64({2, 1}), {1, 2});
  HostTensor bc = f.run(f.b.broadcast_to(col, {2, 2, 3}));
  EXPECT_EQ(bc.data, (Data{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2}));
  Value *s = f.in(i32({}), {7});
  EXPECT_EQ(f.run(f.b.broadcast_to(s, {2})).data, (Data{7, 7}));
}

TEST(InterpOneHot, Values) {
  Fixture f;
  Value *y = f.in(i32({2, 2}), {0, 2, 1, 2});
  HostTensor r = f.run(f.b.one_hot(y, 3));
  EXPECT_EQ(r.type, f32({2, 2, 3}));
  EXPECT_EQ(r.data, (Data{1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1}));
}

TEST(InterpOneHot, OutOfRangeLabel) {
  Fixture f;
  Value *y = f.in(i64({3}), {0, 3, 1});
  Value *oh = f.b.one_hot(y, 3);
  EXPECT_EQ(error_of([&] { f.run(oh); }),
            "one_hot: label 3 at index 1 is out of range [0, 3)");
  Fixture g;
  Value *z = g.in(i32({2}), {1, -1});
  Value *oz = g.b.one_hot(z, 4);
  EXPECT_EQ(error_of([&] { g.run(oz); }),
            "one_hot: label -1 at index 1 is out of range [0, 4)");
}

TEST(InterpIota, CoordinateAlongTheAxis) {
  Fixture f;
  EXPECT_EQ(f.run(f.b.iota(i32({2, 3}), 1)).data, (Data{0, 1, 2, 0, 1, 2}));
  Fixture g;
  EXPECT_EQ(g.run(g.b.iota(f64({2, 3}), 0)).data, (Data{0, 0, 0, 1, 1, 1}));
  Fixture h;
  HostTensor r = h.run(h.b.iota(i64({2, 2, 2}), 1));
  EXPECT_EQ(r.type, i64({2, 2, 2}));
  EXPECT_EQ(r.data, (Data{0, 0, 1, 1, 0, 0, 1, 1}));
}

// An input range is checked when the graph runs, naming input and element.
TEST(InterpInputRange, OutOfRangeElementIsAnError) {
  Fixture f;
  Value *y = f.in(i32({3}), {0, 2, 5});
  f.g.set_input_range(0, {0, 3});
  Value *n = f.b.neg(y);
  EXPECT_EQ(error_of([&] { f.run(n); }),
            "input %in0 of @t: element 2 is 5, outside its range [0, 3) "
            "(one_hot labels lie in [0, num_classes), gather and scatter_add "
            "indices in [0, the indexed axis's size))");
  f.feeds[0].data[2] = 1;
  EXPECT_EQ(f.run(n).data, (Data{0, -2, -1}));
  EXPECT_EQ(error_of([&] {
              f.g.set_input_range(0, {2, 2});
            }),
            "input %in0: empty range [2, 2)");
  Fixture g;
  g.in(f32({1}), {0});
  EXPECT_EQ(error_of([&] {
              g.g.set_input_range(0, {0, 1});
            }),
            "input %in0: only integer data inputs take a range, not data "
            "f32[1]");
}

// --- random numbers ---------------------------------------------------------

TEST(Philox, KnownAnswers) {
  // Random123's kat_vectors for philox4x32_10: counter (c0..c3), key
  // (k0, k1) -> first output word. Here counter = (index, offset) and key =
  // seed, each as two 32-bit halves, low first.
  EXPECT_EQ(philox4x32_10_first(0, 0, 0), 0x6627e8d5u);
  EXPECT_EQ(philox4x32_10_first(~0ull, ~0ull, ~0ull), 0x408f276du);
  EXPECT_EQ(philox4x32_10_first(/*seed=*/0x299f31d0a4093822ull,
                                /*offset=*/0x0370734413198a2eull,
                                /*index=*/0x85a308d3243f6a88ull),
            0xd16cfe09u);
}

TEST(InterpRandom, DeterministicInRangeAndKeyed) {
  auto draw = [](int64_t seed, int64_t offset) {
    Fixture f;
    Value *s = f.in(i64({}), {static_cast<double>(seed)});
    Value *o = f.in(i64({}), {static_cast<double>(offset)});
    return f.run(f.b.random_uniform(s, o, f32({1000}))).data;
  };
  Data a = draw(42, 0);
  EXPECT_EQ(a, draw(42, 0));
  double sum = 0;
  std::set<double> distinct;
  for (double v : a) {
    EXPECT_GE(v, 0.0);
    EXPECT_LT(v, 1.0);
    // 24 random bits: every value is a multiple of 2^-24.
    EXPECT_EQ(v * 16777216.0, std::floor(v * 16777216.0));
    sum += v;
    distinct.insert(v);
  }
  // Fixed seed, so not flaky: the mean of 1000 uniforms is 0.5 +- 0.009.
  EXPECT_NEAR(sum / 1000, 0.5, 0.05);
  EXPECT_GT(distinct.size(), 990u);
  // Element 0 of (seed 0, offset 0) is the first Philox word >> 8.
  EXPECT_EQ(draw(0, 0)[0], (0x6627e8d5u >> 8) / 16777216.0);
  Data b = draw(42, 1), c = draw(43, 0);
  int same_b = 0, same_c = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    same_b += a[i] == b[i];
    same_c += a[i] == c[i];
  }
  EXPECT_LT(same_b, 5);
  EXPECT_LT(same_c, 5);
}

// --- fused nodes and interpreter errors ------------------------------------

TEST(InterpFused, RunsTheBody) {
  Fixture f;
  Value *x = f.in(f64({3}), {1, 2, 3});
  Value *y = f.in(f64({}), {10});
  auto body = std::make_unique<Graph>("body");
  {
    Builder bb(*body);
    Value *a = body->add_input("a", f64({3}));
    Value *c = body->add_input("c", f64({}));
    body->add_output(bb.add(bb.mul(a, a), c));
    body->add_output(bb.neg(a));
  }
  Node *n =
      f.b.create(Op::Fused, {x, y}, {{"kind", std::string("elementwise")}},
                 {f64({3}), f64({3})}, std::move(body));
  EXPECT_EQ(f.run(n->results[0]).data, (Data{11, 14, 19}));
  EXPECT_EQ(f.run(n->results[1]).data, (Data{-1, -2, -3}));
}

TEST(InterpErrors, WrongInputs) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", f32({2}));
  g.add_output(b.neg(x));
  EXPECT_EQ(error_of([&] { interpret(g, {}); }),
            "graph @main takes 1 inputs, got 0");
  EXPECT_EQ(error_of([&] { interpret(g, {HostTensor(f64({2}))}); }),
            "input %x of @main must be f32[2], got f64[2]");
  EXPECT_EQ(error_of([&] {
              interpret(g, {HostTensor(f32({2}), {1, 2, 3})});
            }),
            "input %x of @main holds 3 values for f32[2]");
}

TEST(InterpErrors, RoundTo) {
  EXPECT_EQ(round_to(DType::f32, 0.1), 0.10000000149011612);
  EXPECT_EQ(round_to(DType::f64, 0.1), 0.1);
  EXPECT_EQ(round_to(DType::i32, -3.9), -3);
  EXPECT_EQ(round_to(DType::i64, 1e12 + 0.5), 1e12);
  EXPECT_EQ(round_to(DType::i32, 1e10), 2147483647.0);
  EXPECT_EQ(round_to(DType::i64, -1e30), -0x1p63);
  EXPECT_EQ(round_to(DType::boolean, -0.1), 1);
  EXPECT_EQ(round_to(DType::boolean, 0.0), 0);
}

} // namespace
} // namespace kiln
