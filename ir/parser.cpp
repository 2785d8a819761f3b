// A recursive-descent parser with one token of lookahead. Each graph (the
// top one and every fused body) has its own scope of value names, as the
// printer numbers each graph separately. Names are kept exactly as written:
// all-digit names are renumbered by the printer in definition order, which
// is how the printed text came to have them, so the round trip is exact.
#include "ir/parser.h"

#include "ir/builder.h"
#include "ir/error.h"
#include "ir/lexer.h"
#include "ir/verifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <unordered_map>

namespace kiln {

namespace {

// Fused bodies nest; a bound keeps hostile input from exhausting the stack
// (here and in the recursive printer and verifier).
constexpr int kMaxNesting = 32;
// Largest element count a type may have, so that byte sizes fit in int64.
constexpr int64_t kMaxElements = int64_t{1} << 56;

std::string join_types(const std::vector<Type> &types) {
  std::vector<std::string> s;
  for (const Type &t : types)
    s.push_back(t.str());
  return fmt::format("{}", fmt::join(s, ", "));
}

class Parser {
public:
  Parser(std::string_view text, std::string_view file)
      : lex_(text, file), file_(file) {
    advance();
  }

  std::unique_ptr<Graph> top() {
    if (tok_.kind == Tok::eof)
      error(tok_.loc, "empty file: expected 'graph'");
    Loc at = tok_.loc;
    auto g = graph(0);
    if (tok_.kind != Tok::eof)
      error(tok_.loc,
            fmt::format("unexpected {} after the graph", describe(tok_)));
    try {
      verify(*g);
    } catch (const Error &e) {
      error(at, fmt::format("in graph @{}: {}", g->name, e.what()));
    }
    return g;
  }

private:
  struct Def {
    Value *value;
    Loc loc;
  };
  using Scope = std::unordered_map<std::string, Def>;

  [[noreturn]] void error(Loc loc, const std::string &msg) const {
    fail_at(file_, loc, msg);
  }

  void advance() { tok_ = lex_.next(); }

  bool is_keyword(std::string_view word) const {
    return tok_.kind == Tok::ident && tok_.text == word;
  }

  Token expect(Tok kind, std::string_view what) {
    if (tok_.kind != kind)
      error(tok_.loc,
            fmt::format("expected {}, found {}", what, describe(tok_)));
    Token t = tok_;
    advance();
    return t;
  }

  void expect_keyword(std::string_view word) {
    if (!is_keyword(word))
      error(tok_.loc,
            fmt::format("expected '{}', found {}", word, describe(tok_)));
    advance();
  }

  std::unique_ptr<Graph> graph(int depth) {
    if (depth > kMaxNesting)
      error(tok_.loc, fmt::format("fused bodies nested deeper than {} levels",
                                  kMaxNesting));
    expect_keyword("graph");
    Token name = expect(Tok::global, "a graph name '@name'");
    auto g = std::make_unique<Graph>(std::string(name.text));
    Scope scope;
    expect(Tok::lparen, "'(' after the graph name");
    if (tok_.kind != Tok::rparen) {
      do
        input(*g, scope);
      while (accept(Tok::comma));
    }
    expect(Tok::rparen, "',' or ')' after a graph input");
    expect(Tok::lbrace, "'{' to open the graph");
    while (!is_keyword("return")) {
      if (tok_.kind != Tok::value)
        error(tok_.loc, fmt::format("expected a node '%name = op(...)' or "
                                    "'return', found {}",
                                    describe(tok_)));
      node(*g, scope, depth);
    }
    advance();
    results(*g, scope);
    expect(Tok::rbrace, "'}' to close the graph");
    return g;
  }

  bool accept(Tok kind) {
    if (tok_.kind != kind)
      return false;
    advance();
    return true;
  }

