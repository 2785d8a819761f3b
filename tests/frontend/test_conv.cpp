// conv2d, max_pool2d, avg_pool2d and nn::Conv2d/MaxPool2d/AvgPool2d
// (frontend/conv.h), composed from pad, slice, concat, reshape, permute and
// matmul (issue 12), and the built-in CNN (frontend/models.h):
// - torch-free: values against direct nested-loop references in f64 (random
//   shapes, strides, paddings, dilations, groups) on the interpreter and the
//   CPU backend, f64 finite-difference gradients on the interpreter, the
//   default initialisation, errors naming the module and the op;
// - against PyTorch 1.13 (testing::python_with; skipped, saying so, without
//   torch): conv2d with stride/padding/dilation/groups and both pools.
#include "frontend/conv.h"
#include "frontend/device.h"
#include "frontend/models.h"
#include "ir/error.h"

#include "../support/files.h"

#include "tests/support/frontend_testing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>

namespace kiln {
namespace {

using testing::fd_gradcheck;
using testing::OnDevice;
using testing::param;

Array wave(Shape shape, double phase, double scale = 1, double shift = 0) {
  Array a(Type{DType::f64, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, std::sin(0.7 * static_cast<double>(i) + phase) * scale + shift);
  return a;
}

Array random_array(Shape shape, std::mt19937 &rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  Array a(Type{DType::f64, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, u(rng));
  return a;
}

// Direct convolution: out[n,o,y,x] = b[o] + sum_{c,i,j} in[n, g*cg+c,
// y*s - p + i*d, x*s - p + j*d] w[o,c,i,j] (zero outside).
std::vector<double> ref_conv(const Array &x, const Array &w, const Array *b,
                             const Conv2dParams &p, Shape &out_shape) {
  const Shape &xs = x.type().shape, &ws = w.type().shape;
  int64_t n = xs[0], c = xs[1], h = xs[2], wd = xs[3];
  int64_t o = ws[0], cg = ws[1], kh = ws[2], kw = ws[3], og = o / p.groups;
  int64_t ho =
      (h + 2 * p.padding.h - p.dilation.h * (kh - 1) - 1) / p.stride.h + 1;
  int64_t wo =
      (wd + 2 * p.padding.w - p.dilation.w * (kw - 1) - 1) / p.stride.w + 1;
  out_shape = {n, o, ho, wo};
  std::vector<double> out;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t y = 0; y < ho; ++y)
        for (int64_t xx = 0; xx < wo; ++xx) {
          double acc = b ? b->get(oc) : 0.0;
          int64_t g = oc / og;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                int64_t yy = y * p.stride.h - p.padding.h + i * p.dilation.h;
                int64_t xi = xx * p.stride.w - p.padding.w + j * p.dilation.w;
                if (yy < 0 || yy >= h || xi < 0 || xi >= wd)
                  continue;
                acc += x.get(((in * c + g * cg + ci) * h + yy) * wd + xi) *
                       w.get(((oc * cg + ci) * kh + i) * kw + j);
              }
          out.push_back(acc);
        }
  return out;
}

// Direct pooling (max with -inf padding, avg over kh*kw).
std::vector<double> ref_pool(const Array &x, Size2 k, Size2 s, Size2 p,
                             bool is_max, Shape &out_shape) {
  const Shape &xs = x.type().shape;
  int64_t n = xs[0], c = xs[1], h = xs[2], w = xs[3];
  int64_t ho = (h + 2 * p.h - k.h) / s.h + 1,
          wo = (w + 2 * p.w - k.w) / s.w + 1;
  out_shape = {n, c, ho, wo};
  std::vector<double> out;
  for (int64_t nc = 0; nc < n * c; ++nc)
    for (int64_t y = 0; y < ho; ++y)
      for (int64_t xx = 0; xx < wo; ++xx) {
        double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int64_t i = 0; i < k.h; ++i)
          for (int64_t j = 0; j < k.w; ++j) {
            int64_t yy = y * s.h - p.h + i, xi = xx * s.w - p.w + j;
            double v = (yy < 0 || yy >= h || xi < 0 || xi >= w)
                           ? (is_max ? -INFINITY : 0.0)
                           : x.get((nc * h + yy) * w + xi);
            acc = is_max ? std::max(acc, v) : acc + v;
          }
        out.push_back(is_max ? acc : acc / static_cast<double>(k.h * k.w));
      }
  return out;
}

void expect_values(const Array &got, const Shape &shape,
                   const std::vector<double> &want, double tol) {
  ASSERT_EQ(got.type().shape, shape);
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got.get(static_cast<int64_t>(i)), want[i], tol) << "at " << i;
}

