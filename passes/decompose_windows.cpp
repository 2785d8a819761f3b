// decompose-windows: each conv2d node becomes
//
//   cols = im2col(x)                       [N, g, C/g*kh*kw, Ho*Wo]
//   y    = reshape(reshape(w, [g, O/g, C/g*kh*kw]) @ cols, [N, O, Ho, Wo])
//
// (the weight broadcast over the images: one GEMM per image and group), and
// each avg_pool2d node reshape(mean(im2col(x) per channel, taps axis)). The
// gradients of conv2d are written with the same im2col (ir/window_vjp.cpp),
// so CSE then keeps one im2col of each input for the forward and the
// weight gradient. max_pool2d stays a node: its kernels are its own.
//
// This is im2col + GEMM, what Caffe and PyTorch's THNN did on the CPU; see
// BENCHMARKS.md for how it compares with a direct convolution library.
#include "passes/decompose_windows.h"

#include "ir/builder.h"
#include "ir/window.h"

#include <unordered_set>

namespace kiln {

bool run_decompose_windows(Graph &g) {
  std::vector<Node *> todo;
  for (const auto &n : g.nodes())
    if (n->op == Op::Conv2d || n->op == Op::AvgPool2d)
      todo.push_back(n.get());
  if (todo.empty())
    return false;
  Builder b(g);
  std::unordered_set<const Node *> old;
  for (const auto &n : g.nodes())
    old.insert(n.get());
  for (Node *n : todo) {
    b.set_insert_point(n);
    Window2d w = window_of(*n);
    Value *x = n->operands[0], *y = nullptr;
    if (n->op == Op::Conv2d) {
      Value *wt = n->operands[1];
      const int64_t o = wt->type.shape[0];
      Value *w3 = b.reshape(wt, {w.groups, o / w.groups, w.rows()});
      y = b.reshape(b.matmul(w3, conv2d_columns(b, *n, x)),
                    n->result()->type.shape);
    } else {
      Attrs a;
      a.set("kernel", std::vector<int64_t>{w.kh, w.kw});
      a.set("stride", std::vector<int64_t>{w.sh, w.sw});
      a.set("padding", std::vector<int64_t>{w.ph, w.pw});
      a.set("groups", w.c);
      Value *cols = b.op(Op::Im2col, {x}, std::move(a)); // [N, C, taps, L]
      y = b.reshape(b.mean(cols, {2}), n->result()->type.shape);
    }
    // The replacement keeps the node's name and location, so the plan and
    // errors still point at the conv2d the user wrote.
    y->name = n->result()->name;
    for (const auto &m : g.nodes())
      if (old.insert(m.get()).second)
        m->loc = n->loc;
    g.replace_all_uses(n->result(), y);
  }
  std::unordered_set<const Node *> gone(todo.begin(), todo.end());
  g.erase_nodes_if([&](const Node &n) { return gone.count(&n) > 0; });
  return true;
}

} // namespace kiln