  void input(Graph &g, Scope &scope) {
    InputKind kind = InputKind::data;
    if (tok_.kind == Tok::ident) {
      if (tok_.text == "param")
        kind = InputKind::param;
      else if (tok_.text == "state")
        kind = InputKind::state;
      else if (tok_.text != "data")
        error(tok_.loc, fmt::format("unknown input kind '{}' (expected "
                                    "'param', 'state' or none)",
                                    tok_.text));
      advance();
    }
    Token name = expect(Tok::value, "a graph input '%name'");
    std::string n(name.text);
    if (auto it = scope.find(n); it != scope.end())
      error(name.loc, fmt::format("duplicate graph input %{} (first at {}:{})",
                                  n, it->second.loc.line, it->second.loc.col));
    expect(Tok::colon, "':' and a type after the input name");
    Type t = type();
    scope[n] = {g.add_input(n, std::move(t), kind), name.loc};
    if (is_keyword("in")) {
      Token at = tok_;
      advance();
      expect(Tok::lbracket, "'[' to open the input's range");
      Token lo = expect(Tok::integer, "the range's lower bound");
      expect(Tok::comma, "',' in the input's range");
      Token hi = expect(Tok::integer, "the range's upper bound");
      expect(Tok::rparen, "')' to close the half-open range [lo, hi)");
      try {
        g.set_input_range(static_cast<int>(g.inputs().size()) - 1,
                          {integer(lo), integer(hi)});
      } catch (const Error &e) {
        error(at.loc, e.what());
      }
    }
  }

  Type type() {
    if (tok_.kind != Tok::ident)
      error(tok_.loc, fmt::format("expected a type such as f32[2,3], found {}",
                                  describe(tok_)));
    auto dtype = parse_dtype(tok_.text);
    if (!dtype)
      error(tok_.loc, fmt::format("unknown dtype '{}' (expected f32, f64, "
                                  "i32, i64 or bool)",
                                  tok_.text));
    advance();
    Type t{*dtype, {}};
    expect(Tok::lbracket, "'[' and a shape after the dtype");
    if (accept(Tok::rbracket))
      return t;
    int64_t elements = 1;
    while (true) {
      if (tok_.kind != Tok::integer)
        error(tok_.loc, fmt::format("bad shape: expected a dimension, found {}",
                                    describe(tok_)));
      int64_t d = integer(tok_);
      if (d < 0)
        error(tok_.loc, fmt::format("bad shape: dimension {} is negative", d));
      // Zero dims count as 1 (as in numel()), so strides fit as well.
      if (d > 0 && elements > kMaxElements / d)
        error(tok_.loc, "bad shape: too many elements");
      elements *= std::max<int64_t>(d, 1);
      t.shape.push_back(d);
      advance();
      if (accept(Tok::rbracket))
        return t;
      if (!accept(Tok::comma))
        error(tok_.loc, fmt::format("bad shape: expected ',' or ']', found {}",
                                    describe(tok_)));
    }
  }

  int64_t integer(const Token &t) const {
    int64_t v = 0;
    auto [end, ec] =
        std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
    if (ec != std::errc() || end != t.text.data() + t.text.size())
      error(t.loc, fmt::format("integer {} is out of range", t.text));
    return v;
  }

  double floating(const Token &t) const {
    std::string_view s = t.text;
    bool negative = !s.empty() && s[0] == '-';
    std::string_view body = negative ? s.substr(1) : s;
    double v = 0;
    if (body == "inf") {
      v = std::numeric_limits<double>::infinity();
    } else if (body == "nan") {
      v = std::numeric_limits<double>::quiet_NaN();
    } else {
      auto [end, ec] =
          std::from_chars(body.data(), body.data() + body.size(), v);
      if (ec != std::errc() || end != body.data() + body.size())
        error(t.loc, fmt::format("number {} is out of range", s));
    }
    return negative ? -v : v;
  }

