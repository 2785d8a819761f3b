// Issue 11, item 2: the host/device state contract through the frontend, on
// the CUDA backend (the emulated device under the `cudaemu` label; a real
// GPU under tools/gpu-check.sh). The CUDA backend keeps params and optimizer
// state on the device and updates them there; a checkpoint saved after CUDA
// training must hold the trained values (not the initial weights and zero
// momentum), a checkpoint loaded between steps and a host edit of a
// parameter must reach the device, and the checkpoint must reproduce the
// evaluation on the CPU. Every comparison is against the same training on
// the reference interpreter.
#include "frontend/checkpoint.h"
#include "frontend/compile.h"
#include "frontend/device.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "frontend/trace.h"
#include "runtime/cuda_backend.h"
#include "runtime/device.h"
#include "runtime/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include <unistd.h>

namespace kiln {
namespace {

constexpr int64_t kBatch = 32, kIn = 20;

MlpOptions small_mlp() {
  return {.in_features = kIn, .hidden = {16, 12}, .out_features = 3};
}

// Deterministic batches: step s gets its own x and labels.
Array batch_x(int s) {
  Array x(Type{DType::f32, {kBatch, kIn}});
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set(i, std::sin(0.1 * static_cast<double>(i) + 0.7 * s));
  return x;
}

Array batch_y(int s) {
  Array y(Type{DType::i32, {kBatch}});
  for (int64_t i = 0; i < kBatch; ++i)
    y.set(i, static_cast<double>((i * 7 + s) % 3));
  return y;
}

// A model, its optimizer and its compiled step on the default backend
// (seed 1, so every run starts from the same weights).
struct Training {
  std::shared_ptr<Mlp> model;
  std::unique_ptr<optim::SGD> opt;
  std::unique_ptr<TrainStep> step;
  Training() {
    manual_seed(1);
    model = make_mlp(small_mlp());
    opt = std::make_unique<optim::SGD>(
        model->parameters(),
        optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
    step = std::make_unique<TrainStep>(compile_train_step(
        *model, nn::cross_entropy, *opt, {DType::f32, {kBatch, kIn}},
        {DType::i32, {kBatch}}));
  }
  // A new learning rate every step (as a schedule sets it): the replayed
  // CUDA graph must read it each time.
  void steps(int from, int to) {
    for (int s = from; s < to; ++s) {
      opt->set_lr(0.1 * (1 + std::cos(0.4 * s)) / 2 + 0.01);
      (*step)(batch_x(s), batch_y(s));
    }
  }
};

// The model's logits on a fixed batch (eval mode), on the default backend.
Array logits(nn::Module &m) {
  m.eval();
  Array out = m(Tensor::from(batch_x(1000), "x")).to_host();
  m.train();
  return out;
}

std::unique_ptr<Backend> cpu_or_interpreter() {
#ifdef KILN_HAVE_CPU_RUNTIME
  return backend_by_name("cpu");
#else
  return make_interpreter_backend();
#endif
}

void expect_close(const Array &got, const Array &want, const std::string &what,
                  double tol = 1e-4) {
  ASSERT_EQ(got.type(), want.type()) << what;
  int bad = 0;
  for (int64_t i = 0; i < got.numel() && bad < 5; ++i) {
    double a = got.get(i), b = want.get(i);
    if (!(std::fabs(a - b) <= tol * (1 + std::fabs(b)))) {
      ADD_FAILURE() << what << " [" << i << "]: " << a << ", expected " << b;
      ++bad;
    }
  }
}

Array as_array(const SafeTensor &t, DType dt) {
  Array a(Type{dt, t.shape});
  EXPECT_EQ(t.bytes.size(), a.bytes());
  std::memcpy(a.data(), t.bytes.data(), std::min(t.bytes.size(), a.bytes()));
  return a;
}

// Two checkpoints hold the same tensors with values within `tol`; returns
// the largest |value| of the optimizer state in `got` (all zero is the
// data-loss symptom).
double expect_same_checkpoint(const std::string &got_path,
                              const std::string &want_path) {
  SafeTensorsFile got = load_safetensors(got_path),
                  want = load_safetensors(want_path);
  EXPECT_EQ(got.tensors.size(), want.tensors.size());
  double state_max = 0;
  for (const auto &[name, t] : want.tensors) {
    auto it = got.tensors.find(name);
    if (it == got.tensors.end()) {
      ADD_FAILURE() << "missing " << name;
      continue;
    }
    DType dt = t.dtype == "F32" ? DType::f32 : DType::i64;
    if (t.dtype != "F32" && t.dtype != "I64")
      continue;
    Array g = as_array(it->second, dt), w = as_array(t, dt);
    expect_close(g, w, name);
    if (name.rfind("optim.", 0) == 0)
      for (int64_t i = 0; i < g.numel(); ++i)
        state_max = std::max(state_max, std::fabs(g.get(i)));
  }
  return state_max;
}

class CudaCheckpoint : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!make_cuda_backend_if_available(&why))
      GTEST_SKIP() << "no CUDA device: " << why;
    dir_ = std::filesystem::temp_directory_path() /
           ("kiln-cuda-ckpt-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    set_default_backend(make_interpreter_backend());
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static void use_cuda() {
    std::string why;
    auto b = make_cuda_backend_if_available(&why);
    ASSERT_TRUE(b) << why;
    set_default_backend(std::move(b));
  }
  std::string path(const std::string &name) const {
    return (dir_ / name).string();
  }
  std::filesystem::path dir_;
};

// Train N steps on CUDA, save: the checkpoint equals the interpreter's
// (params and momentum), is not the initial state, and, loaded on the CPU,
// reproduces the evaluation.
TEST_F(CudaCheckpoint, SavedAfterCudaTrainingEqualsTheInterpretersAndReloads) {
  constexpr int kSteps = 8;
  set_default_backend(make_interpreter_backend());
  Training ref;
  save_checkpoint(path("init.safetensors"), *ref.model, ref.opt.get(), {});
  ref.steps(0, kSteps);
  save_checkpoint(path("ref.safetensors"), *ref.model, ref.opt.get(), {});
  Array ref_logits = logits(*ref.model);

  use_cuda();
  Training got;
  got.steps(0, kSteps);
  Array cuda_logits = logits(*got.model);
  save_checkpoint(path("cuda.safetensors"), *got.model, got.opt.get(), {});
  expect_close(cuda_logits, ref_logits, "logits evaluated on cuda");

  double state_max =
      expect_same_checkpoint(path("cuda.safetensors"), path("ref.safetensors"));
  EXPECT_GT(state_max, 1e-3) << "the momentum buffers were saved as zeros";
  // ... and the weights moved away from the initial ones.
  SafeTensorsFile init = load_safetensors(path("init.safetensors")),
                  cuda = load_safetensors(path("cuda.safetensors"));
  for (const auto &[name, t] : init.tensors) {
    if (name.rfind("model.", 0) == 0) {
      EXPECT_NE(t.bytes, cuda.tensors.at(name).bytes)
          << name << " was saved with its initial value";
    }
  }

  // Reloaded on the CPU (a fresh model from another seed), the evaluation
  // is the one the CUDA run and the interpreter run reported.
  set_default_backend(cpu_or_interpreter());
  manual_seed(99);
  auto fresh = make_mlp(small_mlp());
  optim::SGD fresh_opt(fresh->parameters(), {.lr = 0.1, .momentum = 0.9});
  load_checkpoint(path("cuda.safetensors"), *fresh, &fresh_opt);
  expect_close(logits(*fresh), ref_logits, "logits after reload on the cpu");
}

// A checkpoint loaded between CUDA steps (the executable is already bound to
// device copies) is what the next step starts from.
TEST_F(CudaCheckpoint, LoadedBetweenStepsReachesTheDevice) {
  set_default_backend(make_interpreter_backend());
  Training ref;
  ref.steps(0, 4);
  save_checkpoint(path("ref4.safetensors"), *ref.model, ref.opt.get(), {});
  ref.steps(4, 7);
  save_checkpoint(path("ref7.safetensors"), *ref.model, ref.opt.get(), {});

  use_cuda();
  Training got;
  got.steps(0, 2); // the device copies are ahead of the host now
  load_checkpoint(path("ref4.safetensors"), *got.model, got.opt.get());
  got.steps(4, 7);
  save_checkpoint(path("cuda7.safetensors"), *got.model, got.opt.get(), {});
  expect_same_checkpoint(path("cuda7.safetensors"), path("ref7.safetensors"));
}

// Parameter::value() and Tensor::to_host read the trained value (never the
// stale host copy), and a write through value() or a replaced Array reaches
// the device before the next step.
TEST_F(CudaCheckpoint, ParameterValueIsCurrentAndItsEditsReachTheDevice) {
  auto edit = [](Training &r) {
    auto p = r.model->parameters()[0];
    for (int64_t i = 0; i < 5; ++i)
      p->value().set(i, 0.25 * static_cast<double>(i));
    // ... and another parameter replaced by a new Array.
    auto q = r.model->parameters()[1];
    Array fresh(q->type());
    for (int64_t i = 0; i < fresh.numel(); ++i)
      fresh.set(i, std::cos(0.3 * static_cast<double>(i)) * 0.1);
    q->value() = fresh;
  };
  set_default_backend(make_interpreter_backend());
  Training ref;
  ref.steps(0, 3);
  edit(ref);
  ref.steps(3, 5);

  use_cuda();
  Training got;
  got.steps(0, 3);
  edit(got);
  got.steps(3, 5);
  auto pr = ref.model->parameters(), pg = got.model->parameters();
  ASSERT_EQ(pr.size(), pg.size());
  // Tensor::to_host of a parameter reads it through the step's backend.
  for (size_t i = 0; i < pr.size(); ++i)
    expect_close(pg[i]->tensor().to_host(), std::as_const(*pr[i]).value(),
                 pg[i]->name() + " (to_host)");
  for (size_t i = 0; i < pr.size(); ++i)
    expect_close(std::as_const(*pg[i]).value(), std::as_const(*pr[i]).value(),
                 pg[i]->name());
}

// A compiled step keeps its CUDA executable after set_default_backend
// switches to another backend: it still trains on the device, and
// Parameter::value() and a checkpoint save still read the trained values.
TEST_F(CudaCheckpoint, StepKeptAfterABackendSwitchIsStillRead) {
  set_default_backend(make_interpreter_backend());
  Training ref;
  ref.steps(0, 5);
  save_checkpoint(path("ref5.safetensors"), *ref.model, ref.opt.get(), {});

  use_cuda();
  Training got;
  got.steps(0, 3);
  set_default_backend(cpu_or_interpreter());
  got.steps(3, 5); // the step's executable is the CUDA one
  auto pr = ref.model->parameters(), pg = got.model->parameters();
  for (size_t i = 0; i < pr.size(); ++i)
    expect_close(std::as_const(*pg[i]).value(), std::as_const(*pr[i]).value(),
                 pg[i]->name());
  save_checkpoint(path("got5.safetensors"), *got.model, got.opt.get(), {});
  expect_same_checkpoint(path("got5.safetensors"), path("ref5.safetensors"));
}

// kiln::set_device (frontend/device.h) between steps of the familiar loop
// (issue 13, item 2): the CUDA steps' device copies of the params and the
// momentum are written back before the next device takes over, so the run
// equals the interpreter's.
TEST_F(CudaCheckpoint, SetDeviceMidTrainingCarriesTheDeviceState) {
  auto familiar = [](Mlp &m, optim::SGD &opt, int from, int to) {
    for (int s = from; s < to; ++s) {
      opt.zero_grad();
      Tensor loss = nn::cross_entropy(m(Tensor::from(batch_x(s), "x")),
                                      Tensor::from(batch_y(s), "y"));
      loss.backward();
      opt.step();
      loss.item();
    }
  };
  optim::SGDOptions o{.lr = 0.1, .momentum = 0.9};
  set_device(Device::interpreter);
  manual_seed(1);
  auto ref = make_mlp(small_mlp());
  optim::SGD ref_opt(ref->parameters(), o);
  familiar(*ref, ref_opt, 0, 6);

  set_device(Device::cuda);
  EXPECT_EQ(current_device(), Device::cuda);
  manual_seed(1);
  auto got = make_mlp(small_mlp());
  optim::SGD got_opt(got->parameters(), o);
  familiar(*got, got_opt, 0, 3);
#ifdef KILN_HAVE_CPU_RUNTIME
  set_device(Device::cpu);
#else
  set_device(Device::interpreter);
#endif
  familiar(*got, got_opt, 3, 6);
  auto pr = ref->parameters(), pg = got->parameters();
  ASSERT_EQ(pr.size(), pg.size());
  for (size_t i = 0; i < pr.size(); ++i)
    expect_close(std::as_const(*pg[i]).value(), std::as_const(*pr[i]).value(),
                 pg[i]->name());
}

} // namespace
} // namespace kiln
