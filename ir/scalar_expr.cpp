#include "ir/scalar_expr.h"

#include "ir/error.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>

#include "ir/graph.h"

namespace kiln {

namespace {

using K = ScalarExpr::Kind;

class ExprParser {
public:
  explicit ExprParser(std::string_view s) : s_(s) {}

  ScalarExpr parse() {
    ScalarExpr e = expr();
    skip();
    if (i_ != s_.size())
      error("unexpected text");
    return e;
  }

private:
  [[noreturn]] void error(const char *what) {
    fail("scalar expression '{}': {} at offset {}", s_, what, i_);
  }
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_])))
      ++i_;
  }
  bool eat(std::string_view tok) {
    skip();
    if (s_.substr(i_, tok.size()) == tok) {
      i_ += tok.size();
      return true;
    }
    return false;
  }
  static ScalarExpr make(K k, std::vector<ScalarExpr> kids) {
    ScalarExpr e;
    e.kind = k;
    e.kids = std::move(kids);
    return e;
  }

  ScalarExpr expr() {
    ScalarExpr c = cond();
    if (!eat("?"))
      return c;
    ScalarExpr t = expr();
    if (!eat(":"))
      error("expected ':'");
    ScalarExpr f = expr();
    return make(K::Select, {std::move(c), std::move(t), std::move(f)});
  }
  ScalarExpr cond() {
    ScalarExpr a = sum();
    static const std::pair<std::string_view, K> ops[] = {
        {"==", K::Eq}, {"!=", K::Ne}, {"<=", K::Le},
        {">=", K::Ge}, {"<", K::Lt},  {">", K::Gt}};
    for (auto &[tok, k] : ops)
      if (eat(tok))
        return make(k, {std::move(a), sum()});
    return a;
  }
  ScalarExpr sum() {
    ScalarExpr a = prod();
    for (;;) {
      if (eat("+"))
        a = make(K::Add, {std::move(a), prod()});
      else if (eat("-"))
        a = make(K::Sub, {std::move(a), prod()});
      else
        return a;
    }
  }
  ScalarExpr prod() {
    ScalarExpr a = unary();
    for (;;) {
      if (eat("*"))
        a = make(K::Mul, {std::move(a), unary()});
      else if (eat("/"))
        a = make(K::Div, {std::move(a), unary()});
      else
        return a;
    }
  }
  ScalarExpr unary() {
    if (eat("-"))
      return make(K::Neg, {unary()});
    if (eat("(")) {
      ScalarExpr e = expr();
      if (!eat(")"))
        error("expected ')'");
      return e;
    }
    skip();
    if (i_ < s_.size() && s_[i_] == '@')
      return attr();
    if (i_ < s_.size() && s_[i_] == '$') {
      ++i_;
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_])))
        error("expected an operand number after '$'");
      ScalarExpr e;
      e.kind = K::Arg;
      e.arg = s_[i_++] - '0';
      return e;
    }
    if (i_ < s_.size() &&
        (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.')) {
      ScalarExpr e;
      e.kind = K::Const;
      e.value = number();
      return e;
    }
    return call();
  }

  // A NUMBER token at i_.
  double number() {
    // The token: digits, '.', and an exponent with an optional sign.
    size_t start = i_;
    while (i_ < s_.size() &&
           (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' ||
            s_[i_] == 'e' || s_[i_] == 'E' ||
            ((s_[i_] == '-' || s_[i_] == '+') && i_ > start &&
             (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E'))))
      ++i_;
    double value = 0;
    const char *first = s_.data() + start, *last = s_.data() + i_;
    auto [ptr, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || ptr != last || start == i_) {
      i_ = start;
      error("malformed number");
    }
    return value;
  }

  size_t name_end(size_t from) const {
    size_t j = from;
    while (j < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '_'))
      ++j;
    return j;
  }

  // '@' NAME ['|' ['-'] (NUMBER | 'inf')] | '@' NAME '=' WORD, at i_.
  ScalarExpr attr() {
    ++i_; // '@'
    size_t end = name_end(i_);
    if (end == i_)
      error("expected an attribute name after '@'");
    ScalarExpr e;
    e.kind = K::Attr;
    e.fn = std::string(s_.substr(i_, end - i_));
    i_ = end;
    if (i_ + 1 < s_.size() && s_[i_] == '=' && s_[i_ + 1] != '=') {
      ++i_;
      end = name_end(i_);
      if (end == i_)
        error("expected a word after '='");
      e.match = std::string(s_.substr(i_, end - i_));
      i_ = end;
      return e;
    }
    if (eat("|")) {
      bool negative = eat("-");
      skip();
      double v;
      if (s_.substr(i_, 3) == "inf") {
        i_ += 3;
        v = std::numeric_limits<double>::infinity();
      } else {
        v = number();
      }
      e.has_fallback = true;
      e.fallback = negative ? -v : v;
    }
    return e;
  }

  ScalarExpr call() {
    size_t start = i_;
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_])))
      ++i_;
    if (start == i_)
      error("expected an operand");
    ScalarExpr e;
    e.kind = K::Call;
    e.fn = std::string(s_.substr(start, i_ - start));
    static const std::array<std::pair<std::string_view, size_t>, 9> fns = {{
        {"exp", 1},
        {"erf", 1},
        {"log", 1},
        {"sqrt", 1},
        {"tanh", 1},
        {"fabs", 1},
        {"maximum", 2},
        {"minimum", 2},
        {"pow", 2},
    }};
    auto fn = std::find_if(fns.begin(), fns.end(),
                           [&](const auto &f) { return f.first == e.fn; });
    if (fn == fns.end())
      error("unknown function");
    if (!eat("("))
      error("expected '('");
    do
      e.kids.push_back(expr());
    while (eat(","));
    if (!eat(")"))
      error("expected ')'");
    // The evaluator and the emitters index kids by the function's arity.
    if (e.kids.size() != fn->second)
      fail("scalar expression '{}': {} takes {} argument{} at offset {}", s_,
           e.fn, fn->second, fn->second == 1 ? "" : "s", i_);
    return e;
  }

  std::string_view s_;
  size_t i_ = 0;
};

} // namespace