// Random conv and pool cases against the nested loops on device `d`.
void check_against_reference(Device d) {
  OnDevice on(d);
  std::mt19937 rng(12);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int t = 0; t < 12; ++t) {
    Conv2dParams p;
    p.groups = pick(1, 2);
    int64_t cg = pick(1, 3), og = pick(1, 3);
    int64_t kh = pick(1, 3), kw = pick(1, 3);
    p.stride = Size2(pick(1, 2), pick(1, 3));
    p.padding = Size2(pick(0, 2), pick(0, 1));
    p.dilation = Size2(pick(1, 2), pick(1, 2));
    int64_t h = pick(p.dilation.h * (kh - 1) + 1, 7);
    int64_t w = pick(p.dilation.w * (kw - 1) + 1, 8);
    Array x = random_array({pick(1, 2), cg * p.groups, h, w}, rng);
    Array wt = random_array({og * p.groups, cg, kh, kw}, rng);
    Array b = random_array({og * p.groups}, rng);
    bool with_bias = t % 3 != 0;
    SCOPED_TRACE(fmt::format(
        "case {}: x {} w {} stride ({},{}) pad ({},{}) dil ({},{}) groups {}",
        t, x.type().str(), wt.type().str(), p.stride.h, p.stride.w, p.padding.h,
        p.padding.w, p.dilation.h, p.dilation.w, p.groups));
    Trace::discard_active();
    Array got = conv2d(Tensor::from(x), Tensor::from(wt),
                       with_bias ? Tensor::from(b) : Tensor(), p)
                    .to_host();
    Shape shape;
    std::vector<double> want =
        ref_conv(x, wt, with_bias ? &b : nullptr, p, shape);
    expect_values(got, shape, want, 1e-12);

    Size2 k(pick(1, 3), pick(1, 3));
    Size2 s(pick(1, 2), pick(1, 2));
    Size2 pp(pick(0, k.h / 2), pick(0, k.w / 2));
    Array xp =
        random_array({pick(1, 2), pick(1, 3), pick(k.h, 6), pick(k.w, 6)}, rng);
    for (bool is_max : {true, false}) {
      Trace::discard_active();
      Array pg = (is_max ? max_pool2d : avg_pool2d)(Tensor::from(xp), k, s, pp)
                     .to_host();
      std::vector<double> pw = ref_pool(xp, k, s, pp, is_max, shape);
      expect_values(pg, shape, pw, 1e-12);
    }
  }
}

TEST(Conv, MatchesNestedLoopsOnTheInterpreter) {
  check_against_reference(Device::interpreter);
}

TEST(Conv, CpuBackendMatchesNestedLoops) {
  std::string why;
  if (!device_available(Device::cpu, &why))
    GTEST_SKIP() << "no CPU backend: " << why;
  check_against_reference(Device::cpu);
}

// ---- gradients: f64 finite differences on the interpreter -----------------

Tensor weigh(const Tensor &out) {
  return sum(out * Tensor::from(wave(out.shape(), 2.5, 1, 0.3)));
}

TEST(Conv, GradientsMatchFiniteDifferencesOnTheInterpreter) {
  OnDevice on(Device::interpreter);
  {
    auto x = param("x", wave({2, 4, 5, 6}, 0.4, 2));
    auto w = param("w", wave({4, 2, 3, 2}, 0.9, 0.5));
    auto b = param("b", wave({4}, 1.3));
    Conv2dParams p{
        .stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}, .groups = 2};
    EXPECT_TRUE(fd_gradcheck(
        [&] { return weigh(conv2d(x->tensor(), w->tensor(), b->tensor(), p)); },
        {x, w, b}));
  }
  {
    // Distinct values (no ties), so the max is differentiable.
    Array xs(Type{DType::f64, {1, 2, 5, 5}});
    for (int64_t i = 0; i < xs.numel(); ++i)
      xs.set(i, std::sin(1.3 * static_cast<double>(i)) + 0.01 * i);
    auto x = param("x", xs);
    EXPECT_TRUE(fd_gradcheck(
        [&] { return weigh(max_pool2d(x->tensor(), 3, 2, 1)); }, {x}));
    EXPECT_TRUE(fd_gradcheck(
        [&] {
          return weigh(avg_pool2d(x->tensor(), {2, 3}, 1, {1, 0}));
        },
        {x}));
  }
}

// ---- layers, initialisation, errors ----------------------------------------

