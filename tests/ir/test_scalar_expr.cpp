// The scalar expression language of elementwise ops (ir/scalar_expr.h):
// parsing (structure, precedence, errors) and evaluation.
#include "ir/error.h"
#include "ir/op.h"
#include "ir/scalar_expr.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace kiln {
namespace {

using K = ScalarExpr::Kind;

double eval(std::string_view text, std::vector<double> args = {0, 0, 0}) {
  args.resize(3, 0.0);
  return eval_scalar(parse_scalar_expr(text), args.data());
}

std::string parse_error(std::string_view text) {
  try {
    parse_scalar_expr(text);
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

TEST(ScalarExpr, ParsesArgumentsAndConstants) {
  ScalarExpr a = parse_scalar_expr("$2");
  EXPECT_EQ(a.kind, K::Arg);
  EXPECT_EQ(a.arg, 2);
  ScalarExpr c = parse_scalar_expr(" 0.25 ");
  EXPECT_EQ(c.kind, K::Const);
  EXPECT_EQ(c.value, 0.25);
}

TEST(ScalarExpr, TreeShape) {
  // ($0 > 0 ? $0 : 0): a select of a comparison.
  ScalarExpr e = parse_scalar_expr("($0 > 0 ? $0 : 0)");
  ASSERT_EQ(e.kind, K::Select);
  ASSERT_EQ(e.kids.size(), 3u);
  EXPECT_EQ(e.kids[0].kind, K::Gt);
  EXPECT_TRUE(e.kids[0].is_compare());
  EXPECT_EQ(e.kids[1].kind, K::Arg);
  EXPECT_EQ(e.kids[2].kind, K::Const);
  // (1 / (1 + exp(-$0))).
  ScalarExpr s = parse_scalar_expr("(1 / (1 + exp(-$0)))");
  ASSERT_EQ(s.kind, K::Div);
  ASSERT_EQ(s.kids[1].kind, K::Add);
  const ScalarExpr &call = s.kids[1].kids[1];
  ASSERT_EQ(call.kind, K::Call);
  EXPECT_EQ(call.fn, "exp");
  ASSERT_EQ(call.kids.size(), 1u);
  EXPECT_EQ(call.kids[0].kind, K::Neg);
  EXPECT_FALSE(s.is_compare());
}

TEST(ScalarExpr, Precedence) {
  EXPECT_EQ(eval("1 + 2 * 3"), 7);
  EXPECT_EQ(eval("(1 + 2) * 3"), 9);
  EXPECT_EQ(eval("10 - 4 - 3"), 3); // left associative
  EXPECT_EQ(eval("8 / 4 / 2"), 1);
  EXPECT_EQ(eval("-2 * 3"), -6);
  EXPECT_EQ(eval("--2"), 2);
  EXPECT_EQ(eval("2 - -3"), 5);
  EXPECT_EQ(eval("1 + 2 < 4"), 1);          // arithmetic binds tighter
  EXPECT_EQ(eval("2 * 3 == 6 ? 5 : 7"), 5); // then comparison, then ?:
  // ?: nests to the right.
  EXPECT_EQ(eval("$0 ? 1 : $1 ? 2 : 3", {0, 1}), 2);
  EXPECT_EQ(eval("$0 ? 1 : $1 ? 2 : 3", {0, 0}), 3);
  EXPECT_EQ(eval("$0 ? 1 : $1 ? 2 : 3", {1, 0}), 1);
}

TEST(ScalarExpr, Numbers) {
  EXPECT_EQ(eval("0.5"), 0.5);
  EXPECT_EQ(eval(".5"), 0.5);
  EXPECT_EQ(eval("2.5e3"), 2500);
  EXPECT_EQ(eval("1e-5"), 1e-5);
  EXPECT_EQ(eval("1e+2"), 100);
  EXPECT_EQ(eval("0.044715"), 0.044715);
  EXPECT_EQ(eval("2e-1 - 1"), 0.2 - 1);
}

TEST(ScalarExpr, Comparisons) {
  EXPECT_EQ(eval("$0 == $1", {2, 2}), 1);
  EXPECT_EQ(eval("$0 == $1", {2, 3}), 0);
  EXPECT_EQ(eval("$0 != $1", {2, 3}), 1);
  EXPECT_EQ(eval("$0 < $1", {2, 3}), 1);
  EXPECT_EQ(eval("$0 < $1", {3, 3}), 0);
  EXPECT_EQ(eval("$0 <= $1", {3, 3}), 1);
  EXPECT_EQ(eval("$0 > $1", {3, 2}), 1);
  EXPECT_EQ(eval("$0 >= $1", {2, 3}), 0);
  EXPECT_EQ(eval("$0 >= $1", {3, 3}), 1);
}

TEST(ScalarExpr, Functions) {
  EXPECT_DOUBLE_EQ(eval("exp(1)"), 2.718281828459045);
  EXPECT_DOUBLE_EQ(eval("log(2)"), 0.6931471805599453);
  EXPECT_EQ(eval("sqrt(16)"), 4);
  EXPECT_DOUBLE_EQ(eval("tanh(0.5)"), 0.46211715726000974);
  EXPECT_EQ(eval("fabs(-3)"), 3);
  EXPECT_EQ(eval("maximum(2, 5)"), 5);
  EXPECT_EQ(eval("minimum(2, 5)"), 2);
  EXPECT_EQ(eval("pow(2, 10)"), 1024);
  EXPECT_EQ(eval("pow($0, $1) + $2", {3, 2, 1}), 10);
}

TEST(ScalarExpr, SelectTakesThenOnNonZero) {
  EXPECT_EQ(eval("$0 ? $1 : $2", {0.5, 7, 9}), 7);
  EXPECT_EQ(eval("$0 ? $1 : $2", {-1, 7, 9}), 7);
  EXPECT_EQ(eval("$0 ? $1 : $2", {0, 7, 9}), 9);
}

TEST(ScalarExpr, Errors) {
  EXPECT_EQ(parse_error(""),
            "scalar expression '': expected an operand at offset 0");
  EXPECT_EQ(parse_error("1 +"),
            "scalar expression '1 +': expected an operand at offset 3");
  EXPECT_EQ(parse_error("1 2"),
            "scalar expression '1 2': unexpected text at offset 2");
  EXPECT_EQ(parse_error("(1"),
            "scalar expression '(1': expected ')' at offset 2");
  EXPECT_EQ(parse_error("$"), "scalar expression '$': expected an operand "
                              "number after '$' at offset 1");
  EXPECT_EQ(parse_error("$x"), "scalar expression '$x': expected an operand "
                               "number after '$' at offset 1");
  EXPECT_EQ(parse_error("foo(1)"),
            "scalar expression 'foo(1)': unknown function at offset 3");
  EXPECT_EQ(parse_error("exp 1"),
            "scalar expression 'exp 1': expected '(' at offset 4");
  EXPECT_EQ(parse_error("exp(1"),
            "scalar expression 'exp(1': expected ')' at offset 5");
  EXPECT_EQ(parse_error("$0 ? 1"),
            "scalar expression '$0 ? 1': expected ':' at offset 6");
  EXPECT_EQ(parse_error("#"),
            "scalar expression '#': expected an operand at offset 0");
}

TEST(ScalarExpr, MalformedNumbersAreKilnErrors) {
  EXPECT_EQ(parse_error("."),
            "scalar expression '.': malformed number at offset 0");
  EXPECT_EQ(parse_error("1e"),
            "scalar expression '1e': malformed number at offset 0");
  EXPECT_EQ(parse_error("1.2.3"),
            "scalar expression '1.2.3': malformed number at offset 0");
}

// maximum/minimum propagate NaN (torch.maximum, relu, amax do); C's fmax
// would drop it.
TEST(ScalarExpr, MaximumAndMinimumPropagateNaN) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(std::isnan(nan_max(nan, 1)));
  EXPECT_TRUE(std::isnan(nan_max(1, nan)));
  EXPECT_TRUE(std::isnan(nan_min(nan, 1)));
  EXPECT_TRUE(std::isnan(nan_min(-1, nan)));
  EXPECT_EQ(nan_max(-1, 3), 3);
  EXPECT_EQ(nan_min(-1, 3), -1);
  double args[2] = {nan, 0};
  for (Op op : {Op::Max, Op::Min, Op::Relu})
    EXPECT_TRUE(std::isnan(eval_scalar(scalar_expr(op), args))) << op_name(op);
}

TEST(ScalarExpr, FunctionArityIsChecked) {
  EXPECT_EQ(parse_error("maximum(1)"), "scalar expression 'maximum(1)': "
                                       "maximum takes 2 arguments at offset "
                                       "10");
  EXPECT_EQ(parse_error("exp(1, 2)"), "scalar expression 'exp(1, 2)': exp "
                                      "takes 1 argument at offset 9");
}

// Every elementwise entry of the op table parses, and means what it says.
TEST(ScalarExpr, EveryElementwiseOpHasAnExpression) {
  for (int i = 0; i < kNumOps; ++i) {
    const OpInfo &info = op_info(static_cast<Op>(i));
    SCOPED_TRACE(std::string(info.name));
    EXPECT_EQ(info.has(kElementwise), !info.scalar.empty());
    if (!info.scalar.empty()) {
      EXPECT_NO_THROW(parse_scalar_expr(info.scalar));
    }
  }
}

TEST(ScalarExpr, OpTableMeanings) {
  auto ev = [](Op op, std::vector<double> a) {
    a.resize(3, 0.0);
    return eval_scalar(scalar_expr(op), a.data());
  };
  EXPECT_EQ(ev(Op::Neg, {2}), -2);
  EXPECT_EQ(ev(Op::Abs, {-2.5}), 2.5);
  EXPECT_DOUBLE_EQ(ev(Op::Exp, {0.5}), 1.6487212707001282);
  EXPECT_DOUBLE_EQ(ev(Op::Log, {10}), 2.302585092994046);
  EXPECT_EQ(ev(Op::Sqrt, {2.25}), 1.5);
  EXPECT_EQ(ev(Op::Rsqrt, {4}), 0.5);
  EXPECT_DOUBLE_EQ(ev(Op::Tanh, {-1}), -0.7615941559557649);
  EXPECT_DOUBLE_EQ(ev(Op::Sigmoid, {1}), 0.7310585786300049);
  EXPECT_EQ(ev(Op::Relu, {-3}), 0);
  EXPECT_EQ(ev(Op::Relu, {3}), 3);
  EXPECT_EQ(ev(Op::Add, {2, 3}), 5);
  EXPECT_EQ(ev(Op::Sub, {2, 3}), -1);
  EXPECT_EQ(ev(Op::Mul, {2, 3}), 6);
  EXPECT_EQ(ev(Op::Div, {3, 2}), 1.5);
  EXPECT_EQ(ev(Op::Pow, {3, 2}), 9);
  EXPECT_EQ(ev(Op::Max, {2, 3}), 3);
  EXPECT_EQ(ev(Op::Min, {2, 3}), 2);
  EXPECT_EQ(ev(Op::Eq, {2, 2}), 1);
  EXPECT_EQ(ev(Op::Ne, {2, 2}), 0);
  EXPECT_EQ(ev(Op::Lt, {2, 3}), 1);
  EXPECT_EQ(ev(Op::Le, {3, 3}), 1);
  EXPECT_EQ(ev(Op::Gt, {2, 3}), 0);
  EXPECT_EQ(ev(Op::Ge, {2, 3}), 0);
  EXPECT_EQ(ev(Op::Where, {1, 4, 5}), 4);
  EXPECT_EQ(ev(Op::Where, {0, 4, 5}), 5);
  EXPECT_EQ(ev(Op::Cast, {2.75}), 2.75); // the interpreter rounds after
}

} // namespace
} // namespace kiln
