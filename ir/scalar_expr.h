// The scalar expression language of elementwise ops. Each elementwise entry
// of the op table (ir/ops.def) gives its meaning as a C-like expression over
// its operands $0, $1, $2:
//
//   expr := cond ['?' expr ':' expr]
//   cond := sum [('==' | '!=' | '<' | '<=' | '>' | '>=') sum]
//   sum  := prod (('+' | '-') prod)*
//   prod := unary (('*' | '/') unary)*
//   unary:= '-' unary | NUMBER | '$' DIGIT | FN '(' expr (',' expr)* ')'
//           | '(' expr ')' | attr
//   attr := '@' NAME ['|' ['-'] (NUMBER | 'inf')] | '@' NAME '=' WORD
//   FN   := exp | log | sqrt | tanh | erf | fabs | maximum | minimum | pow
//
// An attribute reference reads the node's attribute NAME (its schema
// default when absent; the number after '|' when it is absent and has no
// default); '@NAME=WORD' is 1 when the string attribute NAME equals WORD,
// else 0. Expressions that read attributes are bound to a node's attributes
// before use (scalar_expr(const Node &)): the references become constants,
// a select on a constant condition becomes its branch, and maximum(x, -inf)
// and minimum(x, inf) become x (exact, NaN included), so the emitters see
// neither attributes nor infinities that the op never had.
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
    Attr,   // @fn (the attribute's name): `match`, `fallback`
  };
  Kind kind = Kind::Const;
  int arg = 0;
  double value = 0;
  std::string fn;
  std::vector<ScalarExpr> kids;
  // Attr: the word of '@name=word' (empty for a plain reference), and the
  // value after '|' (has_fallback).
  std::string match;
  bool has_fallback = false;
  double fallback = 0;

  bool is_compare() const { return kind >= Kind::Eq && kind <= Kind::Ge; }
};

// Parses an expression; throws kiln::Error on a syntax error.
ScalarExpr parse_scalar_expr(std::string_view text);
// The parsed expression of an elementwise op (parsed once, cached). It may
// hold attribute references: evaluating one throws kiln::Error, so code that
// has the node uses scalar_expr(node).
const ScalarExpr &scalar_expr(Op op);
// Whether op's expression reads attributes.
bool scalar_expr_reads_attrs(Op op);
// `e` with its attribute references replaced by op's attributes `attrs`
// (see above); throws kiln::Error naming the op and attribute when one is
// absent with neither a default nor a fallback, or of the wrong kind.
ScalarExpr bind_scalar_expr(const ScalarExpr &e, Op op, const Attrs &attrs);
// The expression of elementwise node n, bound to its attributes.
ScalarExpr scalar_expr(const Node &n);
// Evaluates in double; comparisons give 1 or 0, a select takes "then" when
// its condition is non-zero.
double eval_scalar(const ScalarExpr &e, const double *args);

// IEEE 754-2019 maximum and minimum: NaN when either operand is NaN.
double nan_max(double a, double b);
double nan_min(double a, double b);

} // namespace kiln
