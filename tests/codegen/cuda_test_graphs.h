// Graphs for the CUDA tests: every op standalone (table driven over the op
// table and the dtypes each op accepts), hand-built fused nodes of the three
// kinds, and a small training step. Shared by the codegen tests (compile
// every kernel here) and the GPU execution tests (run on a device).
#pragma once

#include "ir/builder.h"
#include "ir/error.h"

#include <fmt/format.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::testing {

struct NamedGraph {
  std::string name;
  std::unique_ptr<Graph> graph;
};

// A graph of one node (plus whatever inputs it needs); nullptr when the op
// does not accept these operand types.
template <typename F> std::unique_ptr<Graph> try_graph(std::string name, F f) {
  auto g = std::make_unique<Graph>(std::move(name));
  Builder b(*g);
  try {
    Value *r = f(*g, b);
    g->add_output(r);
  } catch (const Error &) {
    return nullptr;
  }
  return g;
}

inline std::vector<NamedGraph> standalone_op_graphs() {
  std::vector<NamedGraph> out;
  auto add = [&](std::unique_ptr<Graph> g) {
    if (g) {
      std::string n = g->name;
      out.push_back({n, std::move(g)});
    }
  };
  const DType dtypes[] = {DType::f32, DType::f64, DType::i32, DType::i64,
                          DType::boolean};
  // Every elementwise op of the table, in every dtype it accepts, with a
  // full-size, a broadcast row and a scalar operand.
  for (int o = 0; o < kNumOps; ++o) {
    Op op = static_cast<Op>(o);
    const OpInfo &info = op_info(op);
    if (!info.has(kElementwise))
      continue;
    for (DType dt : dtypes) {
      std::vector<Shape> shapes[] = {{{64, 33}, {33}, {}},
                                     {{7, 1, 5}, {3, 1}, {7, 3, 5}}};
      for (int variant = 0; variant < 2; ++variant) {
        add(try_graph(
            fmt::format("{}_{}_{}", info.name, dtype_name(dt), variant),
            [&](Graph &g, Builder &b) {
              std::vector<Value *> ops;
              for (int k = 0; k < info.arity; ++k) {
                DType t = dt;
                if (op == Op::Where && k == 0)
                  t = DType::boolean;
                ops.push_back(g.add_input(fmt::format("x{}", k),
                                          {t, shapes[variant][k % 3]}));
              }
              Attrs attrs;
              if (op == Op::Cast)
                attrs.set("dtype",
                          std::string(dtype_name(
                              dt == DType::f32 ? DType::i32 : DType::f32)));
              return b.op(op, ops, attrs);
            }));
      }
    }
  }
  // Reductions over every kind of axis set, and softmax along each axis.
  const std::vector<std::vector<int64_t>> axes_sets = {
      {2}, {0}, {1}, {0, 1}, {1, 2}, {0, 2}, {}};
  for (Op op : {Op::Sum, Op::Mean, Op::Amax})
    for (DType dt : {DType::f32, DType::f64, DType::i32})
      for (size_t a = 0; a < axes_sets.size(); ++a)
        for (bool keep : {false, true})
          add(try_graph(fmt::format("{}_{}_axes{}_{}", op_name(op),
                                    dtype_name(dt), a, keep),
                        [&](Graph &g, Builder &b) {
                          Value *x = g.add_input("x", {dt, {8, 16, 33}});
                          Attrs at{{"keepdims", keep}};
                          if (!axes_sets[a].empty())
                            at.set("axes", axes_sets[a]);
                          return b.op(op, {x}, at);
                        }));
  add(try_graph("sum_long_rows", [](Graph &g, Builder &b) {
    return b.sum(g.add_input("x", {DType::f32, {3, 5000}}), {1});
  }));
  add(try_graph("amax_all", [](Graph &g, Builder &b) {
    return b.amax(g.add_input("x", {DType::f32, {100, 70}}));
  }));
  for (Op op : {Op::Softmax, Op::LogSoftmax})
    for (DType dt : {DType::f32, DType::f64})
      for (int axis : {-1, 0, 1})
        add(try_graph(
            fmt::format("{}_{}_axis{}", op_name(op), dtype_name(dt), axis),
            [&](Graph &g, Builder &b) {
              Value *x = g.add_input("x", {dt, {6, 10, 37}});
              return b.op(op, {x}, {{"axis", int64_t{axis}}});
            }));
  add(try_graph("log_softmax_long_rows", [](Graph &g, Builder &b) {
    return b.log_softmax(g.add_input("x", {DType::f32, {4, 3000}}));
  }));
  // Layout, sources, one_hot.
  add(try_graph("transpose_2d", [](Graph &g, Builder &b) {
    return b.transpose(g.add_input("x", {DType::f32, {33, 65}}));
  }));
  add(try_graph("transpose_3d", [](Graph &g, Builder &b) {
    return b.transpose(g.add_input("x", {DType::f64, {3, 4, 5}}), {2, 0, 1});
  }));
  add(try_graph("broadcast_to", [](Graph &g, Builder &b) {
    return b.broadcast_to(g.add_input("x", {DType::f32, {1, 7}}), {5, 3, 7});
  }));
  add(try_graph("one_hot_i32", [](Graph &g, Builder &b) {
    return b.one_hot(g.add_input("y", {DType::i32, {64}}), 10);
  }));
  add(try_graph("one_hot_i64_f64", [](Graph &g, Builder &b) {
    return b.one_hot(g.add_input("y", {DType::i64, {4, 5}}), 3, DType::f64);
  }));
  add(try_graph("constant_fill", [](Graph &, Builder &b) {
    return b.constant(0.25, {DType::f32, {17, 3}});
  }));
  add(try_graph("constant_i64", [](Graph &, Builder &b) {
    return b.constant(-3, {DType::i64, {5}});
  }));
  add(try_graph("random_uniform", [](Graph &g, Builder &b) {
    Value *s = g.add_input("seed", {DType::i64, {}});
    Value *o = g.add_input("offset", {DType::i64, {}});
    return b.random_uniform(s, o, {DType::f32, {1000}});
  }));
  add(try_graph("random_uniform_f64", [](Graph &g, Builder &b) {
    Value *s = g.add_input("seed", {DType::i64, {}});
    Value *o = g.add_input("offset", {DType::i64, {}});
    return b.random_uniform(s, o, {DType::f64, {3, 7}});
  }));
  return out;
}

