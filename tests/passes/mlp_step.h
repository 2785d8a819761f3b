// A hand-built training step of a two-layer MLP (what the frontend traces
// for Linear-ReLU-Linear, cross-entropy and SGD with momentum and weight
// decay): forward, loss, gradients by append_gradients, and the update
// with outputs aliasing the params and momentum buffers.
#pragma once

#include "ir/builder.h"
#include "passes/autodiff.h"

#include <memory>

namespace kiln::testing {

struct MlpDims {
  int64_t batch = 64, in = 784, hidden = 256, classes = 10;
};

inline std::unique_ptr<Graph> mlp_step(const MlpDims &d = {},
                                       DType dt = DType::f32,
                                       double weight_decay = 1e-4,
                                       double momentum = 0.9) {
  auto g = std::make_unique<Graph>("mlp_step");
  Builder b(*g);
  Value *x = g->add_input("x", {dt, {d.batch, d.in}});
  Value *y = g->add_input("y", {DType::i32, {d.batch}});
  Value *lr = g->add_input("lr", {dt, {}});
  std::vector<Value *> params = {
      g->add_input("w1", {dt, {d.in, d.hidden}}, InputKind::param),
      g->add_input("b1", {dt, {d.hidden}}, InputKind::param),
      g->add_input("w2", {dt, {d.hidden, d.classes}}, InputKind::param),
      g->add_input("b2", {dt, {d.classes}}, InputKind::param)};
  std::vector<Value *> moms;
  for (Value *p : params)
    moms.push_back(g->add_input("v_" + p->name, p->type, InputKind::state));
  Value *h = b.relu(b.add(b.matmul(x, params[0]), params[1]));
  Value *z = b.add(b.matmul(h, params[2]), params[3]);
  Value *logp = b.log_softmax(z, -1);
  Value *onehot = b.one_hot(y, d.classes, dt);
  Value *loss = b.neg(b.mean(b.sum(b.mul(onehot, logp), {1})));
  loss->name = "loss";
  std::vector<Value *> grads = append_gradients(*g, loss, params);
  g->add_output(loss);
  for (size_t i = 0; i < params.size(); ++i) {
    Value *p = params[i];
    // d = g + wd * p; v' = mu * v + d; p' = p - lr * v'
    Value *dp = b.add(grads[i], b.mul(p, weight_decay));
    Value *v = b.add(b.mul(moms[i], momentum), dp);
    Value *np = b.sub(p, b.mul(lr, v));
    v->name = "v_" + p->name + "_next";
    np->name = p->name + "_next";
    g->add_output(np, g->input_index(p));
    g->add_output(v, g->input_index(moms[i]));
  }
  return g;
}

} // namespace kiln::testing
