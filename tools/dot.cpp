#include "tools/dot.h"

#include "ir/fused_kind.h"
#include "ir/printer.h"

#include <fmt/format.h>

#include <set>
#include <unordered_map>
#include <vector>

namespace kiln {

namespace {

// The printer's names (ir/printer.h ValueNames), with the '%'.
struct Scope {
  ValueNames names;
  std::string define(const Value *v) { return "%" + names.define(v); }
  std::string use(const Value *v) const { return "%" + names.use(v); }
};

// A DOT string literal's contents; `\n` in `s` becomes a line break.
std::string quote(const std::string &s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      q += '\\';
    if (c == '\n')
      q += "\\n";
    else
      q += c;
  }
  return q + "\"";
}

std::string short_attrs(const Attrs &attrs) {
  std::vector<std::string> parts;
  for (auto &[k, v] : attrs.items())
    parts.push_back(fmt::format("{} = {}", k, attr_str(v)));
  std::string s = fmt::format("{}", fmt::join(parts, ", "));
  if (s.size() > 48)
    s = s.substr(0, 45) + "...";
  return s;
}

class DotWriter {
public:
  std::string write(const Graph &g) {
    out_ = fmt::format("digraph {} {{\n", quote(g.name));
    out_ += "  rankdir=TB;\n  compound=true;\n"
            "  node [fontname=\"monospace\", fontsize=10];\n"
            "  edge [fontname=\"monospace\", fontsize=8];\n";
    Scope scope;
    for (const GraphInput &in : g.inputs()) {
      std::string id = new_id();
      std::string label =
          fmt::format("{}{}\n{}",
                      in.kind == InputKind::data
                          ? ""
                          : fmt::format("{} ", input_kind_name(in.kind)),
                      scope.define(in.value), in.value->type.str());
      if (in.range)
        label += fmt::format(" in [{}, {})", in.range->lo, in.range->hi);
      const char *style = "shape=box";
      if (in.kind == InputKind::param)
        style = "shape=box3d, style=filled, fillcolor=\"#ffd59a\"";
      else if (in.kind == InputKind::state)
        style = "shape=cylinder, style=filled, fillcolor=\"#cfe2ff\"";
      out_ += fmt::format("  {} [label={}, {}];\n", id, quote(label), style);
      src_[in.value] = id;
    }
    for (const auto &n : g.nodes())
      node(*n, scope, 2);
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const GraphOutput &o = g.outputs[i];
      std::string id = new_id();
      std::string name = scope.use(o.value);
      if (o.alias < 0) {
        out_ += fmt::format("  {} [label={}, shape=house];\n", id,
                            quote(fmt::format("return {}\n{}", i, name)));
      } else {
        std::string target = scope.use(g.inputs()[o.alias].value);
        out_ += fmt::format(
            "  {} [label={}, shape=house, style=dashed, color=red];\n", id,
            quote(fmt::format("return {}\n{} -> {}", i, name, target)));
      }
      edge(src_.at(o.value), id, o.value->type.str());
      if (o.alias >= 0)
        out_ += fmt::format(
            "  {} -> {} [label={}, style=dashed, color=red, fontcolor=red, "
            "constraint=false];\n",
            id, src_.at(g.inputs()[o.alias].value),
            quote("updates " + scope.use(g.inputs()[o.alias].value)));
    }
    out_ += "}\n";
    return std::move(out_);
  }

private:
  std::string new_id() { return fmt::format("n{}", next_++); }

  void edge(const std::string &from, const std::string &to,
            const std::string &label, int indent = 2) {
    out_ += fmt::format("{}{} -> {} [label={}];\n", std::string(indent, ' '),
                        from, to, quote(label));
  }

  void node(const Node &n, Scope &scope, int indent) {
    std::string pad(indent, ' ');
    if (n.body) {
      fused(n, scope, indent);
      return;
    }
    std::vector<std::string> results;
    for (const Value *r : n.results)
      results.push_back(scope.define(r));
    std::string label =
        fmt::format("{} = {}", fmt::join(results, ", "), n.info().name);
    if (!n.attrs.empty())
      label += "\n" + short_attrs(n.attrs);
    std::string id = new_id();
    out_ += fmt::format("{}{} [label={}{}];\n", pad, id, quote(label),
                        n.op == Op::Constant ? ", shape=note, fontsize=8"
                                             : ", shape=box, style=rounded");
    for (const Value *v : n.operands)
      edge(src_.at(v), id, v->type.str(), indent);
    for (const Value *r : n.results)
      src_[r] = id;
  }

  // A fused node: a cluster with its body's inputs, ops and results.
  void fused(const Node &n, Scope &scope, int indent) {
    std::string pad(indent, ' ');
    std::string results; // three per line
    for (size_t j = 0; j < n.results.size(); ++j)
      results += (j == 0  ? ""
                  : j % 3 ? ", "
                          : ",\n") +
                 scope.define(n.results[j]);
    auto fk = fused_kind_of(n);
    std::string kind(fk ? fused_kind_name(*fk) : "");
    // The ops it holds, a few per line, as the kernel summary lists them.
    std::string ops;
    int col = 0;
    for (const auto &b : n.body->nodes()) {
      if (col)
        ops += col % 8 ? ", " : ",\n";
      ops += std::string(b->info().name);
      ++col;
    }
    out_ += fmt::format("{}subgraph cluster_{} {{\n", pad, next_++);
    out_ += fmt::format("{}  label={};\n{}  style=\"rounded,filled\";\n"
                        "{}  fillcolor=\"#eef3e8\";\n{}  labeljust=l;\n"
                        "{}  fontname=\"monospace\";\n{}  fontsize=10;\n",
                        pad,
                        quote(fmt::format("{} = fused ({}) @{}\n{}", results,
                                          kind, n.body->name, ops)),
                        pad, pad, pad, pad, pad);
    const Graph &body = *n.body;
    Scope inner;
    // Edges from outside are written after the cluster: an edge statement
    // inside a subgraph would pull its source node into the cluster.
    std::vector<std::pair<const Value *, std::string>> incoming;
    for (size_t j = 0; j < body.inputs().size(); ++j) {
      const Value *bv = body.inputs()[j].value;
      std::string id = new_id();
      out_ += fmt::format(
          "{}  {} [label={}, shape=plaintext, fontsize=8, height=0.2];\n", pad,
          id, quote(inner.define(bv)));
      src_[bv] = id;
      if (j < n.operands.size())
        incoming.emplace_back(n.operands[j], id);
    }
    for (const auto &b : body.nodes())
      node(*b, inner, indent + 2);
    out_ += pad + "}\n";
    for (const auto &[v, id] : incoming)
      edge(src_.at(v), id, v->type.str(), indent);
    for (size_t j = 0; j < n.results.size() && j < body.outputs.size(); ++j)
      src_[n.results[j]] = src_.at(body.outputs[j].value);
  }

  std::string out_;
  int next_ = 0;
  // The DOT node an edge carrying each value starts from.
  std::unordered_map<const Value *, std::string> src_;
};

} // namespace

std::string graph_to_dot(const Graph &g) { return DotWriter().write(g); }

} // namespace kiln
