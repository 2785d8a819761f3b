// The .kir parser: round trips of builder-made graphs (print(parse(print(g)))
// == print(g)), the structure it rebuilds, every error kind with its
// line:column, and a brief mutation fuzz that must never crash.
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace kiln {
namespace {

std::string roundtrip(const Graph &g) {
  std::string text = print(g);
  auto parsed = parse(text, "rt.kir");
  return print(*parsed);
}

std::unique_ptr<Graph> mlp() {
  auto g = std::make_unique<Graph>("mlp");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, {8, 4}});
  Value *y = g->add_input("y", {DType::i32, {8}});
  Value *w = g->add_input("fc1.weight", {DType::f32, {4, 3}}, InputKind::param);
  Value *bias = g->add_input("fc1.bias", {DType::f32, {3}}, InputKind::param);
  Value *h = b.relu(b.add(b.matmul(x, w), bias));
  Value *logp = b.log_softmax(h);
  Value *nll = b.neg(b.mean(b.sum(b.mul(logp, b.one_hot(y, 3)), {1})));
  nll->name = "loss";
  g->add_output(nll);
  return g;
}

TEST(Parser, RoundTripsAnMlp) {
  auto g = mlp();
  std::string text = print(*g);
  EXPECT_EQ(roundtrip(*g), text);
  auto p = parse(text, "mlp.kir");
  ASSERT_EQ(p->inputs().size(), 4u);
  EXPECT_EQ(p->inputs()[2].kind, InputKind::param);
  EXPECT_EQ(p->inputs()[2].value->name, "fc1.weight");
  EXPECT_EQ(p->nodes().size(), g->nodes().size());
  ASSERT_EQ(p->outputs.size(), 1u);
  EXPECT_EQ(p->outputs[0].value->name, "loss");
  EXPECT_EQ(p->outputs[0].value->type, (Type{DType::f32, {}}));
  for (size_t i = 0; i < g->nodes().size(); ++i) {
    EXPECT_EQ(p->nodes()[i]->op, g->nodes()[i]->op);
    EXPECT_EQ(p->nodes()[i]->attrs, g->nodes()[i]->attrs);
  }
}

// A fused node with two results whose body has its own numbering, and
// outputs that update a param and a state input in place.
std::unique_ptr<Graph> sgd_momentum() {
  auto g = std::make_unique<Graph>("step");
  Value *grad = g->add_input("g", {DType::f32, {5}});
  Value *w = g->add_input("w", {DType::f32, {5}}, InputKind::param);
  Value *m = g->add_input("m", {DType::f32, {5}}, InputKind::state);
  auto body = std::make_unique<Graph>("fused_0");
  {
    Builder bb(*body);
    Value *bg = body->add_input("g", grad->type);
    Value *bw = body->add_input("w", w->type);
    Value *bm = body->add_input("m", m->type);
    Value *m2 = bb.add(bb.mul(bm, 0.9), bg);
    Value *w2 = bb.sub(bw, bb.mul(m2, 0.1));
    body->add_output(m2);
    body->add_output(w2);
  }
  Builder b(*g);
  Node *f = b.create(Op::Fused, {grad, w, m}, {{"kind", "elementwise"}},
                     {m->type, w->type}, std::move(body));
  g->add_output(b.sum(f->results[1]));
  g->add_output(f->results[1], 1);
  g->add_output(f->results[0], 2);
  return g;
}

TEST(Parser, RoundTripsFusedNodesAndInPlaceOutputs) {
  auto g = sgd_momentum();
  std::string text = print(*g);
  EXPECT_EQ(roundtrip(*g), text);
  auto p = parse(text, "step.kir");
  ASSERT_EQ(p->outputs.size(), 3u);
  EXPECT_EQ(p->outputs[0].alias, -1);
  EXPECT_EQ(p->outputs[1].alias, 1);
  EXPECT_EQ(p->outputs[2].alias, 2);
  EXPECT_EQ(p->inputs()[2].kind, InputKind::state);
  const Node &f = *p->nodes()[0];
  ASSERT_EQ(f.op, Op::Fused);
  ASSERT_TRUE(f.body);
  EXPECT_EQ(f.results.size(), 2u);
  EXPECT_EQ(f.body->name, "fused_0");
  EXPECT_EQ(f.body->inputs().size(), 3u);
  EXPECT_EQ(f.body->outputs.size(), 2u);
  EXPECT_EQ(f.attrs.get_str("kind"), "elementwise");
}

