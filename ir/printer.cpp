#include "ir/printer.h"

#include <fmt/format.h>

#include <set>
#include <unordered_map>

namespace kiln {

namespace {

bool is_numeric(const std::string &s) {
  if (s.empty())
    return true;
  for (char c : s)
    if (c < '0' || c > '9')
      return false;
  return true;
}

class Printer {
public:
  Printer(const PrintOptions &opts) : opts_(opts) {}

  void graph(const Graph &g, int indent) {
    Scope scope;
    std::string pad(indent, ' ');
    out_ += fmt::format("graph @{}(", g.name);
    for (size_t i = 0; i < g.inputs().size(); ++i) {
      const GraphInput &in = g.inputs()[i];
      if (i)
        out_ += ", ";
      if (in.kind != InputKind::data)
        out_ += fmt::format("{} ", input_kind_name(in.kind));
      out_ +=
          fmt::format("%{}: {}", scope.define(in.value), in.value->type.str());
      if (in.range)
        out_ += fmt::format(" in [{}, {})", in.range->lo, in.range->hi);
    }
    out_ += ") {\n";
    for (auto &n : g.nodes())
      node(*n, scope, indent + 2);
    out_ += fmt::format("{}  return", pad);
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const GraphOutput &o = g.outputs[i];
      out_ += fmt::format("{} %{}", i ? "," : "", scope.use(o.value));
      if (o.alias >= 0)
        out_ += fmt::format(" -> %{}", scope.use(g.inputs()[o.alias].value));
    }
    out_ += fmt::format("\n{}}}", pad);
  }

  std::string take() { return std::move(out_); }

private:
  using Scope = ValueNames;

  void node(const Node &n, Scope &scope, int indent) {
    std::string pad(indent, ' ');
    std::vector<std::string> operands;
    for (const Value *v : n.operands)
      operands.push_back("%" + scope.use(v));
    std::vector<std::string> results, types;
    for (const Value *r : n.results) {
      results.push_back("%" + scope.define(r));
      types.push_back(r->type.str());
    }
    out_ += fmt::format("{}{} = {}({})", pad, fmt::join(results, ", "),
                        n.info().name, fmt::join(operands, ", "));
    if (!n.attrs.empty()) {
      std::vector<std::string> attrs;
      for (auto &[k, v] : n.attrs.items())
        attrs.push_back(fmt::format("{} = {}", k, attr_str(v)));
      out_ += fmt::format(" {{{}}}", fmt::join(attrs, ", "));
    }
    out_ += fmt::format(" : {}", fmt::join(types, ", "));
    if (n.body) {
      out_ += " ";
      graph(*n.body, indent);
    }
    if (opts_.annotate) {
      std::string note = opts_.annotate(n);
      if (!note.empty())
        out_ += "  // " + note;
    }
    out_ += "\n";
  }

  const PrintOptions &opts_;
  std::string out_;
};

} // namespace

std::string ValueNames::define(const Value *v) {
  std::string n;
  if (is_numeric(v->name)) {
    while (used_.count(n = std::to_string(next_++)))
      ;
  } else {
    n = v->name;
    for (int k = 1; used_.count(n); ++k)
      n = fmt::format("{}_{}", v->name, k);
  }
  used_.insert(n);
  names_[v] = n;
  return n;
}

std::string ValueNames::use(const Value *v) const {
  auto it = names_.find(v);
  return it == names_.end() ? "<undefined>" : it->second;
}

std::string print(const Graph &g, const PrintOptions &opts) {
  Printer p(opts);
  p.graph(g, 0);
  return p.take() + "\n";
}

} // namespace kiln
