// The scalar expression language of elementwise ops. Each elementwise entry
// of the op table (ir/ops.def) gives its meaning as a C-like expression over
// its operands $0, $1, $2:
//
//   expr := cond ['?' expr ':' expr]
//   cond := sum [('==' | '!=' | '<' | '<=' | '>' | '>=') sum]
//   sum  := prod (('+' | '-') prod)*
//   prod := unary (('*' | '/') unary)*
//   unary:= '-' unary | NUMBER | '$' DIGIT | FN '(' expr (',' expr)* ')'
//           | '(' expr ')'
//   FN   := exp | log | sqrt | tanh | fabs | maximum | minimum | pow
//
// maximum/minimum are IEEE 754-2019's: a NaN operand gives NaN (as torch's
// maximum, minimum, relu and amax do), unlike C's fmax/fmin.
//
// The reference interpreter evaluates the tree in double; the CUDA C and LLVM
// emitters walk the same tree, so the three agree by construction.
#pragma once

#include "ir/op.h"

#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct ScalarExpr {
  enum class Kind {
    Arg,   // $index
    Const, // value
    Neg,
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Select, // kids: cond, then, else
    Call,   // fn(kids...)
  };
  Kind kind = Kind::Const;
  int arg = 0;
  double value = 0;
  std::string fn;
  std::vector<ScalarExpr> kids;

  bool is_compare() const { return kind >= Kind::Eq && kind <= Kind::Ge; }
};

// Parses an expression; throws kiln::Error on a syntax error.
ScalarExpr parse_scalar_expr(std::string_view text);
// The parsed expression of an elementwise op (parsed once, cached).
const ScalarExpr &scalar_expr(Op op);
// Evaluates in double; comparisons give 1 or 0, a select takes "then" when
// its condition is non-zero.
double eval_scalar(const ScalarExpr &e, const double *args);

// IEEE 754-2019 maximum and minimum: NaN when either operand is NaN.
double nan_max(double a, double b);
double nan_min(double a, double b);

} // namespace kiln
