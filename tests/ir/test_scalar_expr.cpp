// The scalar expression language of elementwise ops (ir/scalar_expr.h):
// parsing (structure, precedence, errors) and evaluation.
#include "ir/builder.h"
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
  EXPECT_DOUBLE_EQ(ev(Op::Erf, {0.5}), 0.5204998778130465);
}

// Attribute references: '@name', '@name|fallback', '@name=word'.
TEST(ScalarExpr, ParsesAttributeReferences) {
  ScalarExpr a = parse_scalar_expr("@min");
  ASSERT_EQ(a.kind, K::Attr);
  EXPECT_EQ(a.fn, "min");
  EXPECT_FALSE(a.has_fallback);
  ScalarExpr f = parse_scalar_expr("@max|-inf");
  ASSERT_EQ(f.kind, K::Attr);
  EXPECT_TRUE(f.has_fallback);
  EXPECT_EQ(f.fallback, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_scalar_expr("@x | 2.5").fallback, 2.5);
  ScalarExpr m = parse_scalar_expr("(@approximate=tanh ? 1 : 2)");
  ASSERT_EQ(m.kind, K::Select);
  EXPECT_EQ(m.kids[0].kind, K::Attr);
  EXPECT_EQ(m.kids[0].match, "tanh");
  // '==' after a name is still a comparison.
  EXPECT_EQ(parse_scalar_expr("@n == 1").kind, K::Eq);
  EXPECT_EQ(parse_error("@ + 1"), "scalar expression '@ + 1': expected an "
                                  "attribute name after '@' at offset 1");
  EXPECT_EQ(parse_error("@a|x"),
            "scalar expression '@a|x': malformed number at offset 3");
  // Unbound, an attribute reference cannot be evaluated.
  EXPECT_THROW(eval("@min"), Error);
}

// Binding replaces the references by the node's attributes, takes the
// branch of a constant select and drops maximum(x, -inf) / minimum(x, inf).
TEST(ScalarExpr, BindsAttributes) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  auto clamp = [&](Attrs at, double x) {
    ScalarExpr e = bind_scalar_expr(scalar_expr(Op::Clamp), Op::Clamp, at);
    double args[3] = {x, 0, 0};
    return eval_scalar(e, args);
  };
  EXPECT_EQ(clamp({{"min", 0.0}, {"max", 1.0}}, 2), 1);
  EXPECT_EQ(clamp({{"min", 0.0}, {"max", 1.0}}, -2), 0);
  EXPECT_EQ(clamp({{"min", 0.0}, {"max", 1.0}}, 0.25), 0.25);
  EXPECT_EQ(clamp({{"min", int64_t{-1}}}, -5), -1);
  EXPECT_EQ(clamp({{"min", int64_t{-1}}}, 1e300), 1e300);
  EXPECT_EQ(clamp({{"max", int64_t{3}}}, -1e300), -1e300);
  EXPECT_EQ(clamp({{"min", 2.0}, {"max", 1.0}}, 0), 1); // min > max: max
  EXPECT_TRUE(std::isnan(clamp({{"min", 0.0}, {"max", 1.0}}, nan)));
  EXPECT_TRUE(std::isnan(clamp({{"min", 0.0}}, nan)));
  // Only min: no minimum(), no infinity left in the tree.
  ScalarExpr lo =
      bind_scalar_expr(scalar_expr(Op::Clamp), Op::Clamp, {{"min", 0.5}});
  ASSERT_EQ(lo.kind, K::Call);
  EXPECT_EQ(lo.fn, "maximum");
  EXPECT_EQ(lo.kids[1].kind, K::Const);
  EXPECT_EQ(lo.kids[1].value, 0.5);
  // gelu's select is resolved: the tanh form has no erf, the default none.
  auto has_fn = [](const ScalarExpr &e, std::string_view fn) {
    auto rec = [&](auto &self, const ScalarExpr &x) -> bool {
      if (x.kind == K::Call && x.fn == fn)
        return true;
      for (const ScalarExpr &k : x.kids)
        if (self(self, k))
          return true;
      return false;
    };
    return rec(rec, e);
  };
  ScalarExpr t = bind_scalar_expr(scalar_expr(Op::Gelu), Op::Gelu,
                                  {{"approximate", "tanh"}});
  EXPECT_TRUE(has_fn(t, "tanh"));
  EXPECT_FALSE(has_fn(t, "erf"));
  ScalarExpr n = bind_scalar_expr(scalar_expr(Op::Gelu), Op::Gelu, {});
  EXPECT_TRUE(has_fn(n, "erf"));
  EXPECT_FALSE(has_fn(n, "tanh"));
  EXPECT_TRUE(scalar_expr_reads_attrs(Op::Gelu));
  EXPECT_TRUE(scalar_expr_reads_attrs(Op::Clamp));
  EXPECT_FALSE(scalar_expr_reads_attrs(Op::Relu));
  EXPECT_EQ(
      [] {
        try {
          bind_scalar_expr(parse_scalar_expr("@min"), Op::Clamp, {});
        } catch (const Error &e) {
          return std::string(e.what());
        }
        return std::string("<no error>");
      }(),
      "clamp needs attribute 'min'");
}

// gelu against torch 1.13 (torch.nn.functional.gelu in f64, both forms) and
// erf against torch.erf.
TEST(ScalarExpr, GeluAndErfMatchTorch) {
  const double x[] = {-3, -1, -0.25, 0, 0.5, 2, 4};
  const double none[] = {
      -0.00404969409489031, -0.15865525393145702, -0.10032341857926907, 0.0,
      0.34573123063700656,  1.9544997361036416,   3.9998733150326675};
  const double tanh_form[] = {
      -0.0036373920817729943, -0.15880800939172324, -0.100324649298315, 0.0,
      0.34571400982514394,    1.954597694087775,    3.9999297540518075};
  const double erf[] = {
      -0.9999779095030014, -0.8427007929497149, -0.27632639016823696, 0.0,
      0.5204998778130465,  0.9953222650189527,  0.9999999845827421};
  ScalarExpr en = bind_scalar_expr(scalar_expr(Op::Gelu), Op::Gelu, {});
  ScalarExpr et = bind_scalar_expr(scalar_expr(Op::Gelu), Op::Gelu,
                                   {{"approximate", "tanh"}});
  for (int i = 0; i < 7; ++i) {
    double a[3] = {x[i], 0, 0};
    EXPECT_NEAR(eval_scalar(en, a), none[i], 1e-15) << x[i];
    EXPECT_NEAR(eval_scalar(et, a), tanh_form[i], 1e-15) << x[i];
    EXPECT_NEAR(eval_scalar(scalar_expr(Op::Erf), a), erf[i], 1e-15) << x[i];
  }
}

// scalar_expr(node) binds a node's attributes.
TEST(ScalarExpr, NodeExpressionIsBound) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {2}});
  Value *y = b.op(Op::Clamp, {x}, {{"max", 6.0}});
  ScalarExpr e = scalar_expr(*y->def);
  ASSERT_EQ(e.kind, K::Call);
  EXPECT_EQ(e.fn, "minimum");
  EXPECT_EQ(e.kids[1].value, 6);
}

} // namespace
} // namespace kiln