  AttrValue attr_value() {
    Token t = tok_;
    switch (t.kind) {
    case Tok::integer:
      advance();
      return integer(t);
    case Tok::floating:
      advance();
      return floating(t);
    case Tok::string:
      advance();
      return std::string(t.text);
    case Tok::ident:
      if (t.text == "true" || t.text == "false") {
        advance();
        return t.text == "true";
      }
      break;
    case Tok::lbracket: {
      advance();
      std::vector<int64_t> list;
      if (accept(Tok::rbracket))
        return list;
      while (true) {
        if (tok_.kind != Tok::integer)
          error(tok_.loc, fmt::format("bad attribute: list elements must be "
                                      "integers, found {}",
                                      describe(tok_)));
        list.push_back(integer(tok_));
        advance();
        if (accept(Tok::rbracket))
          return list;
        if (!accept(Tok::comma))
          error(tok_.loc, fmt::format("bad attribute: expected ',' or ']' in "
                                      "the list, found {}",
                                      describe(tok_)));
      }
    }
    default:
      break;
    }
    error(t.loc, fmt::format("bad attribute value {} (expected a number, "
                             "[integers], a string, true or false)",
                             describe(t)));
  }

  // The attributes, and where each name was written (for schema errors).
  Attrs attrs(std::unordered_map<std::string, Loc> &locs) {
    Attrs a;
    if (!accept(Tok::lbrace))
      return a;
    if (accept(Tok::rbrace))
      return a;
    do {
      Token name = expect(Tok::ident, "an attribute name");
      std::string key(name.text);
      if (a.has(key))
        error(name.loc, fmt::format("duplicate attribute '{}'", key));
      expect(Tok::equal, "'=' after the attribute name");
      a.set(key, attr_value());
      locs.emplace(key, name.loc);
    } while (accept(Tok::comma));
    expect(Tok::rbrace, "',' or '}' after an attribute");
    return a;
  }

  Value *use(const Scope &scope) {
    Token t = expect(Tok::value, "a value '%name'");
    auto it = scope.find(std::string(t.text));
    if (it == scope.end())
      error(t.loc, fmt::format("undefined value %{}", t.text));
    return it->second.value;
  }

  void node(Graph &g, Scope &scope, int depth) {
    std::vector<Token> names;
    do {
      Token t = expect(Tok::value, "a result name '%name'");
      if (auto it = scope.find(std::string(t.text)); it != scope.end())
        error(t.loc,
              fmt::format("redefinition of value %{} (first defined "
                          "at {}:{})",
                          t.text, it->second.loc.line, it->second.loc.col));
      for (const Token &prev : names)
        if (prev.text == t.text)
          error(t.loc, fmt::format("redefinition of value %{}", t.text));
      names.push_back(t);
    } while (accept(Tok::comma));
    expect(Tok::equal, "'=' after the result names");
    Token op_tok = expect(Tok::ident, "an op name");
    auto op = op_by_name(op_tok.text);
    if (!op)
      error(op_tok.loc, fmt::format("unknown op '{}'", op_tok.text));
    const OpInfo &info = op_info(*op);
    expect(Tok::lparen, "'(' after the op name");
    std::vector<Value *> operands;
    if (tok_.kind != Tok::rparen) {
      do
        operands.push_back(use(scope));
      while (accept(Tok::comma));
    }
    expect(Tok::rparen, "',' or ')' after an operand");
    if (info.arity >= 0 && static_cast<int>(operands.size()) != info.arity)
      error(op_tok.loc,
            fmt::format("{} expects {} operand{}, got {}", info.name,
                        info.arity, info.arity == 1 ? "" : "s",
                        operands.size()));
    std::unordered_map<std::string, Loc> attr_locs;
    Attrs a = attrs(attr_locs);
    expect(Tok::colon, "':' and the result types");
    std::vector<Type> types;
    std::vector<Loc> type_locs;
    do {
      type_locs.push_back(tok_.loc);
      types.push_back(type());
    } while (accept(Tok::comma));
    if (types.size() != names.size())
      error(type_locs[0],
            fmt::format("{} result{} named but {} type{} given", names.size(),
                        names.size() == 1 ? "" : "s", types.size(),
                        types.size() == 1 ? "" : "s"));
    std::unique_ptr<Graph> body;
    if (is_keyword("graph")) {
      if (*op != Op::Fused)
        error(tok_.loc,
              fmt::format("only fused nodes have a body, not {}", info.name));
      Loc body_loc = tok_.loc;
      body = graph(depth + 1);
      check_body(*body, body_loc, operands, types);
    } else if (*op == Op::Fused) {
      error(tok_.loc, fmt::format("expected the fused node's body 'graph "
                                  "@name(...) {{...}}', found {}",
                                  describe(tok_)));
    }
    // The op's attribute schema (ir/ops.def), at the attribute's name; a
    // missing one at the op. (The Builder and the verifier check the same
    // for built graphs, without the attribute's position.)
    if (auto p = find_attr_problem(info, a)) {
      auto it = attr_locs.find(p->attr);
      error(it != attr_locs.end() ? it->second : op_tok.loc, p->message);
    }
    Builder b(g);
    Node *n = nullptr;
    try {
      n = b.create(*op, operands, std::move(a), types, std::move(body));
    } catch (const Error &e) {
      std::string msg = e.what();
      if (!msg.starts_with(info.name))
        msg = fmt::format("{}: {}", info.name, msg);
      error(op_tok.loc, msg);
    }
    n->loc.file = std::string(file_);
    n->loc.line = op_tok.loc.line;
    n->loc.col = op_tok.loc.col;
    if (n->results.size() != types.size())
      error(names[0].loc,
            fmt::format("{} has {} result{}, {} named", info.name,
                        n->results.size(), n->results.size() == 1 ? "" : "s",
                        types.size()));
    for (size_t i = 0; i < types.size(); ++i)
      if (n->results[i]->type != types[i])
        error(type_locs[i],
              fmt::format("type mismatch: {} declared {} but infers {}",
                          info.name, types[i].str(),
                          n->results[i]->type.str()));
    for (size_t i = 0; i < names.size(); ++i) {
      n->results[i]->name = std::string(names[i].text);
      scope[n->results[i]->name] = {n->results[i], names[i].loc};
    }
  }