// All graphs side by side in one graph (inputs and outputs concatenated),
// so that their kernels compile as one translation unit.
inline std::unique_ptr<Graph> merge_graphs(const std::vector<NamedGraph> &gs,
                                           const std::string &name) {
  auto m = std::make_unique<Graph>(name);
  for (size_t k = 0; k < gs.size(); ++k) {
    const Graph &g = *gs[k].graph;
    std::unordered_map<const Value *, Value *> map;
    for (const GraphInput &in : g.inputs())
      map[in.value] = m->add_input(fmt::format("g{}_{}", k, in.value->name),
                                   in.value->type, in.kind);
    for (auto &np : g.nodes()) {
      std::vector<Value *> ops;
      for (const Value *o : np->operands)
        ops.push_back(map.at(o));
      std::vector<Type> types;
      for (const Value *r : np->results)
        types.push_back(r->type);
      Node *n = m->append(np->op, ops, types, np->attrs,
                          np->body ? np->body->clone() : nullptr);
      for (size_t r = 0; r < n->results.size(); ++r)
        map[np->results[r]] = n->results[r];
    }
    for (const GraphOutput &o : g.outputs)
      m->add_output(map.at(o.value));
  }
  return m;
}

// Fused nodes built by hand, as the fusion passes make them.
inline Value *fused(Graph &g, const std::string &kind,
                    std::vector<Value *> operands,
                    const std::function<std::vector<Value *>(
                        Builder &, const std::vector<Value *> &)> &body_fn,
                    Attrs extra = {}) {
  auto body = std::make_unique<Graph>("fused_" + kind);
  std::vector<Value *> ins;
  for (size_t k = 0; k < operands.size(); ++k)
    ins.push_back(body->add_input(fmt::format("a{}", k), operands[k]->type));
  Builder bb(*body);
  std::vector<Type> types;
  for (Value *r : body_fn(bb, ins)) {
    body->add_output(r);
    types.push_back(r->type);
  }
  extra.set("kind", kind);
  return g.append(Op::Fused, operands, types, extra, std::move(body))->result();
}