TEST(Parser, RoundTripsEveryAttributeKind) {
  Graph g("attrs");
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {2, 3}});
  Value *c1 = b.constant(-0.0, {DType::f32, {}});
  Value *c2 =
      b.constant(std::numeric_limits<double>::infinity(), {DType::f64, {}});
  Value *c3 = b.constant(std::nan(""), {DType::f32, {}});
  Value *c4 = b.constant(1e-300, {DType::f64, {}});
  Value *c5 = b.constant(0.1, {DType::f32, {}});
  Value *s = b.sum(x, {0, 1}, true);
  Value *r = b.reshape(x, {6});
  Value *e = b.reshape(s, {});
  Value *t = b.cast(x, DType::i64);
  for (Value *v : {c1, c2, c3, c4, c5, s, r, e, t})
    g.add_output(v);
  std::string text = print(g);
  EXPECT_EQ(roundtrip(g), text);
  auto p = parse(text, "attrs.kir");
  double z = p->nodes()[0]->attrs.get_float("value");
  EXPECT_EQ(z, 0.0);
  EXPECT_TRUE(std::signbit(z));
  EXPECT_TRUE(std::isinf(p->nodes()[1]->attrs.get_float("value")));
  EXPECT_TRUE(std::isnan(p->nodes()[2]->attrs.get_float("value")));
  EXPECT_EQ(p->nodes()[3]->attrs.get_float("value"), 1e-300);
  EXPECT_EQ(p->nodes()[4]->attrs.get_float("value"), 0.1);
  EXPECT_TRUE(p->nodes()[5]->attrs.get_bool("keepdims"));
  EXPECT_EQ(p->nodes()[5]->attrs.get_ints("axes"),
            (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(p->nodes()[7]->attrs.get_ints("shape").empty());
}

TEST(Parser, KeepsNamesAndRenumbersDigits) {
  auto g = parse("graph @g(%7: f32[2], %a: f32[2]) {\n"
                 "  %x.y = add(%7, %a) : f32[2] // a comment\n"
                 "  %42 = neg(%x.y) : f32[2]\n"
                 "  return %42\n"
                 "}\n",
                 "names.kir");
  EXPECT_EQ(g->nodes()[0]->result()->name, "x.y");
  EXPECT_EQ(print(*g), "graph @g(%0: f32[2], %a: f32[2]) {\n"
                       "  %x.y = add(%0, %a) : f32[2]\n"
                       "  %1 = neg(%x.y) : f32[2]\n"
                       "  return %1\n"
                       "}\n");
}

TEST(Parser, NamesTakeMlirIdentifierCharacters) {
  auto g = parse("graph @g-1(param %w-0$: f32[2]) {\n"
                 "  %a-b = neg(%w-0$) : f32[2]\n"
                 "  return %a-b->%w-0$\n"
                 "}\n",
                 "n.kir");
  EXPECT_EQ(g->name, "g-1");
  EXPECT_EQ(g->inputs()[0].value->name, "w-0$");
  ASSERT_EQ(g->outputs.size(), 1u);
  EXPECT_EQ(g->outputs[0].alias, 0);
  EXPECT_EQ(print(*g), "graph @g-1(param %w-0$: f32[2]) {\n"
                       "  %a-b = neg(%w-0$) : f32[2]\n"
                       "  return %a-b -> %w-0$\n"
                       "}\n");
}

TEST(Parser, AcceptsAnEmptyReturnAndCrlf) {
  auto g = parse("graph @g() {\r\n  return\r\n}\r\n", "crlf.kir");
  EXPECT_TRUE(g->outputs.empty());
  EXPECT_EQ(print(*g), "graph @g() {\n  return\n}\n");
}

struct BadCase {
  const char *text;
  const char *where; // "LINE:COL"
  const char *what;  // a part of the message
};

class ParserErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParserErrors, AreLocated) {
  const BadCase &c = GetParam();
  try {
    parse(c.text, "bad.kir");
    FAIL() << "no error for:\n" << c.text;
  } catch (const Error &e) {
    std::string msg = e.what();
    std::string prefix = fmt::format("bad.kir:{}: error: ", c.where);
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << msg;
    EXPECT_NE(msg.find(c.what), std::string::npos) << msg;
  }
}

