// Element types, shapes, Type::str and axis normalization (ir/types.h).
#include "ir/error.h"
#include "ir/types.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(DType, NamesRoundTrip) {
  EXPECT_EQ(dtype_name(DType::f32), "f32");
  EXPECT_EQ(dtype_name(DType::f64), "f64");
  EXPECT_EQ(dtype_name(DType::i32), "i32");
  EXPECT_EQ(dtype_name(DType::i64), "i64");
  EXPECT_EQ(dtype_name(DType::boolean), "bool");
  for (DType t :
       {DType::f32, DType::f64, DType::i32, DType::i64, DType::boolean})
    EXPECT_EQ(parse_dtype(dtype_name(t)), t);
}

TEST(DType, ParseRejectsUnknownNames) {
  EXPECT_EQ(parse_dtype("f16"), std::nullopt);
  EXPECT_EQ(parse_dtype("F32"), std::nullopt);
  EXPECT_EQ(parse_dtype(""), std::nullopt);
  EXPECT_EQ(parse_dtype("boolean"), std::nullopt);
  EXPECT_EQ(parse_dtype("f32 "), std::nullopt);
}

TEST(DType, Sizes) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  EXPECT_EQ(dtype_size(DType::i32), 4u);
  EXPECT_EQ(dtype_size(DType::i64), 8u);
  EXPECT_EQ(dtype_size(DType::boolean), 1u);
}

TEST(DType, Classes) {
  EXPECT_TRUE(is_float(DType::f32));
  EXPECT_TRUE(is_float(DType::f64));
  EXPECT_FALSE(is_float(DType::i32));
  EXPECT_FALSE(is_float(DType::boolean));
  EXPECT_TRUE(is_int(DType::i32));
  EXPECT_TRUE(is_int(DType::i64));
  EXPECT_FALSE(is_int(DType::f64));
  EXPECT_FALSE(is_int(DType::boolean));
}

TEST(Shape, NumelAndStr) {
  EXPECT_EQ(numel({}), 1);
  EXPECT_EQ(numel({0}), 0);
  EXPECT_EQ(numel({64, 784}), 50176);
  EXPECT_EQ(numel({2, 3, 4}), 24);
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_EQ(shape_str({7}), "[7]");
  EXPECT_EQ(shape_str({64, 784}), "[64,784]");
}

TEST(Type, Str) {
  EXPECT_EQ((Type{DType::f32, {64, 784}}).str(), "f32[64,784]");
  EXPECT_EQ((Type{DType::f64, {}}).str(), "f64[]");
  EXPECT_EQ((Type{DType::i32, {64}}).str(), "i32[64]");
  EXPECT_EQ((Type{DType::i64, {1, 2, 3}}).str(), "i64[1,2,3]");
  EXPECT_EQ((Type{DType::boolean, {3}}).str(), "bool[3]");
}

TEST(Type, RankNumelBytesEquality) {
  Type t{DType::f64, {3, 5}};
  EXPECT_EQ(t.rank(), 2);
  EXPECT_EQ(t.numel(), 15);
  EXPECT_EQ(t.bytes(), 120u);
  EXPECT_EQ((Type{DType::boolean, {3, 5}}).bytes(), 15u);
  EXPECT_EQ((Type{DType::f32, {}}).bytes(), 4u);
  EXPECT_EQ((Type{DType::f32, {}}).rank(), 0);
  EXPECT_EQ(t, (Type{DType::f64, {3, 5}}));
  EXPECT_NE(t, (Type{DType::f32, {3, 5}}));
  EXPECT_NE(t, (Type{DType::f64, {5, 3}}));
  EXPECT_NE(t, (Type{DType::f64, {3, 5, 1}}));
}

TEST(Axis, Normalize) {
  EXPECT_EQ(normalize_axis(0, 3), 0);
  EXPECT_EQ(normalize_axis(2, 3), 2);
  EXPECT_EQ(normalize_axis(-1, 3), 2);
  EXPECT_EQ(normalize_axis(-3, 3), 0);
}

TEST(Axis, OutOfRangeThrowsWithMessage) {
  try {
    normalize_axis(3, 3);
    FAIL() << "expected kiln::Error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "axis 3 is out of range for rank 3");
  }
  EXPECT_THROW(normalize_axis(-4, 3), Error);
  // A scalar has no axes: numpy rejects axis 0 of a 0-d array too.
  EXPECT_THROW(normalize_axis(0, 0), Error);
  EXPECT_THROW(normalize_axis(-1, 0), Error);
}

} // namespace
} // namespace kiln
