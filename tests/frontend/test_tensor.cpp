// Tensor: tracing, broadcasting, realization, the compile cache and error
// messages. Values are checked against plain C++ on the same numbers.
#include "frontend/layers.h"
#include "frontend/tensor.h"
#include "ir/error.h"
#include "ir/printer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace kiln {
namespace {

// Every test starts without a trace: a test that throws mid-recording (on
// purpose) would otherwise leave ops that the next test's realization runs.
struct FreshTraceListener : ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo &) override {
    Trace::discard_active();
  }
};
const bool kListenerInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(
      new FreshTraceListener);
  return true;
}();

Array f64(Shape s, std::vector<double> v) {
  return make_array(std::move(s), std::span<const double>(v));
}

TEST(Tensor, ArithmeticWithBroadcastingAndScalars) {
  Tensor a = Tensor::from(f64({2, 3}, {1, 2, 3, 4, 5, 6}), "a");
  Tensor b = Tensor::from(f64({3}, {10, 20, 30}), "b");
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.dtype(), DType::f64);
  Tensor c = (a + b) * 2.0 - a / 2.0;
  Tensor d = 1.0 - (-a);
  std::vector<Array> r = realize({c, d});
  for (int i = 0; i < 6; ++i) {
    double av = i + 1, bv = 10.0 * (i % 3 + 1);
    EXPECT_DOUBLE_EQ(r[0].get(i), (av + bv) * 2 - av / 2);
    EXPECT_DOUBLE_EQ(r[1].get(i), 1 + av);
  }
}

TEST(Tensor, UnaryReductionsAndSoftmax) {
  std::vector<double> v = {0.5, -1.0, 2.0, 0.25};
  Tensor x = Tensor::from(f64({2, 2}, v));
  std::vector<Array> r =
      realize({exp(x), tanh(x), sigmoid(x), relu(x), sum(x, {1}), mean(x),
               amax(x, {0}, true), log_softmax(x), softmax(x, 0),
               pow(abs(x), 2.0), maximum(x, x * 2.0), sqrt(abs(x))});
  for (int i = 0; i < 4; ++i) {
    EXPECT_DOUBLE_EQ(r[0].get(i), std::exp(v[i]));
    EXPECT_DOUBLE_EQ(r[1].get(i), std::tanh(v[i]));
    EXPECT_NEAR(r[2].get(i), 1 / (1 + std::exp(-v[i])), 1e-15);
    EXPECT_DOUBLE_EQ(r[3].get(i), std::max(v[i], 0.0));
    EXPECT_DOUBLE_EQ(r[9].get(i), v[i] * v[i]);
    EXPECT_DOUBLE_EQ(r[10].get(i), std::max(v[i], 2 * v[i]));
    EXPECT_DOUBLE_EQ(r[11].get(i), std::sqrt(std::fabs(v[i])));
  }
  EXPECT_DOUBLE_EQ(r[4].get(0), -0.5);
  EXPECT_DOUBLE_EQ(r[4].get(1), 2.25);
  EXPECT_DOUBLE_EQ(r[5].get(0), 1.75 / 4);
  EXPECT_EQ(r[6].type().shape, (Shape{1, 2}));
  EXPECT_DOUBLE_EQ(r[6].get(0), 2.0);
  EXPECT_DOUBLE_EQ(r[6].get(1), 0.25);
  double lse = std::log(std::exp(0.5) + std::exp(-1.0));
  EXPECT_NEAR(r[7].get(0), 0.5 - lse, 1e-15);
  double s0 = std::exp(0.5) + std::exp(2.0);
  EXPECT_NEAR(r[8].get(0), std::exp(0.5) / s0, 1e-15);
}

TEST(Tensor, LayoutMatmulOneHotWhereCast) {
  Tensor a = Tensor::from(f64({2, 3}, {1, 2, 3, 4, 5, 6}));
  Tensor at = transpose(a); // [3,2]
  EXPECT_EQ(at.shape(), (Shape{3, 2}));
  Tensor m = matmul(a, at); // [2,2]
  Tensor p = permute(reshape(a, {3, 2}), {1, 0});
  Tensor f = flatten(reshape(a, {1, 2, 3}), 1);
  Tensor bc = broadcast_to(reshape(a, {2, 1, 3}), {2, 2, 3});
  int32_t lab[] = {2, 0};
  Tensor oh =
      one_hot(Tensor::from(make_array({2}, std::span<const int32_t>(lab))), 3,
              DType::f64);
  Tensor w = where(a > 3.0, a, scalar_like(a, -1.0));
  Tensor c = cast(a, DType::i32);
  std::vector<Array> r = realize({m, p, f, bc, oh, w, c});
  EXPECT_DOUBLE_EQ(r[0].get(0), 14);
  EXPECT_DOUBLE_EQ(r[0].get(1), 32);
  EXPECT_DOUBLE_EQ(r[0].get(3), 77);
  // reshape [3,2] = [[1,2],[3,4],[5,6]], transposed row 0 = 1,3,5.
  EXPECT_DOUBLE_EQ(r[1].get(1), 3);
  EXPECT_EQ(r[2].type().shape, (Shape{1, 6}));
  EXPECT_DOUBLE_EQ(r[3].get(3), 1); // [0,1,0] repeats row 0
  EXPECT_DOUBLE_EQ(r[4].get(2), 1);
  EXPECT_DOUBLE_EQ(r[4].get(3), 1);
  EXPECT_DOUBLE_EQ(r[4].get(0), 0);
  EXPECT_DOUBLE_EQ(r[5].get(0), -1);
  EXPECT_DOUBLE_EQ(r[5].get(4), 5);
  EXPECT_EQ(r[6].type().dtype, DType::i32);
}