TEST(Conv, Conv2dHasTorchNamesShapesAndInit) {
  Trace::discard_active();
  nn::Conv2d conv(4, 6, Size2(3, 2), nn::Conv2dOptions{.groups = 2});
  auto named = conv->named_parameters();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[1].first, "bias");
  EXPECT_EQ(conv->weight->value().type().shape, (Shape{6, 2, 3, 2}));
  EXPECT_EQ(conv->bias->value().type().shape, (Shape{6}));
  double bound = 1 / std::sqrt(2.0 * 3 * 2), wmax = 0;
  for (const auto &p : {conv->weight, conv->bias})
    for (int64_t i = 0; i < p->value().numel(); ++i)
      wmax = std::max(wmax, std::fabs(p->value().get(i)));
  EXPECT_LE(wmax, bound);
  EXPECT_GT(wmax, 0.5 * bound);
  nn::Conv2d nb(1, 2, 3, nn::Conv2dOptions{.bias = false});
  EXPECT_EQ(nb->named_parameters().size(), 1u);
  Tensor y = conv(Tensor::full({2, 4, 5, 5}, 1.0));
  EXPECT_EQ(y.shape(), (Shape{2, 6, 3, 4}));
}

struct TwoConvImpl : nn::Module {
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::MaxPool2d pool{nullptr};
  TwoConvImpl() {
    conv1 = register_module("conv1", nn::Conv2d(1, 4, 3));
    conv2 = register_module("conv2", nn::Conv2d(3, 4, 3));
    pool = register_module("pool", nn::MaxPool2d(5));
  }
};
KILN_MODULE(TwoConv);

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Conv, ErrorsNameTheModuleAndTheOp) {
  Trace::discard_active();
  TwoConv m;
  // conv1 gives 4 channels, conv2 expects 3.
  std::string e = error_of([&] {
    m->conv2(m->conv1(Tensor::full({1, 1, 6, 6}, 1.0)));
  });
  EXPECT_NE(e.find("conv2 (Conv2d): conv2d: input f32[1,4,4,4] has 4 "
                   "channels but the weight f32[4,3,3,3] expects 3"),
            std::string::npos)
      << e;
  Trace::discard_active();
  e = error_of([&] { m->conv1(Tensor::full({1, 1, 2, 6}, 1.0)); });
  EXPECT_NE(e.find("conv1 (Conv2d): conv2d: kernel 3 is larger "
                   "than the padded input 2"),
            std::string::npos)
      << e;
  Trace::discard_active();
  e = error_of([&] { m->pool(Tensor::full({1, 1, 4, 4}, 1.0)); });
  EXPECT_NE(e.find("pool (MaxPool2d): max_pool2d: kernel 5"), std::string::npos)
      << e;
  Trace::discard_active();
  e = error_of([&] {
    conv2d(Tensor::full({1, 3, 4, 4}, 1.0), Tensor::full({4, 1, 1, 1}, 1.0), {},
           {.groups = 2});
  });
  EXPECT_NE(e.find("conv2d: groups 2 must divide the input channels 3"),
            std::string::npos)
      << e;
  EXPECT_NE(error_of([] {
              nn::Conv2d(3, 4, 3, nn::Conv2dOptions{.groups = 2});
            }).find("groups 2 must divide"),
            std::string::npos);
  Trace::discard_active();
  e = error_of([&] { m->conv1(Tensor::full({1, 6, 6}, 1.0)); });
  EXPECT_NE(e.find("conv1 (Conv2d): conv2d: expected a 4D input"),
            std::string::npos)
      << e;
  Trace::discard_active();
}

TEST(Conv, BuiltinCnnMapsImagesToLogits) {
  Trace::discard_active();
  auto cnn = make_cnn();
  std::vector<std::string> names;
  for (const auto &[name, p] : cnn->named_parameters())
    names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias",
                       "conv2.weight", "conv2.bias", "bn2.weight", "bn2.bias",
                       "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  Tensor y = (*cnn)(Tensor::full({3, 784}, 0.5));
  EXPECT_EQ(y.shape(), (Shape{3, 10}));
  Trace::discard_active();
}

// ---- against PyTorch
// ---------------------------------------------------------

const char *kTorchScript = R"PY(
import math, sys, torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
def wave(shape, phase, scale=1.0, shift=0.0):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.7 * i + phase) * scale + shift
                         for i in range(n)]).reshape(shape)
x = wave((2, 4, 7, 8), 0.3, 2.0)
w = wave((6, 2, 3, 2), 0.8, 0.5)
b = wave((6,), 1.7)
out = {
  'conv': F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(2, 1),
                   groups=2),
  'conv1': F.conv2d(x, wave((3, 4, 3, 3), 0.1), None, stride=1, padding=1),
  'max': F.max_pool2d(x, 3, 2, 1),
  'avg': F.avg_pool2d(x, (2, 3), (1, 2), (1, 1)),
}
# Gradients: conv2d's input and weight, and max-pool over overlapping windows
# of values rounded to halves, so that windows hold ties (torch sends a
# window's gradient to its first maximum).
xc, wc = x.clone().requires_grad_(), w.clone().requires_grad_()
y = F.conv2d(xc, wc, b, stride=(2, 1), padding=(1, 2), dilation=(2, 1),
             groups=2)
