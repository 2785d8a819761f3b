// The frontend's cat, slice and pad (frontend/tensor.h): values, a gradient
// through backward, and the errors a user sees.
#include "frontend/parameter.h"
#include "frontend/tensor.h"
#include "ir/error.h"

#include <gtest/gtest.h>

#include <memory>
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

Array arange(Shape s) {
  std::vector<double> v(static_cast<size_t>(numel(s)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<double>(i);
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

TEST(TensorLayout, CatSlicePadValues) {
  Tensor x = Tensor::from(arange({2, 3})); // [[0 1 2] [3 4 5]]
  Tensor y = Tensor::from(arange({2, 1}));
  std::vector<Array> r = realize({cat({x, y}, 1), cat({x, x}), slice(x, 1, -2),
                                  slice(x, -1, 0, 100, 2), slice(x, 0, 1, 2),
                                  pad(x, {1, 0, 0, 2}, -1)});
  EXPECT_EQ(r[0].type().shape, (Shape{2, 4}));
  std::vector<double> want0 = {0, 1, 2, 0, 3, 4, 5, 1};
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(r[0].get(i), want0[i]) << i;
  EXPECT_EQ(r[1].type().shape, (Shape{4, 3}));
  EXPECT_EQ(r[1].get(7), 1);
  EXPECT_EQ(r[2].type().shape, (Shape{2, 2})); // x[:, -2:]
  EXPECT_EQ(r[2].get(0), 1);
  EXPECT_EQ(r[2].get(3), 5);
  EXPECT_EQ(r[3].type().shape, (Shape{2, 2})); // x[:, ::2]
  EXPECT_EQ(r[3].get(1), 2);
  EXPECT_EQ(r[3].get(2), 3);
  EXPECT_EQ(r[4].type().shape, (Shape{1, 3})); // x[1:2]
  EXPECT_EQ(r[4].get(0), 3);
  EXPECT_EQ(r[5].type().shape, (Shape{3, 5}));
  std::vector<double> want5 = {-1, -1, -1, -1, -1, 0,  1, 2,
                               -1, -1, 3,  4,  5,  -1, -1};
  for (int i = 0; i < 15; ++i)
    EXPECT_EQ(r[5].get(i), want5[i]) << i;
}

TEST(TensorLayout, GradientsFlowBack) {
  // Every element once through the pad, columns 1 and 3 again through the
  // strided slice: the gradient counts them.
  auto p = std::make_shared<Parameter>("p", arange({2, 5}));
  Tensor w = p->tensor();
  Tensor loss = sum(cat({slice(w, 1, -4, 100, 2), pad(w, {0, 0, 1, 0}, 3)}, 1));
  loss.backward();
  std::vector<Array> r = realize({loss, p->grad()});
  EXPECT_EQ(r[0].get(0), 45 + (1 + 3 + 6 + 8) + 3 * 2);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(r[1].get(i), (i % 5 == 1 || i % 5 == 3) ? 2 : 1) << i;
}

TEST(TensorLayout, Errors) {
  Tensor x = Tensor::from(arange({2, 3}));
  Tensor y = Tensor::from(arange({3, 3}));
  EXPECT_EQ(error_of([&] {
              cat({x, y}, 1);
            }),
            "concat along axis 1: operand 1 is f64[3,3], operand 0 is "
            "f64[2,3] (shapes must match except along the axis)");
  EXPECT_EQ(error_of([&] { slice(x, 2, 0); }),
            "slice axis 2 is out of range for rank 2");
  EXPECT_EQ(error_of([&] { slice(x, 1, 0, 3, 0); }),
            "slice step 0 on axis 1 is not supported (steps must be >= 1)");
  EXPECT_EQ(error_of([&] { slice(x, 1, 3); }),
            "slice [3:3:1] of axis 1 (size 3) selects no elements");
  EXPECT_EQ(error_of([&] {
              pad(x, {1, 1});
            }),
            "pad of a rank-2 operand needs 4 pads [before_0, after_0, ...], "
            "got 2");
  EXPECT_EQ(error_of([&] {
              pad(x, {0, 0, -1, 0});
            }),
            "pad amounts must be >= 0, got pads [0, 0, -1, 0] interior [0, 0]");
}

} // namespace
} // namespace kiln
