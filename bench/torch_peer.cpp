// The LibTorch peer for `kiln bench`: the same MLP training step, SGD update
// and elementwise chain as kiln's benchmarks, timed with LibTorch (Debian's
// libtorch-dev, CPU). Built only when LibTorch is found; kiln itself never
// links it. Prints one tab-separated line per measurement:
//   name <TAB> median_ms <TAB> p90_ms <TAB> setting
//
//   kiln_torch_peer [iters] [mlp|cnn|cnn-step|conv]
// mlp (the default): the MLP step, the chain and the SGD update. cnn (`kiln
// bench --cnn`): the built-in CNN's training step (frontend/models.h, same
// layers, cross-entropy, SGD momentum 0.9 + weight decay 5e-4, train mode:
// batch-norm batch statistics, dropout on) at batch 64 and 256, and conv2d
// forward + backward alone for its two convolutions (a sum loss; conv1's
// input is data, so only dw; conv2 also dx, as in the step); cnn-step and
// conv: either part alone.
// LibTorch's OpenMP pool and OpenBLAS's own pool oversubscribe a 2-core
// machine at their defaults, so every (torch threads, BLAS threads) pair is
// measured and the caller reports the best, as a fair peer must.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double median_ms, p90_ms;
};

template <typename F> Stats time_it(F &&f, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i)
    f();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    f();
    ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[static_cast<size_t>(ms.size() * 0.9)]};
}

void set_blas_threads(int n) {
  using Fn = void (*)(int);
  if (auto f =
          reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    f(n);
}

void print(const std::string &name, Stats s, const std::string &setting) {
  std::printf("%s\t%.6f\t%.6f\t%s\n", name.c_str(), s.median_ms, s.p90_ms,
              setting.c_str());
  std::fflush(stdout);
}

void bench_mlp(int batch, int iters) {
  torch::manual_seed(0);
  auto model =
      torch::nn::Sequential(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                            torch::nn::Linear(256, 128), torch::nn::ReLU(),
                            torch::nn::Linear(128, 10));
  torch::optim::SGD opt(
      model->parameters(),
      torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  auto x = torch::randn({batch, 784});
  auto y = torch::randint(0, 10, {batch}, torch::kLong);
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    (void)loss.item<float>();
  };
  for (int t : {1, 2})
    for (int b : {1, 2}) {
      at::set_num_threads(t);
      set_blas_threads(b);
      print("mlp_step_b" + std::to_string(batch), time_it(step, 30, iters),
            "torch_threads=" + std::to_string(t) +
                ",blas_threads=" + std::to_string(b));
    }
}

void bench_elementwise(int64_t n, int iters) {
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    std::string setting = "torch_threads=" + std::to_string(t);
    auto x = torch::randn({n}), w = torch::randn({n}), b = torch::randn({n});
    auto chain = [&] {
      auto r = torch::relu(x * w + b) * 0.5 + x;
      (void)r;
    };
    print("chain_" + std::to_string(n), time_it(chain, 5, iters), setting);

    auto p = torch::randn({n}).requires_grad_(true);
    p.mutable_grad() = torch::randn({n});
    torch::optim::SGD opt(
        {p}, torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(5e-4));
    auto step = [&] { opt.step(); };
    print("sgd_" + std::to_string(n), time_it(step, 5, iters), setting);
  }
}

// Torch's CPU convolutions go to oneDNN (mkldnn) when it is built in and
// enabled; the setting says which, since it decides what kiln is up against.
std::string conv_backend() {
  return at::hasMKLDNN() && at::globalContext().userEnabledMkldnn()
             ? ",conv=mkldnn"
             : ",conv=native";
}

void bench_cnn(int batch, int iters) {
  namespace nn = torch::nn;
  torch::manual_seed(0);
  // kiln's make_cnn(): conv 1->32 3x3 pad 1, BN, ReLU, max-pool 2; conv
  // 32->64 3x3 pad 1, BN, ReLU, max-pool 2; fc 3136->128, ReLU, dropout 0.25
  // (CnnOptions' default); fc 128->10.
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)),
                       nn::BatchNorm2d(32), nn::ReLU(), nn::MaxPool2d(2),
                       nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)),
                       nn::BatchNorm2d(64), nn::ReLU(), nn::MaxPool2d(2),
                       nn::Flatten(), nn::Linear(64 * 7 * 7, 128), nn::ReLU(),
                       nn::Dropout(0.25), nn::Linear(128, 10));
  model->train();
  torch::optim::SGD opt(
      model->parameters(),
      torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  auto x = torch::randn({batch, 784});
  auto y = torch::randint(0, 10, {batch}, torch::kLong);
  auto step = [&] {
    opt.zero_grad();
    auto out = model->forward(x.view({batch, 1, 28, 28}));
    auto loss = torch::nn::functional::cross_entropy(out, y);
    loss.backward();
    opt.step();
    (void)loss.item<float>();
  };
  for (int t : {1, 2})
    for (int b : {1, 2}) {
      at::set_num_threads(t);
      set_blas_threads(b);
      print("cnn_step_b" + std::to_string(batch),
            time_it(step, 10, std::max(10, iters / 4)),
            "torch_threads=" + std::to_string(t) +
                ",blas_threads=" + std::to_string(b) + conv_backend());
    }
}

// conv2d(x, w, pad 1) forward and backward of sum(y): dw, and dx when
// `need_dx`.
void bench_conv(const std::string &name, int64_t n, int64_t c, int64_t hw,
                int64_t o, bool need_dx, int iters) {
  torch::manual_seed(0);
  auto x = torch::randn({n, c, hw, hw}).requires_grad_(need_dx);
  auto w = (torch::randn({o, c, 3, 3}) * 0.1).requires_grad_(true);
  std::vector<torch::Tensor> wrt = {w};
  if (need_dx)
    wrt.push_back(x);
  auto run = [&] {
    auto loss = torch::conv2d(x, w, {}, 1, 1).sum();
    auto g = torch::autograd::grad({loss}, wrt);
    (void)g;
  };
  for (int t : {1, 2})
    for (int b : {1, 2}) {
      at::set_num_threads(t);
      set_blas_threads(b);
      print(name + "_fwdbwd", time_it(run, 10, iters),
            "torch_threads=" + std::to_string(t) +
                ",blas_threads=" + std::to_string(b) + conv_backend());
    }
}

} // namespace

int main(int argc, char **argv) {
  int iters = argc > 1 ? std::atoi(argv[1]) : 200;
  std::string section = argc > 2 ? argv[2] : "mlp";
  bool step = section == "cnn" || section == "cnn-step";
  bool conv = section == "cnn" || section == "conv";
  if (step) {
    bench_cnn(64, iters);
    bench_cnn(256, iters);
  }
  if (conv) {
    bench_conv("conv1", 64, 1, 28, 32, /*need_dx=*/false, iters);
    bench_conv("conv2", 64, 32, 14, 64, /*need_dx=*/true, iters);
  }
  if (step || conv)
    return 0;
  if (section != "mlp") {
    std::fprintf(stderr,
                 "kiln_torch_peer: unknown section '%s' (mlp, cnn, cnn-step, "
                 "conv)\n",
                 section.c_str());
    return 2;
  }
  bench_mlp(64, iters);
  bench_mlp(256, iters);
  set_blas_threads(1);
  bench_elementwise(1000000, std::max(20, iters / 4));
  bench_elementwise(16000000, std::max(10, iters / 20));
  return 0;
}