ScalarExpr parse_scalar_expr(std::string_view text) {
  return ExprParser(text).parse();
}

const ScalarExpr &scalar_expr(Op op) {
  static std::once_flag once;
  static std::unique_ptr<ScalarExpr[]> table;
  std::call_once(once, [] {
    table = std::make_unique<ScalarExpr[]>(kNumOps);
    for (int i = 0; i < kNumOps; ++i) {
      const OpInfo &info = op_info(static_cast<Op>(i));
      if (!info.scalar.empty())
        table[i] = parse_scalar_expr(info.scalar);
    }
  });
  return table[static_cast<size_t>(op)];
}

namespace {

bool reads_attrs(const ScalarExpr &e) {
  if (e.kind == K::Attr)
    return true;
  return std::any_of(e.kids.begin(), e.kids.end(), reads_attrs);
}

bool is_const(const ScalarExpr &e, double v) {
  return e.kind == K::Const && e.value == v;
}

// The value of attribute reference `e` of op.
double attr_value(const ScalarExpr &e, Op op, const Attrs &attrs) {
  const OpInfo &info = op_info(op);
  const AttrSpec *spec = info.attr(e.fn);
  if (!spec)
    fail("{}'s scalar expression reads attribute '{}', which ir/ops.def "
         "does not declare",
         info.name, e.fn);
  const AttrValue *v = attrs.find(e.fn);
  if (!e.match.empty()) {
    if (spec->type != AttrType::Str)
      fail("{}'s scalar expression compares attribute '{}', which is not a "
           "string",
           info.name, e.fn);
    if (v && !std::holds_alternative<std::string>(*v))
      fail("{} attribute '{}' must be a string, got {}", info.name, e.fn,
           attr_str(*v));
    std::string_view s =
        v ? std::string_view(std::get<std::string>(*v)) : spec->str_default;
    return s == e.match ? 1.0 : 0.0;
  }
  if (v) {
    if (const int64_t *i = std::get_if<int64_t>(v))
      return static_cast<double>(*i);
    if (const double *d = std::get_if<double>(v))
      return *d;
    if (const bool *b = std::get_if<bool>(v))
      return *b ? 1.0 : 0.0;
    fail("{} attribute '{}' must be a number, got {}", info.name, e.fn,
         attr_str(*v));
  }
  if (spec->presence == AttrSpec::Defaulted && spec->type == AttrType::Int)
    return static_cast<double>(spec->int_default);
  if (spec->presence == AttrSpec::Defaulted && spec->type == AttrType::Bool)
    return spec->bool_default ? 1.0 : 0.0;
  if (e.has_fallback)
    return e.fallback;
  fail("{} needs attribute '{}'", info.name, e.fn);
}

} // namespace

