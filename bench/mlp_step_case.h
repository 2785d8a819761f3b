// The MLP training step the benchmarks time (CPU: bench/bench_step.cpp,
// GPU: bench/gpu/gpu_bench.cpp): the `kiln train` model (784-256-128-10)
// with SGD (momentum 0.9, weight decay 5e-4) and a fixed batch.
#pragma once

#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "runtime/array.h"

#include <cmath>
#include <cstdint>
#include <memory>

namespace kiln {

struct StepCase {
  std::shared_ptr<Mlp> model;
  std::unique_ptr<optim::SGD> opt;
  Array x, y;
};

// x[i] = sin(0.37 i); label i is (label_step * i) mod 10.
inline StepCase make_step_case(int64_t batch, int64_t label_step) {
  StepCase c;
  manual_seed(0);
  c.model = make_mlp();
  c.opt = std::make_unique<optim::SGD>(
      c.model->parameters(),
      optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  c.x = Array({DType::f32, {batch, 784}});
  c.y = Array({DType::i32, {batch}});
  for (int64_t i = 0; i < c.x.numel(); ++i)
    c.x.set(i, std::sin(0.37 * static_cast<double>(i)));
  for (int64_t i = 0; i < batch; ++i)
    c.y.set(i, static_cast<double>((i * label_step) % 10));
  return c;
}

} // namespace kiln