// clang-format off
const BadCase kBadCases[] = {
  {"", "1:1", "empty file"},
  {"// only a comment\n", "2:1", "empty file"},
  {"graph @g(%x: f32[2]) {\n  %0 = frob(%x) : f32[2]\n  return %0\n}\n", "2:8", "unknown op 'frob'"},
  {"graph @g(%x: f32[2]) {\n  %0 = add(%x) : f32[2]\n  return %0\n}\n", "2:8", "add expects 2 operands, got 1"},
  {"graph @g(%x: f32[2]) {\n  %0 = neg(%y) : f32[2]\n  return %0\n}\n", "2:12", "undefined value %y"},
  {"graph @g(%x: f32[2]) {\n  %a = neg(%x) : f32[2]\n  %a = neg(%x) : f32[2]\n  return %a\n}\n", "3:3", "redefinition of value %a (first defined at 2:3)"},
  {"graph @g(%x: f32[2]) {\n  %x = neg(%x) : f32[2]\n  return %x\n}\n", "2:3", "redefinition of value %x"},
  {"graph @g(%x: f32[2]) {\n  %a, %a = neg(%x) : f32[2], f32[2]\n  return %a\n}\n", "2:7", "redefinition"},
  {"graph @g(%x: f32[2]) {\n  %0 = neg(%x) : f32[3]\n  return %0\n}\n", "2:18", "type mismatch: neg declared f32[3] but infers f32[2]"},
  {"graph @g(%x: f32[2]) {\n  %0 = neg(%x) : i32[2]\n  return %0\n}\n", "2:18", "type mismatch"},
  {"graph @g(%x: f32[2], %y: f32[3]) {\n  %0 = add(%x, %y) : f32[2]\n  return %0\n}\n", "2:8", "cannot broadcast [2] with [3]"},
  {"graph @g(%x: f32[3,-1]) {\n  return\n}\n", "1:20", "bad shape: dimension -1 is negative"},
  {"graph @g(%x: f32[3\n) {\n  return\n}\n", "2:1", "bad shape: expected ',' or ']'"},
  {"graph @g(%x: f32[3,]) {\n  return\n}\n", "1:20", "bad shape: expected a dimension"},
  {"graph @g(%x: f32[2.5]) {\n  return\n}\n", "1:18", "bad shape"},
  {"graph @g(%x: f32[1000000000,1000000000]) {\n  return\n}\n", "1:29", "too many elements"},
  {"graph @g(%x: f16[2]) {\n  return\n}\n", "1:14", "unknown dtype 'f16'"},
  {"graph @g(%x: f32) {\n  return\n}\n", "1:17", "expected '[' and a shape"},
  {"graph @g(%x: f32[2]) {\n  %0 = neg(%x) : f32[2]\n}\n", "3:1", "expected a node '%name = op(...)' or 'return', found '}'"},
  {"graph @g(%x: f32[2]) {\n  return %x\n", "3:1", "expected '}' to close the graph, found end of file"},
  {"graph @g(%x: f32[2]) {\n  %0 = add(%x,", "2:15", "expected a value '%name', found end of file"},
  {"graph @g(%x: f32[2]) {\n  return %x\n}\n}\n", "4:1", "unexpected '}' after the graph"},
  {"graph @g(%x: f32[2]) {\n  \xff\n}\n", "2:3", "invalid UTF-8 byte 0xff"},
  {"graph @g(%x: f32[2]) { // caf\xc3\n  return %x\n}\n", "1:30", "invalid UTF-8 byte 0xc3 in a comment"},
  {"graph @g(%x: f32[2]) { // \xc3\xa9t\xc3\xa9 ok\n  return %x $\n}\n", "2:13", "unexpected character '$'"},
  {"graph @g(%x: f32[2]) {\n  \x01\n}\n", "2:3", "unexpected byte 0x01"},
  {"graph @g(%x: f32[2]) {\n  \xc3\xa9\n}\n", "2:3", "unexpected character '\\xc3\\xa9'"},
  {"graph @g(%x: f32[2]) {\n  %0 = sum(%x) {axes = [0, 1.5]} : f32[]\n  return %0\n}\n", "2:28", "list elements must be integers"},
  {"graph @g(%x: f32[2]) {\n  %0 = sum(%x) {axes = maybe} : f32[]\n  return %0\n}\n", "2:24", "bad attribute value 'maybe'"},
  {"graph @g(%x: f32[2]) {\n  %0 = sum(%x) {axes = [0], axes = [0]} : f32[]\n  return %0\n}\n", "2:29", "duplicate attribute 'axes'"},
  {"graph @g(%x: f32[2]) {\n  %0 = sum(%x) {axes = 0} : f32[]\n  return %0\n}\n", "2:17", "sum attribute 'axes' must be a list of integers, got 0"},
  {"graph @g(%x: f32[2]) {\n  %0 = sum(%x) {axes = [99999999999999999999]} : f32[]\n  return %0\n}\n", "2:25", "integer 99999999999999999999 is out of range"},
  {"graph @g(%x: f32[2]) {\n  %0 = cast(%x) {dtype = \"f32} : f32[2]\n  return %0\n}\n", "2:26", "string is not closed"},
  {"graph @g(%x: f32[2]) {\n  %0 = constant() {value = 1.5x} : f32[]\n  return %0\n}\n", "2:28", "malformed number '1.5x'"},
  {"graph @g(weight %w: f32[2]) {\n  return\n}\n", "1:10", "unknown input kind 'weight'"},
  {"graph @g(%x: f32[2], %x: f32[3]) {\n  return\n}\n", "1:22", "duplicate graph input %x (first at 1:10)"},
  {"graph @g(%x: f32[2], param %w: f32[2]) {\n  %0 = neg(%x) : f32[2]\n  return %0 -> %0\n}\n", "3:16", "in-place target %0 is not a graph input"},
  {"graph @g(%x: f32[2], param %w: f32[2]) {\n  %0 = neg(%x) : f32[2]\n  return %0 -> %x\n}\n", "3:16", "%x is a data input"},
  {"graph @g(%x: f32[2], param %w: f32[3]) {\n  %0 = neg(%x) : f32[2]\n  return %0 -> %w\n}\n", "3:16", "in-place update of %w (f32[3]) with a f32[2]"},
  {"graph @g(%x: f32[2], param %w: f32[2]) {\n  %0 = neg(%x) : f32[2]\n  return %0 -> %w, %0 -> %w\n}\n", "3:26", "%w is updated in place twice"},
  {"graph @g(%x: f32[2]) {\n  %0 = neg(%x) : f32[2] graph @b() {\n    return\n  }\n  return %0\n}\n", "2:25", "only fused nodes have a body"},
  {"graph @g(%x: f32[2]) {\n  %0 = fused(%x) : f32[2]\n  return %0\n}\n", "3:3", "expected the fused node's body"},
  {"graph @g(%x: f32[2]) {\n  %0 = fused(%x) : f32[2] graph @b(%a: f32[3]) {\n    return %a\n  }\n  return %0\n}\n", "2:27", "fused body takes (f32[3]) but the operands are (f32[2])"},
  {"graph @g(%x: f32[2]) {\n  %0 = fused(%x) : f32[2] graph @b(%a: f32[2]) {\n    %1 = neg(%y) : f32[2]\n    return %1\n  }\n  return %0\n}\n", "3:14", "undefined value %y"},
  {"graph @g(%x: f32[2]) {\n  %0, %1 = neg(%x) : f32[2]\n  return %0\n}\n", "2:22", "2 results named but 1 type given"},
  {"graph @g(%x: f32[2]) {\n  %0, %1 = neg(%x) : f32[2], f32[2]\n  return %0\n}\n", "2:3", "neg has 1 result, 2 named"},
  {"graph @g(%a: f32[2,3], %b: f32[2,3]) {\n  %0 = matmul(%a, %b) : f32[2,3]\n  return %0\n}\n", "2:8", "matmul expects [*,2], got [2,3]"},
  {"graph @g(%s: f32[1]) {\n  %0 = broadcast_to(%s) {shape = [-5]} : f32[5]\n  return %0\n}\n", "2:8", "broadcast_to [-5] has a negative dimension"},
  {"graph g(%x: f32[2]) {\n  return\n}\n", "1:7", "expected a graph name '@name'"},
  {"graph @g(%: f32[2]) {\n  return\n}\n", "1:10", "expected a value name after '%'"},
  {"gaph @g() {\n  return\n}\n", "1:1", "expected 'graph', found 'gaph'"},
  {"graph @g() {\n  return\n} trailing\n", "3:3", "unexpected 'trailing' after the graph"},
  {"graph @g(%x: f32[2]) {\n  %0 = neg(%x) / f32[2]\n  return %0\n}\n", "2:16", "unexpected '/'"},
  {"graph @g(%x: f32[2]) {\n  %0 = neg(%x) {axis = -} : f32[2]\n  return %0\n}\n", "2:24", "unexpected '-'"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(All, ParserErrors, ::testing::ValuesIn(kBadCases));

TEST(Parser, LimitsNesting) {
  std::string text;
  int depth = 40;
  for (int i = 0; i < depth; ++i)
    text += "graph @g(%x: f32[]) {\n%0 = fused(%x) : f32[] ";
  text += "graph @g(%x: f32[]) {\nreturn %x\n}\n";
  for (int i = 0; i < depth; ++i)
    text += "return %0\n}\n";
  try {
    parse(text, "deep.kir");
    FAIL() << "no error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than 32"),
              std::string::npos)
        << e.what();
  }
}

