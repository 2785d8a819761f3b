// The LibTorch peer for `kiln bench`: the same MLP training step, SGD update
// and elementwise chain as kiln's benchmarks, timed with LibTorch (Debian's
// libtorch-dev, CPU). Built only when LibTorch is found; kiln itself never
// links it. Prints one tab-separated line per measurement:
//   name <TAB> median_ms <TAB> p90_ms <TAB> setting
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

} // namespace

int main(int argc, char **argv) {
  int iters = argc > 1 ? std::atoi(argv[1]) : 200;
  bench_mlp(64, iters);
  bench_mlp(256, iters);
  set_blas_threads(1);
  bench_elementwise(1000000, std::max(20, iters / 4));
  bench_elementwise(16000000, std::max(10, iters / 20));
  return 0;
}