(y * wave(tuple(y.shape), 0.9)).sum().backward()
out['conv_dx'], out['conv_dw'] = xc.grad, wc.grad
xt = (torch.round(x * 2) / 2).requires_grad_()
(F.max_pool2d(xt, 3, 2, 1) * wave((2, 4, 4, 4), 0.5)).sum().backward()
out['max_dx'] = xt.grad
with open(sys.argv[1] + '/ref.txt', 'w') as f:
    for k, v in out.items():
        f.write(k + ' ' + ' '.join(repr(t) for t in v.flatten().tolist())
                + '\n')
)PY";

class ConvTorch : public testing::TempDirTest {
protected:
  ConvTorch() : TempDirTest("kiln-conv-torch") {}
};

TEST_F(ConvTorch, MatchesTorch) {
  const std::string &py = testing::python_with("torch");
  if (py.empty())
    GTEST_SKIP() << "no python3 with torch found (tried $KILN_PYTHON, "
                    "python3, /usr/bin/python3); the nested-loop tests of "
                    "this file still check the values";
  testing::write_bytes(path("ref.py"), kTorchScript);
  std::string cmd =
      fmt::format("'{}' '{}' '{}'", py, path("ref.py"), dir_.string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::map<std::string, std::vector<double>> ref;
  std::ifstream in(path("ref.txt"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    double v;
    while (ls >> v)
      ref[name].push_back(v);
  }
  ASSERT_EQ(ref.size(), 7u);
  Array x = wave({2, 4, 7, 8}, 0.3, 2.0);
  for (Device d : {Device::interpreter, Device::cpu}) {
    SCOPED_TRACE(d == Device::cpu ? "cpu" : "interpreter");
    if (!device_available(d))
      continue; // the cpu is missing only in builds without LLVM
    OnDevice on(d);
    Trace::discard_active();
    std::map<std::string, Array> got;
    got["conv"] =
        conv2d(Tensor::from(x), Tensor::from(wave({6, 2, 3, 2}, 0.8, 0.5)),
               Tensor::from(wave({6}, 1.7)),
               {.stride = {2, 1},
                .padding = {1, 2},
                .dilation = {2, 1},
                .groups = 2})
            .to_host();
    Trace::discard_active();
    got["conv1"] =
        conv2d(Tensor::from(x), Tensor::from(wave({3, 4, 3, 3}, 0.1)), {},
               {.padding = 1})
            .to_host();
    Trace::discard_active();
    got["max"] = max_pool2d(Tensor::from(x), 3, 2, 1).to_host();
    Trace::discard_active();
    got["avg"] = avg_pool2d(Tensor::from(x), {2, 3}, {1, 2}, 1).to_host();
    Trace::discard_active();
    {
      auto xp = param("x", x), wp = param("w", wave({6, 2, 3, 2}, 0.8, 0.5));
      Tensor y =
          conv2d(xp->tensor(), wp->tensor(), Tensor::from(wave({6}, 1.7)),
                 {.stride = {2, 1},
                  .padding = {1, 2},
                  .dilation = {2, 1},
                  .groups = 2});
      sum(y * Tensor::from(wave(y.shape(), 0.9))).backward();
      std::vector<Array> g = realize({xp->grad(), wp->grad()});
      got["conv_dx"] = g[0];
      got["conv_dw"] = g[1];
    }
    {
      Array xt = x.clone();
      for (int64_t i = 0; i < xt.numel(); ++i)
        xt.set(i, std::nearbyint(xt.get(i) * 2) / 2);
      auto xp = param("x", xt);
      sum(max_pool2d(xp->tensor(), 3, 2, 1) *
          Tensor::from(wave({2, 4, 4, 4}, 0.5)))
          .backward();
      got["max_dx"] = realize({xp->grad()})[0];
    }
    for (const auto &[name, want] : ref) {
      SCOPED_TRACE(name);
      const Array &a = got.at(name);
      ASSERT_EQ(static_cast<size_t>(a.numel()), want.size());
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(a.get(static_cast<int64_t>(i)), want[i],
                    (d == Device::cpu ? 1e-5 : 1e-10) *
                        (1 + std::fabs(want[i])))
            << i;
    }
  }
}

} // namespace
} // namespace kiln
