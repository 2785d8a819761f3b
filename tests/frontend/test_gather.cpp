// gather / index_select on tensors and nn::Embedding on the gather op
// (frontend/tensor.h, frontend/norm.h): f64 finite-difference gradients of
// gather (wrt x) and scatter_add (wrt the updates) through autodiff on every
// axis, Embedding's padding_idx, and an index out of range as an error on
// the interpreter and the CPU backend.
#include "frontend/device.h"
#include "frontend/layers.h"
#include "ir/builder.h"
#include "ir/error.h"
#include "tests/support/gradcheck.h"

#include "../support/files.h"

#include "tests/support/frontend_testing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

namespace kiln {
namespace {

using testing::OnDevice;

Array wave(Shape shape, double phase, DType dtype = DType::f64) {
  Array a(Type{dtype, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, std::sin(0.7 * static_cast<double>(i) + phase));
  return a;
}

// loss = sum(gather(x, i) * w) + sum(scatter_add(i, u) * v), w and v fixed
// weights so that every element's gradient differs.
std::unique_ptr<Graph> gather_loss(const Shape &xs, const Shape &is,
                                   int64_t axis, DType index) {
  auto g = std::make_unique<Graph>("g");
  Value *x = g->add_input("x", {DType::f64, xs});
  Value *i = g->add_input("i", {index, is});
  Builder b(*g);
  Value *y = b.op(Op::Gather, {x, i}, {{"axis", axis}});
  Value *w = g->add_input("w", y->type);
  Value *u = g->add_input("u", y->type);
  Value *s = b.op(Op::ScatterAdd, {i, u},
                  {{"axis", axis}, {"size", xs[static_cast<size_t>(axis)]}});
  Value *v = g->add_input("v", s->type);
  g->add_output(b.add(b.sum(b.mul(y, w)), b.sum(b.mul(s, v))));
  return g;
}

TEST(GatherGrad, FiniteDifferencesOnEveryAxis) {
  // Indices from gradcheck_inputs lie in [0, 3), so with 4 indices along
  // an axis of size >= 3 some repeat and some rows get no gradient.
  for (int64_t axis = 0; axis < 3; ++axis)
    for (DType index : {DType::i32, DType::i64}) {
      SCOPED_TRACE(axis);
      auto g = gather_loss({3, 4, 3}, {2, 2}, axis, index);
      EXPECT_TRUE(testing::gradcheck(*g, testing::gradcheck_inputs(*g, 5)));
    }
  auto g = gather_loss({5, 3}, {}, 1, DType::i64); // a scalar index
  EXPECT_TRUE(testing::gradcheck(*g, testing::gradcheck_inputs(*g, 9)));
}

TEST(GatherTensor, GatherAndIndexSelect) {
  OnDevice on(Device::interpreter);
  Array x = wave({3, 4}, 0.2);
  std::vector<int64_t> idx = {3, 0, 3};
  Tensor i = Tensor::from(make_array({3}, std::span<const int64_t>(idx)));
  std::vector<Array> r = realize(
      {gather(Tensor::from(x), i, 1), index_select(Tensor::from(x), -1, i)});
  ASSERT_EQ(r[0].type(), (Type{DType::f64, {3, 3}}));
  for (int64_t row = 0; row < 3; ++row)
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_EQ(r[0].get(row * 3 + k), x.get(row * 4 + idx[k]));
      EXPECT_EQ(r[1].get(row * 3 + k), x.get(row * 4 + idx[k]));
    }
  std::vector<int64_t> two = {0, 1, 2, 0};
  Tensor i2 = Tensor::from(make_array({2, 2}, std::span<const int64_t>(two)));
  try {
    index_select(Tensor::from(x), 0, i2);
    ADD_FAILURE() << "2-D indices were accepted";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "index_select: indices must be 1-D, got i64[2,2]");
  }
}

nn::EmbeddingOptions emb_opts(std::optional<int64_t> padding_idx) {
  nn::EmbeddingOptions o;
  o.dtype = DType::f64;
  o.padding_idx = padding_idx;
  return o;
}

TEST(GatherEmbedding, PaddingIdxRowIsZeroAndGetsNoGradient) {
  for (int64_t pad : {2, -3}) { // -3 of 5 is row 2
    OnDevice on(Device::interpreter);
    manual_seed(3);
    nn::Embedding emb(5, 3, emb_opts(pad));
    const Array w = emb->weight->value().clone();
    for (int64_t d = 0; d < 3; ++d) {
      EXPECT_EQ(w.get(2 * 3 + d), 0.0);
      EXPECT_NE(w.get(1 * 3 + d), 0.0);
    }
    std::vector<int32_t> idx = {2, 4, 2, 1};
    Tensor out =
        emb(Tensor::from(make_array({4}, std::span<const int32_t>(idx))));
    Array dy = wave({4, 3}, 0.4);
    sum(out * Tensor::from(dy)).backward();
    std::vector<Array> r = realize({out, emb->weight->grad()});
    for (int64_t k = 0; k < 4; ++k)
      for (int64_t d = 0; d < 3; ++d)
        EXPECT_EQ(r[0].get(k * 3 + d), w.get(idx[k] * 3 + d));
    for (int64_t d = 0; d < 3; ++d) {
      EXPECT_EQ(r[1].get(2 * 3 + d), 0.0) << "padding row " << d;
      EXPECT_EQ(r[1].get(4 * 3 + d), dy.get(1 * 3 + d));
      EXPECT_EQ(r[1].get(1 * 3 + d), dy.get(3 * 3 + d));
      EXPECT_EQ(r[1].get(0 * 3 + d), 0.0);
    }
  }
  EXPECT_THROW(nn::Embedding(5, 3, emb_opts(5)), Error);
  EXPECT_THROW(nn::Embedding(5, 3, emb_opts(-6)), Error);
}

TEST(GatherEmbedding, IndexOutOfRangeIsAnError) {
  for (Device d : {Device::interpreter, Device::cpu}) {
    OnDevice on(d);
    nn::Embedding emb(4, 2, emb_opts(std::nullopt));
    std::vector<int64_t> idx = {1, 4, 0};
    Tensor out =
        emb(Tensor::from(make_array({3}, std::span<const int64_t>(idx))));
    try {
      out.to_host();
      ADD_FAILURE() << "index 4 of 4 rows was accepted";
    } catch (const Error &e) {
      std::string m = e.what();
      // The index is a data input: its range is checked before the step on
      // the CPU; the interpreter's gather names it.
      EXPECT_TRUE(m.find("element 1 is 4, outside [0, 4), the range of the "
                         "gather in Embedding that reads it") !=
                      std::string::npos ||
                  m.find("gather: index 4 at indices[1] is out of range [0, "
                         "4) for axis 0") != std::string::npos)
          << m;
    }
  }
}

// torch.nn.Embedding with padding_idx on the same weight, indices and
// output gradient: the output and weight.grad (the padding row's is zero).
const char *kTorchEmbedding = R"PY(
import math, sys
import torch

def wave(shape, phase):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.7 * i + phase) for i in range(n)],
                        dtype=torch.float64).reshape(shape)