bool scalar_expr_reads_attrs(Op op) {
  static std::once_flag once;
  static std::unique_ptr<bool[]> table;
  std::call_once(once, [] {
    table = std::make_unique<bool[]>(kNumOps);
    for (int i = 0; i < kNumOps; ++i)
      table[i] = reads_attrs(scalar_expr(static_cast<Op>(i)));
  });
  return table[static_cast<size_t>(op)];
}

ScalarExpr bind_scalar_expr(const ScalarExpr &e, Op op, const Attrs &attrs) {
  if (e.kind == K::Attr) {
    ScalarExpr c;
    c.kind = K::Const;
    c.value = attr_value(e, op, attrs);
    return c;
  }
  ScalarExpr r = e;
  for (ScalarExpr &k : r.kids)
    k = bind_scalar_expr(k, op, attrs);
  if (r.kind == K::Select && r.kids[0].kind == K::Const)
    return r.kids[0].value != 0 ? std::move(r.kids[1]) : std::move(r.kids[2]);
  // maximum(x, -inf) and minimum(x, inf) are x for every x, NaN included.
  double inf = std::numeric_limits<double>::infinity();
  if (r.kind == K::Call && (r.fn == "maximum" || r.fn == "minimum")) {
    double none = r.fn == "maximum" ? -inf : inf;
    if (is_const(r.kids[1], none))
      return std::move(r.kids[0]);
    if (is_const(r.kids[0], none))
      return std::move(r.kids[1]);
  }
  return r;
}

ScalarExpr scalar_expr(const Node &n) {
  if (!scalar_expr_reads_attrs(n.op))
    return scalar_expr(n.op);
  return bind_scalar_expr(scalar_expr(n.op), n.op, n.attrs);
}

double nan_max(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::numeric_limits<double>::quiet_NaN();
  return std::fmax(a, b);
}

double nan_min(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::numeric_limits<double>::quiet_NaN();
  return std::fmin(a, b);
}

double eval_scalar(const ScalarExpr &e, const double *a) {
  auto k = [&](int i) { return eval_scalar(e.kids[i], a); };
  switch (e.kind) {
  case K::Arg:
    return a[e.arg];
  case K::Const:
    return e.value;
  case K::Neg:
    return -k(0);
  case K::Add:
    return k(0) + k(1);
  case K::Sub:
    return k(0) - k(1);
  case K::Mul:
    return k(0) * k(1);
  case K::Div:
    return k(0) / k(1);
  case K::Eq:
    return k(0) == k(1);
  case K::Ne:
    return k(0) != k(1);
  case K::Lt:
    return k(0) < k(1);
  case K::Le:
    return k(0) <= k(1);
  case K::Gt:
    return k(0) > k(1);
  case K::Ge:
    return k(0) >= k(1);
  case K::Select:
    return k(0) != 0 ? k(1) : k(2);
  case K::Call:
    if (e.fn == "exp")
      return std::exp(k(0));
    if (e.fn == "log")
      return std::log(k(0));
    if (e.fn == "sqrt")
      return std::sqrt(k(0));
    if (e.fn == "tanh")
      return std::tanh(k(0));
    if (e.fn == "erf")
      return std::erf(k(0));
    if (e.fn == "fabs")
      return std::fabs(k(0));
    if (e.fn == "maximum")
      return nan_max(k(0), k(1));
    if (e.fn == "minimum")
      return nan_min(k(0), k(1));
    if (e.fn == "pow")
      return std::pow(k(0), k(1));
    break;
  case K::Attr:
    fail("scalar expression reads attribute '{}': bind it to the node's "
         "attributes first (scalar_expr(node))",
         e.fn);
  }
  fail("bad scalar expression node");
}

} // namespace kiln