// Random byte edits of valid files: every outcome is a graph that round
// trips or a located kiln::Error, never a crash or another exception.
TEST(Parser, SurvivesMutations) {
  std::vector<std::string> seeds = {print(*mlp()), print(*sgd_momentum())};
  std::mt19937 rng(1234);
  const std::string alphabet = "%@(){}[],:=->\"0123456789.e-graphreturn "
                               "paramstatef32i64bool\n\xff\xc3";
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text = seeds[iter % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      size_t pos = rng() % text.size();
      switch (rng() % 5) {
      case 0:
        text.erase(pos, 1 + rng() % 8);
        break;
      case 1:
        text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
        break;
      case 2:
        text[pos] = alphabet[rng() % alphabet.size()];
        break;
      case 3:
        text.resize(pos);
        break;
      case 4: {
        size_t from = rng() % text.size();
        text.insert(pos, text.substr(from, 1 + rng() % 20));
        break;
      }
      }
    }
    try {
      auto g = parse(text, "fuzz.kir");
      std::string once = print(*g);
      EXPECT_EQ(print(*parse(once, "fuzz2.kir")), once);
      ++parsed;
    } catch (const Error &e) {
      EXPECT_EQ(std::string(e.what()).rfind("fuzz.kir:", 0), 0u) << e.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(parsed, 0);
}

} // namespace
} // namespace kiln