  // A body's inputs are the node's operands and its outputs the results.
  void check_body(const Graph &body, Loc at,
                  const std::vector<Value *> &operands,
                  const std::vector<Type> &types) const {
    std::vector<Type> in, ops, out;
    for (auto &i : body.inputs())
      in.push_back(i.value->type);
    for (Value *v : operands)
      ops.push_back(v->type);
    for (auto &o : body.outputs)
      out.push_back(o.value->type);
    if (in != ops)
      error(at, fmt::format("fused body takes ({}) but the operands are ({})",
                            join_types(in), join_types(ops)));
    if (out != types)
      error(at, fmt::format("fused body returns ({}) but the results are ({})",
                            join_types(out), join_types(types)));
  }

  void results(Graph &g, const Scope &scope) {
    if (tok_.kind != Tok::value)
      return;
    do {
      Value *v = use(scope);
      int alias = -1;
      if (tok_.kind == Tok::arrow) {
        advance();
        Token t = tok_;
        Value *target = use(scope);
        alias = g.input_index(target);
        if (alias < 0)
          error(t.loc, fmt::format("in-place target %{} is not a graph input",
                                   t.text));
        const GraphInput &in = g.inputs()[alias];
        if (in.kind == InputKind::data)
          error(t.loc, fmt::format("in-place target %{} is a data input; "
                                   "only param and state inputs may be "
                                   "updated",
                                   t.text));
        if (in.value->type != v->type)
          error(t.loc,
                fmt::format("in-place update of %{} ({}) with a {}", t.text,
                            in.value->type.str(), v->type.str()));
        for (const GraphOutput &o : g.outputs)
          if (o.alias == alias)
            error(t.loc, fmt::format("%{} is updated in place twice", t.text));
      }
      g.add_output(v, alias);
    } while (accept(Tok::comma));
  }

  Lexer lex_;
  std::string_view file_;
  Token tok_;
};

} // namespace

std::unique_ptr<Graph> parse(std::string_view text, std::string_view filename) {
  return Parser(text, filename).top();
}

} // namespace kiln
