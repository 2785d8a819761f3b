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
              // Both forms of gelu; clamp with both bounds and with one.
              if (op == Op::Gelu && variant == 1)
                attrs.set("approximate", std::string("tanh"));
              if (op == Op::Clamp) {
                attrs.set("min", int64_t{-1});
                if (variant == 0)
                  attrs.set("max", int64_t{2});
              }
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
  // concat (variadic, every axis), slice (bounds, steps), pad (edges,
  // value, interior), in several dtypes.
  for (DType dt : {DType::f32, DType::f64, DType::i32, DType::boolean})
    for (int64_t axis : {0, 1, -1})
      add(try_graph(fmt::format("concat_{}_axis{}", dtype_name(dt), axis),
                    [&](Graph &g, Builder &b) {
                      Shape s0 = {3, 4, 5}, s1 = s0, s2 = s0;
                      int a = normalize_axis(axis, 3);
                      s1[a] = 1;
                      s2[a] = 7;
                      return b.op(Op::Concat,
                                  {g.add_input("a", {dt, s0}),
                                   g.add_input("b", {dt, s1}),
                                   g.add_input("c", {dt, s2})},
                                  {{"axis", axis}});
                    }));
  add(try_graph("slice_f32", [](Graph &g, Builder &b) {
    return b.op(Op::Slice, {g.add_input("x", {DType::f32, {9, 40}})},
                {{"starts", std::vector<int64_t>{2, -33}},
                 {"stops", std::vector<int64_t>{100, 39}}});
  }));
  add(try_graph("slice_i64_strided", [](Graph &g, Builder &b) {
    return b.op(Op::Slice, {g.add_input("x", {DType::i64, {5, 6, 7}})},
                {{"starts", std::vector<int64_t>{0, 1, -7}},
                 {"stops", std::vector<int64_t>{5, 6, 7}},
                 {"steps", std::vector<int64_t>{2, 3, 1}}});
  }));
  add(try_graph("pad_f32", [](Graph &g, Builder &b) {
    return b.op(Op::Pad, {g.add_input("x", {DType::f32, {6, 33}})},
                {{"pads", std::vector<int64_t>{1, 2, 0, 5}}});
  }));
  add(try_graph("pad_f64_value_interior", [](Graph &g, Builder &b) {
    return b.op(Op::Pad, {g.add_input("x", {DType::f64, {3, 4, 5}})},
                {{"pads", std::vector<int64_t>{0, 1, 2, 0, 1, 1}},
                 {"value", -1.5},
                 {"interior", std::vector<int64_t>{1, 0, 2}}});
  }));
  add(try_graph("pad_bool", [](Graph &g, Builder &b) {
    return b.op(
        Op::Pad, {g.add_input("x", {DType::boolean, {4, 3}})},
        {{"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"value", int64_t{1}}});
  }));
  add(try_graph("one_hot_i32", [](Graph &g, Builder &b) {
    return b.one_hot(g.add_input("y", {DType::i32, {64}}), 10);
  }));
  add(try_graph("one_hot_i64_f64", [](Graph &g, Builder &b) {
    return b.one_hot(g.add_input("y", {DType::i64, {4, 5}}), 3, DType::f64);
  }));
  // gather and scatter_add: the CUDA tests' integer inputs lie in [1, 3],
  // so every indexed axis has 4 or more entries and indices repeat.
  add(try_graph("gather_f32_axis0", [](Graph &g, Builder &b) {
    return b.op(Op::Gather, {g.add_input("x", {DType::f32, {6, 33}}),
                             g.add_input("i", {DType::i64, {5, 2}})});
  }));
  add(try_graph("gather_f64_axis1_i32", [](Graph &g, Builder &b) {
    return b.op(Op::Gather,
                {g.add_input("x", {DType::f64, {3, 4, 5}}),
                 g.add_input("i", {DType::i32, {7}})},
                {{"axis", int64_t{1}}});
  }));
  add(try_graph("scatter_add_f32", [](Graph &g, Builder &b) {
    return b.op(Op::ScatterAdd,
                {g.add_input("i", {DType::i32, {9}}),
                 g.add_input("u", {DType::f32, {9, 17}})},
                {{"size", int64_t{5}}});
  }));
  add(try_graph("scatter_add_f64_axis1", [](Graph &g, Builder &b) {
    return b.op(Op::ScatterAdd,
                {g.add_input("i", {DType::i64, {2, 3}}),
                 g.add_input("u", {DType::f64, {4, 2, 3, 3}})},
                {{"axis", int64_t{1}}, {"size", int64_t{4}}});
  }));
  add(try_graph("constant_fill", [](Graph &, Builder &b) {
    return b.constant(0.25, {DType::f32, {17, 3}});
  }));
  add(try_graph("constant_i64", [](Graph &, Builder &b) {
    return b.constant(-3, {DType::i64, {5}});
  }));
  add(try_graph("iota_f32_axis0", [](Graph &, Builder &b) {
    return b.iota({DType::f32, {17, 3}}, 0);
  }));
  add(try_graph("iota_i64_axis1_3d", [](Graph &, Builder &b) {
    return b.iota({DType::i64, {2, 3, 4}}, 1);
  }));
  add(try_graph("iota_i32_1d", [](Graph &, Builder &b) {
    return b.iota({DType::i32, {1000}}, 0);
  }));
  add(try_graph("iota_f64_unit_axis", [](Graph &, Builder &b) {
    return b.iota({DType::f64, {1, 9}}, 0);
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
    for (auto &np : g.nodes())
      m->copy_node(*np, map);
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

// One graph holding one hand-built fused node (operands from `inputs`).
inline NamedGraph
fused_graph(const std::string &name, const std::string &kind,
            const std::vector<Type> &inputs,
            const std::function<std::vector<Value *>(
                Builder &, const std::vector<Value *> &)> &body_fn) {
  auto g = std::make_unique<Graph>(name);
  std::vector<Value *> ops;
  for (size_t k = 0; k < inputs.size(); ++k)
    ops.push_back(g->add_input(fmt::format("x{}", k), inputs[k]));
  fused(*g, kind, ops, body_fn);
  for (Value *r : g->nodes().back()->results)
    g->add_output(r);
  return {name, std::move(g)};
}

// The extensions of the fused-node contract (passes/fuse_elementwise.cpp):
// iotas in elementwise bodies and reduction prologues, and reductions with
// an epilogue and extra outputs, over every reduction layout.
inline std::vector<NamedGraph> contract_graphs() {
  using V = std::vector<Value *>;
  const DType f32 = DType::f32, i32 = DType::i32;
  std::vector<NamedGraph> out;
  // ---- iota in elementwise bodies ----
  // x * col + row, f32 iotas of shapes [1,C] (axis 1) and [N,1] (axis 0):
  // the full input keeps the vector path.
  out.push_back(fused_graph("iota_ew_f32_rows_cols", "elementwise",
                            {{f32, {64, 10}}}, [](Builder &b, const V &a) {
                              Value *col = b.iota({DType::f32, {1, 10}}, 1);
                              Value *row = b.iota({DType::f32, {64, 1}}, 0);
                              return V{b.add(b.mul(a[0], col), row)};
                            }));
  // one_hot by iota: labels [N,1] against classes [1,C].
  out.push_back(fused_graph("iota_ew_one_hot", "elementwise", {{i32, {64, 1}}},
                            [](Builder &b, const V &a) {
                              Value *cls = b.iota({DType::i32, {1, 10}}, 1);
                              return V{b.cast(b.eq(a[0], cls), DType::f32)};
                            }));
  // 3-D, i32: an iota of rank 2 lining up with space axis 1, a full-shape
  // one along the last axis, a rank-1 one; two outputs.
  out.push_back(fused_graph("iota_ew_i32_3d", "elementwise", {{i32, {4, 5, 6}}},
                            [](Builder &b, const V &a) {
                              Value *mid = b.iota({DType::i32, {5, 1}}, 0);
                              Value *last = b.iota({DType::i32, {4, 5, 6}}, 2);
                              Value *first = b.iota({DType::i64, {4, 5, 6}}, 0);
                              Value *vec = b.iota({DType::i32, {6}}, 0);
                              Value *r =
                                  b.add(b.mul(a[0], mid), b.sub(last, vec));
                              return V{b.add(r, b.cast(first, DType::i32)),
                                       b.cast(b.eq(last, a[0]), DType::f32)};
                            }));
  // f64, an iota of size 1 along its axis (all zeros) and a full one.
  out.push_back(fused_graph("iota_ew_f64_unit_axis", "elementwise",
                            {{DType::f64, {5, 7}}}, [](Builder &b, const V &a) {
                              Value *z = b.iota({DType::f64, {1, 7}}, 0);
                              Value *c = b.iota({DType::f64, {5, 7}}, 1);
                              return V{b.add(a[0], b.add(z, c))};
                            }));
  // ---- reductions: epilogues ----
  // The loss: sum(x * y) / 64, negated.
  out.push_back(fused_graph("red_loss_epilogue", "reduction",
                            {{f32, {64, 10}}, {f32, {64, 10}}},
                            [](Builder &b, const V &a) {
                              Value *s = b.sum(b.mul(a[0], a[1]), {0, 1});
                              Value *d = b.div(s, b.scalar(64.0, DType::f32));
                              return V{b.neg(d)};
                            }));
  // one_hot by iota in the prologue, then the same epilogue.
  out.push_back(fused_graph(
      "red_iota_one_hot_loss", "reduction", {{f32, {64, 10}}, {i32, {64, 1}}},
      [](Builder &b, const V &a) {
        Value *cls = b.iota({DType::i32, {1, 10}}, 1);
        Value *oh = b.cast(b.eq(a[1], cls), DType::f32);
        Value *s = b.sum(b.mul(a[0], oh), {0, 1});
        return V{b.neg(b.div(s, b.scalar(64.0, DType::f32)))};
      }));
  // mean over the last axis, then rsqrt(m + eps) (warp per row).
  out.push_back(fused_graph("red_mean_epilogue_rows", "reduction",
                            {{f32, {32, 100}}}, [](Builder &b, const V &a) {
                              Value *m = b.mean(b.mul(a[0], a[0]), {-1}, true);
                              return V{b.rsqrt(b.add(m, 1e-5))};
                            }));
  // amax over the last axis with an epilogue changing the dtype, and the
  // prologue's exp as an extra output.
  out.push_back(fused_graph("red_amax_epilogue_extra", "reduction",
                            {{f32, {16, 50}}, {f32, {50}}},
                            [](Builder &b, const V &a) {
                              Value *e = b.exp(b.sub(a[0], a[1]));
                              Value *m = b.amax(e, {-1});
                              return V{b.gt(m, b.scalar(1.5, DType::f32)), e};
                            }));
  // i32 sum with an epilogue (a count of positives, doubled).
  out.push_back(fused_graph("red_i32_count_epilogue", "reduction",
                            {{f32, {64, 10}}}, [](Builder &b, const V &a) {
                              Value *pos =
                                  b.cast(b.gt(a[0], b.scalar(0, DType::f32)),
                                         DType::i32);
                              Value *c = b.sum(pos, {1}, true);
                              return V{b.mul(c, b.scalar(2, DType::i32))};
                            }));
  // ---- reductions: extra outputs, one graph per layout ----
  // The bias gradient: axes [0], column tiles; output 1 is the masked
  // gradient (where(h > 0, g, 0)).
  out.push_back(fused_graph("red_bias_grad_extra_cols", "reduction",
                            {{f32, {64, 128}}, {f32, {128}}, {f32, {64, 128}}},
                            [](Builder &b, const V &a) {
                              Value *h = b.add(a[0], a[1]);
                              Value *c = b.scalar(0, DType::f32);
                              Value *m = b.where(b.gt(h, c), a[2], c);
                              return V{b.sum(m, {0}, true), m};
                            }));
  // axes [-1], warp per row: the product and a bool mask as extras.
  out.push_back(fused_graph("red_rows_extras_warp", "reduction",
                            {{f32, {64, 10}}, {f32, {64, 10}}},
                            [](Builder &b, const V &a) {
                              Value *p = b.mul(a[0], a[1]);
                              Value *mask = b.gt(a[0], b.scalar(0, DType::f32));
                              return V{b.sum(p, {-1}), p, mask};
                            }));
  // axes [0, 1] of the whole input, with the loss epilogue and an extra.
  out.push_back(fused_graph(
      "red_all_epilogue_extra", "reduction", {{f32, {64, 10}}, {f32, {64, 10}}},
      [](Builder &b, const V &a) {
        Value *p = b.mul(a[0], a[1]);
        Value *s = b.sum(p, {0, 1});
        return V{b.neg(b.div(s, b.scalar(64.0, DType::f32))), p};
      }));
  // Rows longer than 1024: a block per row; mean with an epilogue, and the
  // reduction's own operand as the extra.
  out.push_back(fused_graph("red_long_rows_extra_block", "reduction",
                            {{f32, {4, 3000}}, {f32, {4, 1}}},
                            [](Builder &b, const V &a) {
                              Value *e = b.exp(b.sub(a[0], a[1]));
                              Value *m = b.mean(e, {1}, true);
                              return V{b.log(m), e};
                            }));
  // axes [0, 1] of [64, 100]: one row of 6400, a block per row.
  out.push_back(fused_graph("red_all_long_extra_block", "reduction",
                            {{f32, {64, 100}}}, [](Builder &b, const V &a) {
                              Value *sq = b.mul(a[0], a[0]);
                              return V{b.sum(sq, {0, 1}), sq};
                            }));
  // A non-contiguous pair of axes: a warp per output element.
  out.push_back(fused_graph("red_noncontig_extra", "reduction",
                            {{f32, {4, 5, 6}}, {f32, {5, 1}}},
                            [](Builder &b, const V &a) {
                              Value *p = b.mul(a[0], a[1]);
                              Value *m = b.mean(p, {0, 2});
                              return V{b.mul(m, b.scalar(3.0, DType::f32)), p};
                            }));
  // Column tiles over a middle axis (I > 1), amax with an iota prologue and
  // an extra, f64.
  out.push_back(fused_graph("red_middle_axis_iota_extra", "reduction",
                            {{DType::f64, {3, 40, 33}}},
                            [](Builder &b, const V &a) {
                              Value *r = b.iota({DType::f64, {40, 1}}, 0);
                              Value *p = b.add(a[0], r);
                              return V{b.amax(p, {1}), p};
                            }));
  return out;
}

// A loss with one_hot by iota and a bias gradient whose mask is also an
// output, before and after fuse-elementwise.
inline std::unique_ptr<Graph> iota_loss_graph() {
  auto g = std::make_unique<Graph>("iota_loss_bias_grad");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, {64, 10}});
  Value *y = g->add_input("y", {DType::i32, {64, 1}});
  Value *h = g->add_input("h", {DType::f32, {64, 128}});
  Value *bias = g->add_input("b", {DType::f32, {128}});
  Value *gr = g->add_input("g", {DType::f32, {64, 128}});
  Value *oh = b.cast(b.eq(y, b.iota({DType::i32, {1, 10}}, 1)), DType::f32);
  Value *loss = b.neg(b.div(b.sum(b.mul(x, oh)), b.scalar(64, DType::f32)));
  Value *zero = b.scalar(0, DType::f32);
  Value *m = b.where(b.gt(b.add(h, bias), zero), gr, zero);
  g->add_output(loss);
  g->add_output(b.sum(m, {0}, true));
  g->add_output(m);
  g->add_output(b.add(b.iota({DType::f32, {64, 128}}, 0), h));
  return g;
}

} // namespace kiln::testing
