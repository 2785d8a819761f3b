#include "ir/graph.h"

#include "ir/error.h"

#include <algorithm>
#include <cassert>

namespace kiln {

std::string_view input_kind_name(InputKind k) {
  switch (k) {
  case InputKind::data:
    return "data";
  case InputKind::param:
    return "param";
  case InputKind::state:
    return "state";
  }
  return "?";
}

Value *Graph::new_value(Type type, std::string name, Node *def, int index) {
  auto v = std::make_unique<Value>();
  v->type = std::move(type);
  v->name = std::move(name);
  v->def = def;
  v->index = index;
  v->id = next_id_++;
  values_.push_back(std::move(v));
  return values_.back().get();
}

Value *Graph::add_input(std::string name, Type type, InputKind kind) {
  Value *v = new_value(std::move(type), std::move(name), nullptr,
                       static_cast<int>(inputs_.size()));
  inputs_.push_back({v, kind, std::nullopt});
  return v;
}

std::unique_ptr<Node> Graph::make_node(Op op, std::vector<Value *> operands,
                                       std::vector<Type> result_types,
                                       Attrs attrs,
                                       std::unique_ptr<Graph> body) {
  auto n = std::make_unique<Node>();
  n->op = op;
  n->operands = std::move(operands);
  n->attrs = std::move(attrs);
  n->body = std::move(body);
  for (size_t i = 0; i < result_types.size(); ++i)
    n->results.push_back(new_value(std::move(result_types[i]), "", n.get(),
                                   static_cast<int>(i)));
  return n;
}

Node *Graph::append(Op op, std::vector<Value *> operands,
                    std::vector<Type> result_types, Attrs attrs,
                    std::unique_ptr<Graph> body) {
  nodes_.push_back(make_node(op, std::move(operands), std::move(result_types),
                             std::move(attrs), std::move(body)));
  return nodes_.back().get();
}

Node *Graph::insert_before(const Node *pos, Op op,
                           std::vector<Value *> operands,
                           std::vector<Type> result_types, Attrs attrs,
                           std::unique_ptr<Graph> body) {
  auto n = make_node(op, std::move(operands), std::move(result_types),
                     std::move(attrs), std::move(body));
  Node *raw = n.get();
  if (!pos) { // at the end (the Builder's default): no search
    nodes_.push_back(std::move(n));
    return raw;
  }
  // Search from the back: insertion points are mostly near the end.
  auto rit = std::find_if(nodes_.rbegin(), nodes_.rend(),
                          [&](const auto &p) { return p.get() == pos; });
  nodes_.insert(rit == nodes_.rend() ? nodes_.end() : std::prev(rit.base()),
                std::move(n));
  return raw;
}

Node *Graph::copy_node(const Node &n, std::vector<Value *> operands) {
  std::vector<Type> types;
  for (const Value *r : n.results)
    types.push_back(r->type);
  Node *c = append(n.op, std::move(operands), std::move(types), n.attrs,
                   n.body ? n.body->clone() : nullptr);
  c->loc = n.loc;
  for (size_t i = 0; i < n.results.size(); ++i)
    c->results[i]->name = n.results[i]->name;
  return c;
}

Node *Graph::copy_node(const Node &n,
                       std::unordered_map<const Value *, Value *> &map) {
  std::vector<Value *> ops;
  for (const Value *o : n.operands)
    ops.push_back(map.at(o));
  Node *c = copy_node(n, std::move(ops));
  for (size_t i = 0; i < n.results.size(); ++i)
    map[n.results[i]] = c->results[i];
  return c;
}

void Graph::set_input_range(int i, InputRange r) {
  GraphInput &in = inputs_.at(static_cast<size_t>(i));
  DType d = in.value->type.dtype;
  if ((d != DType::i32 && d != DType::i64) || in.kind != InputKind::data)
    fail("input %{}: only integer data inputs take a range, not {} {}",
         in.value->name, input_kind_name(in.kind), in.value->type.str());
  if (r.lo >= r.hi)
    fail("input %{}: empty range [{}, {})", in.value->name, r.lo, r.hi);
  in.range = r;
}

std::string range_reader(const Node &n) {
  std::string s(op_name(n.op));
  if (n.op == Op::OneHot)
    s += fmt::format(" {{num_classes = {}}}", n.attrs.get_int("num_classes"));
  if (!n.loc.scope.empty())
    s += " in " + n.loc.scope;
  return s;
}

void check_input_element(const Graph &g, size_t i, int64_t index, int64_t v) {
  const GraphInput &in = g.inputs().at(i);
  if (!in.range || (v >= in.range->lo && v < in.range->hi))
    return;
  if (!in.range->reader.empty())
    fail("input %{} of @{}: element {} is {}, outside [{}, {}), the range "
         "of the {} that reads it",
         in.value->name, g.name, index, v, in.range->lo, in.range->hi,
         in.range->reader);
  fail("input %{} of @{}: element {} is {}, outside its range [{}, {}) "
       "(one_hot labels lie in [0, num_classes), gather and scatter_add "
       "indices in [0, the indexed axis's size))",
       in.value->name, g.name, index, v, in.range->lo, in.range->hi);
}

std::unique_ptr<Graph> one_node_body(const Node &n) {
  auto body = std::make_unique<Graph>(std::string(op_name(n.op)));
  std::vector<Value *> ins;
  for (size_t k = 0; k < n.operands.size(); ++k)
    ins.push_back(
        body->add_input("a" + std::to_string(k), n.operands[k]->type));
  Node *m = body->copy_node(n, std::move(ins));
  for (Value *r : m->results)
    body->add_output(r);
  return body;
}

Value *Graph::find_input(std::string_view name) const {
  for (auto &in : inputs_)
    if (in.value->name == name)
      return in.value;
  return nullptr;
}

int Graph::input_index(const Value *v) const {
  if (v->def)
    return -1;
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i].value == v)
      return static_cast<int>(i);
  return -1;
}