m = torch.nn.Embedding(5, 3, padding_idx=2).double()
assert float(m.weight[2].abs().sum()) == 0.0
with torch.no_grad():
    w = wave([5, 3], 0.5)
    w[2] = 0
    m.weight.copy_(w)
out = m(torch.tensor([[2, 4, 0], [2, 1, 4]]))
(out * wave([2, 3, 3], 0.4)).sum().backward()
with open(sys.argv[1], "w") as f:
    for k, v in (("out", out), ("grad", m.weight.grad)):
        f.write(k + " " + " ".join(repr(float(x)) for x in v.flatten()) + "\n")
)PY";

class GatherTorch : public testing::TempDirTest {
protected:
  GatherTorch() : TempDirTest("kiln-gather-torch") {}
};

TEST_F(GatherTorch, EmbeddingWithPaddingIdxMatchesTorch) {
  const std::string &py = testing::python_with("torch");
  if (py.empty())
    GTEST_SKIP() << "no python3 with torch found (tried $KILN_PYTHON, "
                    "python3, /usr/bin/python3)";
  testing::write_bytes(path("ref.py"), kTorchEmbedding);
  std::string cmd =
      fmt::format("'{}' '{}' '{}'", py, path("ref.py"), path("ref.txt"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::map<std::string, std::vector<double>> ref;
  std::ifstream in(path("ref.txt"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    for (double v; ls >> v;)
      ref[name].push_back(v);
  }
  ASSERT_EQ(ref["out"].size(), 18u);
  ASSERT_EQ(ref["grad"].size(), 15u);

  OnDevice on(Device::interpreter);
  nn::Embedding emb(5, 3, emb_opts(2));
  Array w = wave({5, 3}, 0.5);
  for (int64_t d = 0; d < 3; ++d)
    w.set(2 * 3 + d, 0.0);
  emb->weight->value() = w;
  std::vector<int64_t> idx = {2, 4, 0, 2, 1, 4};
  Tensor out =
      emb(Tensor::from(make_array({2, 3}, std::span<const int64_t>(idx))));
  sum(out * Tensor::from(wave({2, 3, 3}, 0.4))).backward();
  std::vector<Array> r = realize({out, emb->weight->grad()});
  for (int64_t k = 0; k < 18; ++k)
    EXPECT_NEAR(r[0].get(k), ref["out"][k], 1e-15) << "out " << k;
  for (int64_t k = 0; k < 15; ++k)
    EXPECT_NEAR(r[1].get(k), ref["grad"][k], 1e-15) << "grad " << k;
}

} // namespace
} // namespace kiln