TEST(Tensor, ItemToHostAndRealizedValuesStayReadable) {
  Tensor x = Tensor::from(f64({3}, {1, 2, 3}));
  Tensor s = sum(x);
  EXPECT_DOUBLE_EQ(s.item(), 6);
  EXPECT_DOUBLE_EQ(s.item(), 6);    // kept with its finished trace
  EXPECT_THROW(x.to_host(), Error); // not realized with the step
  EXPECT_THROW(x + 1.0, Error);     // the step is over
  EXPECT_THROW(x.item(), Error);    // not one element... and not realized
}

TEST(Tensor, MixingTracesIsAnError) {
  Tensor a = Tensor::from(f64({2}, {1, 2}));
  EXPECT_DOUBLE_EQ(sum(a).item(), 3);
  Tensor b = Tensor::from(f64({2}, {1, 2})); // a new trace
  try {
    (void)(a + b);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("realized"), std::string::npos)
        << e.what();
  }
}

TEST(Tensor, DtypeMismatchAndBadShapesThrow) {
  Tensor a = Tensor::from(f64({2}, {1, 2}));
  Tensor b = Tensor::from(
      make_array({2}, std::span<const float>(std::vector<float>{1, 2})));
  EXPECT_THROW(a + b, Error);
  EXPECT_THROW(a + Tensor::from(f64({3}, {1, 2, 3})), Error);
  EXPECT_THROW(reshape(a, {3}), Error);
  EXPECT_THROW(matmul(a, a), Error);
}

TEST(Tensor, SameGraphCompilesOnce) {
  clear_compile_cache();
  for (int i = 0; i < 3; ++i) {
    Tensor x = Tensor::from(f64({2}, {1.0 * i, 2}));
    EXPECT_DOUBLE_EQ(sum(x * x).item(), i * i + 4.0);
  }
  EXPECT_EQ(compile_cache_size(), 1u);
  Tensor y = Tensor::from(f64({3}, {1, 2, 3})); // another input type
  EXPECT_DOUBLE_EQ(sum(y * y).item(), 14);
  EXPECT_EQ(compile_cache_size(), 2u);
}

TEST(Tensor, ShapeErrorNamesModulePathAndOp) {
  struct Net : nn::Module {
    std::shared_ptr<nn::Linear> fc1, fc2;
    Net() {
      fc1 = register_module("fc1", std::make_shared<nn::Linear>(784, 256));
      fc2 = register_module("fc2", std::make_shared<nn::Linear>(256, 128));
    }
    Tensor forward(const Tensor &x) override {
      return (*fc2)(relu(x)); // bug: skips fc1, so fc2 sees [64,128]
    }
  };
  Net net;
  Tensor x = Tensor::from(Array(Type{DType::f32, {64, 128}}), "x");
  try {
    net(x);
    FAIL() << "expected a shape error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(),
                 "fc2 (Linear): matmul expects [*,256], got [64,128]");
  }
  // The scope is restored after the error: a later op is not mislabelled.
  try {
    (void)(x + Tensor::from(Array(Type{DType::f32, {3}})));
    FAIL();
  } catch (const Error &e) {
    EXPECT_EQ(std::string(e.what()).find("fc2"), std::string::npos) << e.what();
  }
}

TEST(Tensor, SequentialNamesChildrenByIndex) {
  nn::Sequential seq(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2));
  std::vector<std::string> names;
  for (auto &[n, p] : seq->named_parameters())
    names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "2.weight",
                                             "2.bias"}));
  Tensor x = Tensor::from(Array(Type{DType::f32, {5, 3}}));
  try {
    (*seq)(x);
    FAIL();
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "0 (Linear): matmul expects [*,4], got [5,3]");
  }
}

} // namespace
} // namespace kiln
