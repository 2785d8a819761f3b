// numpy broadcasting rules (ir/types.h): broadcast_shapes, broadcasts_to,
// contiguous_strides and broadcast_strides.
#include "ir/types.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using Strides = std::vector<int64_t>;

TEST(Broadcast, EqualShapes) {
  EXPECT_EQ(broadcast_shapes({2, 3}, {2, 3}), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({}, {}), Shape{});
}

TEST(Broadcast, ScalarWithAnything) {
  EXPECT_EQ(broadcast_shapes({}, {4, 5}), (Shape{4, 5}));
  EXPECT_EQ(broadcast_shapes({4, 5}, {}), (Shape{4, 5}));
}

TEST(Broadcast, OnesStretchInEveryAxis) {
  EXPECT_EQ(broadcast_shapes({1, 3}, {2, 3}), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({2, 1}, {2, 3}), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({2, 1}, {1, 3}), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({1, 3}, {2, 1}), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({4, 1, 6}, {1, 5, 1}), (Shape{4, 5, 6}));
}

TEST(Broadcast, MissingLeadingAxes) {
  EXPECT_EQ(broadcast_shapes({3}, {2, 3}), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({5, 4}, {8, 7, 1, 4}), (Shape{8, 7, 5, 4}));
  EXPECT_EQ(broadcast_shapes({8, 1, 6, 1}, {7, 1, 5}),
            (Shape{8, 7, 6, 5})); // numpy's documentation example
  EXPECT_EQ(broadcast_shapes({1}, {0}), (Shape{0}));
}

TEST(Broadcast, Incompatible) {
  EXPECT_EQ(broadcast_shapes({3}, {4}), std::nullopt);
  EXPECT_EQ(broadcast_shapes({2, 3}, {3, 2}), std::nullopt);
  EXPECT_EQ(broadcast_shapes({2, 1}, {8, 4, 3}), std::nullopt);
  EXPECT_EQ(broadcast_shapes({0}, {2}), std::nullopt);
  // Leading axes are not aligned: [3] against [3,1] is [3,3], not an error,
  // but [3] against [1,2] is.
  EXPECT_EQ(broadcast_shapes({3}, {3, 1}), (Shape{3, 3}));
  EXPECT_EQ(broadcast_shapes({3}, {1, 2}), std::nullopt);
}

TEST(Broadcast, BroadcastsTo) {
  EXPECT_TRUE(broadcasts_to({}, {2, 3}));
  EXPECT_TRUE(broadcasts_to({3}, {2, 3}));
  EXPECT_TRUE(broadcasts_to({2, 1}, {2, 3}));
  EXPECT_TRUE(broadcasts_to({2, 3}, {2, 3}));
  // Broadcasting is not symmetric here: the result must be exactly `to`.
  EXPECT_FALSE(broadcasts_to({2, 3}, {3}));
  EXPECT_FALSE(broadcasts_to({2, 3}, {1, 3}));
  EXPECT_FALSE(broadcasts_to({2, 1}, {1, 3}));
  EXPECT_FALSE(broadcasts_to({4}, {2, 3}));
}

TEST(Strides, Contiguous) {
  EXPECT_EQ(contiguous_strides({}), Strides{});
  EXPECT_EQ(contiguous_strides({5}), Strides{1});
  EXPECT_EQ(contiguous_strides({2, 3, 4}), (Strides{12, 4, 1}));
  EXPECT_EQ(contiguous_strides({2, 1, 4}), (Strides{4, 4, 1}));
}

TEST(Strides, BroadcastStrides) {
  // Same shape: the contiguous strides.
  EXPECT_EQ(broadcast_strides({2, 3}, {2, 3}), (Strides{3, 1}));
  // A row vector over a matrix: 0 on the stretched axis.
  EXPECT_EQ(broadcast_strides({1, 3}, {2, 3}), (Strides{0, 1}));
  EXPECT_EQ(broadcast_strides({3}, {2, 3}), (Strides{0, 1}));
  // A column vector.
  EXPECT_EQ(broadcast_strides({2, 1}, {2, 3}), (Strides{1, 0}));
  // A scalar reads element 0 everywhere.
  EXPECT_EQ(broadcast_strides({}, {2, 3}), (Strides{0, 0}));
  // Middle axis stretched, leading axis added.
  EXPECT_EQ(broadcast_strides({4, 1, 6}, {3, 4, 5, 6}), (Strides{0, 6, 0, 1}));
}

TEST(Strides, BroadcastStridesAddressEveryElement) {
  // [2,1,3] read as [2,4,3]: element (i,j,k) is at i*3 + k.
  Shape from{2, 1, 3}, to{2, 4, 3};
  auto st = broadcast_strides(from, to);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t k = 0; k < 3; ++k)
        EXPECT_EQ(i * st[0] + j * st[1] + k * st[2], i * 3 + k);
}

} // namespace
} // namespace kiln
