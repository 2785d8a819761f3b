// A seeded generator of random graphs of elementwise ops, broadcasts,
// constants, reductions and the odd materialization point (transpose,
// reshape, matmul), with finite values by construction (exp only of tanh,
// log of 1+|x|, division by 1+|x|). For fusion and code generation tests:
// run a graph through a pass or a backend and compare with the reference
// interpreter on random_inputs().
#pragma once

#include "ir/builder.h"
#include "ir/host_tensor.h"

#include <memory>
#include <random>
#include <vector>

namespace kiln::testing {

struct RandomGraphOptions {
  int num_inputs = 3;
  int num_nodes = 14;
  bool reductions = true;
  bool materialize = true; // transpose, reshape, matmul
  DType dtype = DType::f64;
};

inline std::unique_ptr<Graph> random_graph(uint64_t seed,
                                           const RandomGraphOptions &opt = {}) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) {
    return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng));
  };
  int64_t R = 2 + pick(4), C = 2 + pick(5);
  std::vector<Shape> shapes = {{R, C}, {R, C}, {1, C}, {R, 1}, {C}, {}};
  auto g = std::make_unique<Graph>("random");
  Builder b(*g);
  std::vector<Value *> pool;
  for (int i = 0; i < opt.num_inputs; ++i)
    pool.push_back(
        g->add_input("in" + std::to_string(i),
                     {opt.dtype, i == 0 ? Shape{R, C} : shapes[pick(6)]}));
  auto any = [&] { return pool[pick(static_cast<int>(pool.size()))]; };
  // Two values that broadcast together (falls back to x with itself).
  auto pair = [&](Value *&x, Value *&y) {
    x = any();
    for (int t = 0; t < 8; ++t) {
      y = any();
      if (broadcast_shapes(x->type.shape, y->type.shape))
        return;
    }
    y = x;
  };
  auto one = [&](Value *x) { return b.scalar(1.0, x->type.dtype); };
  for (int i = 0; i < opt.num_nodes; ++i) {
    int kind = pick(opt.reductions ? 10 : 8);
    Value *x, *y, *r = nullptr;
    switch (kind) {
    case 0:
    case 1: { // unary
      x = any();
      switch (pick(8)) {
      case 0:
        r = b.neg(x);
        break;
      case 1:
        r = b.abs(x);
        break;
      case 2:
        r = b.relu(x);
        break;
      case 3:
        r = b.tanh(x);
        break;
      case 4:
        r = b.sigmoid(x);
        break;
      case 5:
        r = b.exp(b.tanh(x));
        break;
      case 6:
        r = b.log(b.add(b.abs(x), one(x)));
        break;
      default:
        r = b.sqrt(b.abs(x));
        break;
      }
      break;
    }
    case 2:
    case 3:
    case 4: { // binary
      pair(x, y);
      switch (pick(6)) {
      case 0:
        r = b.add(x, y);
        break;
      case 1:
        r = b.sub(x, y);
        break;
      case 2:
        r = b.mul(x, y);
        break;
      case 3:
        r = b.max(x, y);
        break;
      case 4:
        r = b.min(x, y);
        break;
      default:
        r = b.div(x, b.add(b.abs(y), one(y)));
        break;
      }
      break;
    }
    case 5: { // where(x > y, x, z)
      pair(x, y);
      r = b.where(b.gt(x, y), x, y);
      break;
    }
    case 6: { // constants, explicit broadcasts
      x = any();
      if (pick(2) == 0) {
        double v = std::uniform_real_distribution<double>(-2, 2)(rng);
        Shape cs = shapes[pick(6)];
        if (!broadcast_shapes(cs, x->type.shape))
          cs = {};
        r = b.add(x, b.constant(v, {x->type.dtype, cs}));
      } else if (broadcasts_to(x->type.shape, {R, C})) {
        r = b.broadcast_to(x, {R, C});
        if (r == x)
          r = b.neg(x);
      } else {
        r = b.neg(x);
      }
      break;
    }
    case 7: { // materialization points
      x = any();
      if (!opt.materialize || x->type.rank() != 2) {
        r = b.mul(x, x);
      } else if (pick(3) == 0) {
        r = b.transpose(x);
      } else if (pick(2) == 0) {
        r = b.reshape(x, {x->type.shape[1], x->type.shape[0]});
      } else {
        r = b.matmul(x, b.transpose(x));
      }
      break;
    }
    default: { // reductions
      x = any();
      if (x->type.rank() == 0) {
        r = b.neg(x);
        break;
      }
      int rank = x->type.rank();
      std::vector<int64_t> axes;
      int a = pick(3);
      if (a < 2 && a < rank)
        axes = {a};
      bool keep = pick(2) == 0;
      switch (pick(5)) {
      case 0:
        r = b.sum(x, axes, keep);
        break;
      case 1:
        r = b.mean(x, axes, keep);
        break;
      case 2:
        r = b.amax(x, axes, keep);
        break;
      case 3:
        r = b.softmax(x, -1);
        break;
      default:
        r = b.log_softmax(x, -1);
        break;
      }
      break;
    }
    }
    pool.push_back(r);
  }
  g->add_output(pool.back());
  for (int i = 0; i < 2; ++i) {
    Value *v = pool[opt.num_inputs + pick(opt.num_nodes)];
    g->add_output(v);
  }
  return g;
}

inline std::vector<HostTensor> random_inputs(const Graph &g, uint64_t seed) {
  std::mt19937_64 rng(seed * 7919 + 17);
  std::uniform_real_distribution<double> u(-2, 2);
  std::vector<HostTensor> in;
  for (const GraphInput &i : g.inputs()) {
    HostTensor t(i.value->type);
    for (double &x : t.data)
      x = round_to(t.type.dtype, u(rng));
    in.push_back(std::move(t));
  }
  return in;
}

} // namespace kiln::testing
