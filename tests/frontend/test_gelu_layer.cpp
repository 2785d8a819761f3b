// nn::GELU (frontend/layers.h): torch.nn.GELU's two forms, and the error for
// an unknown form at construction.
#include "frontend/layers.h"
#include "ir/error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace kiln {
namespace {

TEST(GeluLayer, BothFormsMatchTorch) {
  Trace::discard_active();
  std::vector<double> v = {-1, 0.5, 2};
  // torch 1.13, f64: nn.GELU()(x) and nn.GELU(approximate='tanh')(x).
  const double none[] = {-0.15865525393145702, 0.34573123063700656,
                         1.9544997361036416};
  const double tanh_form[] = {-0.15880800939172324, 0.34571400982514394,
                              1.954597694087775};
  nn::GELU exact, approx("tanh");
  Tensor x = Tensor::from(make_array({3}, std::span<const double>(v)));
  std::vector<Array> r = realize({exact(x), approx(x)});
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(r[0].get(i), none[i], 1e-15);
    EXPECT_NEAR(r[1].get(i), tanh_form[i], 1e-15);
  }
  EXPECT_EQ(approx->type_name(), "GELU");
  EXPECT_EQ(approx->approximate(), "tanh");
}

TEST(GeluLayer, UnknownFormIsAnError) {
  try {
    nn::GELU g("fast");
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_STREQ(
        e.what(),
        "GELU: approximate must be \"none\" or \"tanh\", got \"fast\"");
  }
}

} // namespace
} // namespace kiln