void Graph::replace_all_uses(Value *from, Value *to) {
  for (auto &n : nodes_)
    for (auto &o : n->operands)
      if (o == from)
        o = to;
  for (auto &o : outputs)
    if (o.value == from)
      o.value = to;
}

void Graph::erase_nodes_if(const std::function<bool(const Node &)> &pred) {
  std::erase_if(nodes_, [&](const auto &n) { return pred(*n); });
}

void Graph::reorder(const std::vector<Node *> &order) {
  assert(order.size() == nodes_.size() && "reorder must be a permutation");
  // Checked before anything moves (sorted copies: cheaper than hashing
  // every node of a big graph), then ownership passes in the new order.
  std::vector<const Node *> have, want(order.begin(), order.end());
  have.reserve(nodes_.size());
  for (const auto &n : nodes_)
    have.push_back(n.get());
  std::sort(have.begin(), have.end());
  std::sort(want.begin(), want.end());
  if (have != want)
    fail("graph @{}: internal error: a reordering is not a permutation of "
         "its nodes",
         name);
  for (auto &n : nodes_)
    (void)n.release();
  nodes_.clear();
  for (Node *n : order)
    nodes_.emplace_back(n);
}

std::unordered_map<const Value *, std::vector<Node *>> Graph::users() const {
  std::unordered_map<const Value *, std::vector<Node *>> u;
  for (auto &n : nodes_)
    for (Value *o : n->operands) {
      auto &list = u[o];
      if (list.empty() || list.back() != n.get())
        list.push_back(n.get());
    }
  return u;
}

std::unique_ptr<Graph>
Graph::clone(std::unordered_map<const Value *, Value *> *out_map) const {
  auto g = std::make_unique<Graph>(name);
  std::unordered_map<const Value *, Value *> map;
  for (auto &in : inputs_)
    map[in.value] = g->add_input(in.value->name, in.value->type, in.kind);
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i].range)
      g->set_input_range(static_cast<int>(i), *inputs_[i].range);
  for (auto &n : nodes_)
    g->copy_node(*n, map);
  for (auto &o : outputs)
    g->add_output(map.at(o.value), o.alias);
  if (out_map)
    *out_map = std::move(map);
  return g;
}

std::string located(const Node &n, std::string_view msg) {
  if (!n.loc.file.empty())
    return fmt::format("{}:{}:{}: error: {}", n.loc.file, n.loc.line, n.loc.col,
                       msg);
  if (!n.loc.scope.empty())
    return fmt::format("{}: {}", n.loc.scope, msg);
  return std::string(msg);
}

void fail_at_node(const Node &n, std::string_view msg) {
  throw Error(located(n, msg));
}

} // namespace kiln