inline std::vector<NamedGraph> fused_graphs() {
  std::vector<NamedGraph> out;
  {
    auto g = std::make_unique<Graph>("fused_bias_relu_scale");
    Value *x = g->add_input("x", {DType::f32, {64, 256}});
    Value *bias = g->add_input("b", {DType::f32, {256}});
    Value *s = g->add_input("s", {DType::f32, {}});
    g->add_output(fused(*g, "elementwise", {x, bias, s},
                        [](Builder &b, const std::vector<Value *> &a) {
                          Value *h = b.relu(b.add(a[0], a[1]));
                          return std::vector<Value *>{
                              b.mul(h, a[2]),
                              b.gt(h, b.scalar(0.5, DType::f32))};
                        }));
    out.push_back({g->name, std::move(g)});
  }
  {
    auto g = std::make_unique<Graph>("fused_odd_sizes_f64");
    Value *x = g->add_input("x", {DType::f64, {5, 7, 3}});
    Value *c = g->add_input("c", {DType::f64, {7, 1}});
    g->add_output(fused(*g, "elementwise", {x, c},
                        [](Builder &b, const std::vector<Value *> &a) {
                          Value *t = b.tanh(b.mul(a[0], a[1]));
                          return std::vector<Value *>{
                              b.where(b.lt(t, b.scalar(0, DType::f64)),
                                      b.exp(t), b.sqrt(b.add(t, 1.0)))};
                        }));
    out.push_back({g->name, std::move(g)});
  }
  {
    auto g = std::make_unique<Graph>("fused_reduce_rows");
    Value *x = g->add_input("x", {DType::f32, {64, 10}});
    Value *y = g->add_input("y", {DType::f32, {64, 10}});
    g->add_output(fused(*g, "reduction", {x, y},
                        [](Builder &b, const std::vector<Value *> &a) {
                          Value *d = b.sub(a[0], a[1]);
                          return std::vector<Value *>{b.mean(b.mul(d, d))};
                        }));
    out.push_back({g->name, std::move(g)});
  }
  {
    auto g = std::make_unique<Graph>("fused_bias_grad_columns");
    Value *x = g->add_input("x", {DType::f32, {1024, 130}});
    Value *m = g->add_input("m", {DType::f32, {1024, 130}});
    g->add_output(fused(
        *g, "reduction", {x, m}, [](Builder &b, const std::vector<Value *> &a) {
          return std::vector<Value *>{b.sum(b.mul(a[0], a[1]), {0})};
        }));
    out.push_back({g->name, std::move(g)});
  }
  {
    auto g = std::make_unique<Graph>("fused_log_softmax");
    Value *x = g->add_input("x", {DType::f32, {256, 10}});
    Value *bias = g->add_input("b", {DType::f32, {10}});
    g->add_output(fused(*g, "reduction", {x, bias},
                        [](Builder &b, const std::vector<Value *> &a) {
                          return std::vector<Value *>{
                              b.log_softmax(b.add(a[0], a[1]))};
                        }));
    out.push_back({g->name, std::move(g)});
  }
  {
    // SGD with momentum and weight decay over three parameters, one of them
    // of an odd size: v' = mu v + g + wd w; w' = w - lr v'.
    auto g = std::make_unique<Graph>("fused_sgd_multi_tensor");
    Value *lr = g->add_input("lr", {DType::f32, {}});
    std::vector<Value *> ops = {lr};
    std::vector<Shape> shapes = {{784, 256}, {256}, {10, 3}};
    for (size_t p = 0; p < shapes.size(); ++p) {
      ops.push_back(g->add_input(fmt::format("w{}", p), {DType::f32, shapes[p]},
                                 InputKind::param));
      ops.push_back(g->add_input(fmt::format("v{}", p), {DType::f32, shapes[p]},
                                 InputKind::state));
      ops.push_back(
          g->add_input(fmt::format("g{}", p), {DType::f32, shapes[p]}));
    }
    auto body = [&](Builder &b, const std::vector<Value *> &a) {
      std::vector<Value *> res;
      for (size_t p = 0; p < shapes.size(); ++p) {
        Value *w = a[1 + 3 * p], *v = a[2 + 3 * p], *gr = a[3 + 3 * p];
        Value *nv = b.add(b.add(b.mul(v, 0.9), gr), b.mul(w, 5e-4));
        res.push_back(b.sub(w, b.mul(nv, a[0])));
        res.push_back(nv);
      }
      return res;
    };
    fused(*g, "multi_tensor", ops, body,
          Attrs{{"chains", std::vector<int64_t>{2, 2, 2}}});
    const Node &f = *g->nodes().back();
    for (size_t p = 0; p < shapes.size(); ++p) {
      g->add_output(f.results[2 * p], g->input_index(ops[1 + 3 * p]));
      g->add_output(f.results[2 * p + 1], g->input_index(ops[2 + 3 * p]));
    }
    out.push_back({g->name, std::move(g)});
  }
  return out;
}

} // namespace kiln::testing
