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
      // The token: digits, '.', and an exponent with an optional sign.
      size_t start = i_;
      while (i_ < s_.size() &&
             (std::isdigit(static_cast<unsigned char>(s_[i_])) ||
              s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E' ||
              ((s_[i_] == '-' || s_[i_] == '+') && i_ > start &&
               (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E'))))
        ++i_;
      ScalarExpr e;
      e.kind = K::Const;
      const char *first = s_.data() + start, *last = s_.data() + i_;
      auto [ptr, ec] = std::from_chars(first, last, e.value);
      if (ec != std::errc() || ptr != last) {
        i_ = start;
        error("malformed number");
      }
      return e;
    }
    size_t start = i_;
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_])))
      ++i_;
    if (start == i_)
      error("expected an operand");
    ScalarExpr e;
    e.kind = K::Call;
    e.fn = std::string(s_.substr(start, i_ - start));
    static const std::array<std::pair<std::string_view, size_t>, 8> fns = {{
        {"exp", 1},
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
    if (e.fn == "fabs")
      return std::fabs(k(0));
    if (e.fn == "maximum")
      return nan_max(k(0), k(1));
    if (e.fn == "minimum")
      return nan_min(k(0), k(1));
    if (e.fn == "pow")
      return std::pow(k(0), k(1));
    break;
  }
  fail("bad scalar expression node");
}

} // namespace kiln
