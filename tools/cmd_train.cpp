// `kiln train`: the main job. Trains the built-in MLP (784-256-128-10) on
// Fashion-MNIST with SGD (momentum 0.9, weight decay 5e-4) and a cosine
// annealed learning rate stepped every iteration, on the best device. Each
// batch size gets one compiled step (the last, smaller batch its own),
// evaluation its own small graph; after every epoch it prints the train loss,
// test accuracy and time, and writes a safetensors checkpoint atomically.
// --resume continues a checkpoint with its optimizer state (the same
// optimizer, every state tensor present), or with --reset-optimizer its
// weights only; a checkpoint already at --epochs, an empty data set or a
// damaged checkpoint is an error before anything trains.
#include "frontend/checkpoint.h"
#include "frontend/compile.h"
#include "frontend/dataloader.h"
#include "frontend/fashion_mnist.h"
#include "frontend/loss.h"
#include "frontend/lr_scheduler.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "ir/error.h"
#include "ir/escape.h"
#include "ir/printer.h"
#include "runtime/device.h"
#include "tools/commands.h"
#include "tools/progress_bar.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include <unistd.h>

namespace kiln {

namespace {

struct TrainArgs {
  int epochs = 5;
  int64_t batch_size = 64;
  double lr = 0.05;
  std::string optimizer = "sgd";
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double dropout = 0;
  std::string schedule = "cosine";
  int64_t seed = 0;
  std::string device; // "": KILN_DEVICE, else the best
  std::string checkpoint = "kiln-mlp.safetensors";
  std::string resume;
  bool reset_optimizer = false;
  std::string dump_ir;
  std::string data_dir;
  size_t train_subset = 0; // 0: all
  size_t test_subset = 0;
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainArgs &a,
                                                 nn::Module &model) {
  if (a.optimizer == "sgd")
    return std::make_unique<optim::SGD>(
        model.parameters(), optim::SGDOptions{.lr = a.lr,
                                              .momentum = a.momentum,
                                              .weight_decay = a.weight_decay});
  if (a.optimizer == "adam" || a.optimizer == "adamw") {
    optim::AdamOptions o{.lr = a.lr, .weight_decay = a.weight_decay};
    if (a.optimizer == "adam")
      return std::make_unique<optim::Adam>(model.parameters(), o);
    return std::make_unique<optim::AdamW>(model.parameters(), o);
  }
  fail("unknown optimizer '{}' (sgd, adam, adamw)", a.optimizer);
}

std::unique_ptr<optim::LRScheduler>
make_schedule(const TrainArgs &a, optim::Optimizer &opt, int64_t total) {
  if (a.schedule == "cosine")
    return std::make_unique<optim::CosineAnnealingLR>(opt, total);
  if (a.schedule == "none" || a.schedule == "constant")
    return nullptr;
  fail("unknown schedule '{}' (cosine, none)", a.schedule);
}

Array batch_x(const Batch &b) {
  Array x(Type{DType::f32, b.x_shape});
  std::memcpy(x.data(), b.x.data(), x.bytes());
  return x;
}

Array batch_y(const Batch &b) {
  Array y(Type{DType::i32, {static_cast<int64_t>(b.size())}});
  std::memcpy(y.data(), b.y.data(), y.bytes());
  return y;
}

// The checkpoint's metadata 'epoch', strictly: digits only (no sign, space or
// suffix), within int range.
int checkpoint_epoch(const std::string &path, const CheckpointMetadata &meta) {
  auto it = meta.find("epoch");
  if (it == meta.end())
    fail("{}: checkpoint metadata has no 'epoch'", path);
  const std::string &s = it->second;
  int epoch = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), epoch);
  if (s.empty() || s[0] < '0' || s[0] > '9' || ec != std::errc() ||
      end != s.data() + s.size())
    fail("{}: metadata 'epoch' is '{}', expected a whole number from 0 to {}",
         path, escape_for_message(s), std::numeric_limits<int>::max());
  return epoch;
}

// Accuracy of `model` on `data` (eval mode: no dropout, no backward).
double evaluate(nn::Module &model, const Dataset &data) {
  model.eval();
  DataLoader loader(data, {.batch_size = 500, .shuffle = false});
  int64_t correct = 0, total = 0;
  for (const Batch &b : loader) {
    Array logits = model(Tensor::from(batch_x(b), "x")).to_host();
    int64_t classes = logits.type().shape.back();
    const float *l = logits.as<float>();
    for (size_t i = 0; i < b.size(); ++i) {
      const float *row = l + i * classes;
      int64_t best = std::max_element(row, row + classes) - row;
      correct += best == b.y[i];
    }
    total += static_cast<int64_t>(b.size());
  }
  model.train();
  return total ? static_cast<double>(correct) / total : 0;
}

// The checkpoint is written after the first epoch: a folder that does not
// exist or cannot be written is an error now, not after minutes of training.
void check_checkpoint_folder(const std::string &checkpoint) {
  if (checkpoint.empty())
    return;
  namespace fs = std::filesystem;
  fs::path dir = fs::path(checkpoint).parent_path();
  if (dir.empty())
    dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("--checkpoint {}: the folder {} does not exist", checkpoint,
         dir.string());
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    fail("--checkpoint {}: the folder {} is not writable: {}", checkpoint,
         dir.string(), std::strerror(errno));
  if (fs::is_directory(checkpoint, ec))
    fail("--checkpoint {}: is a folder, expected a file name", checkpoint);
}

void train(const TrainArgs &a) {
  if (a.epochs < 1 || a.batch_size < 1)
    fail("--epochs and --batch-size must be at least 1");
  if (a.reset_optimizer && a.resume.empty())
    fail("--reset-optimizer needs --resume");
  if (!(a.dropout >= 0 && a.dropout < 1))
    fail("--dropout must be in [0, 1), got {}", a.dropout);
  if (a.seed < 0)
    fail("--seed must be 0 or more, got {}", a.seed);
  check_checkpoint_folder(a.checkpoint);
  set_default_backend(a.device.empty() ? best_backend()
                                       : backend_by_name(a.device));
  fmt::print("kiln train: MLP 784-256-128-10 on Fashion-MNIST, {} "
             "(batch {}, lr {}, {} schedule, {} epochs), backend {}\n",
             a.optimizer, a.batch_size, a.lr, a.schedule, a.epochs,
             default_backend().name());
  if (!a.dump_ir.empty()) {
    std::filesystem::create_directories(a.dump_ir);
    set_compile_options({.dump_dir = a.dump_ir});
  }

  // The checkpoint first: a bad one fails before the data set is read.
  manual_seed(static_cast<uint64_t>(a.seed));
  auto model = make_mlp({.dropout = a.dropout});
  auto opt = make_optimizer(a, *model);
  int first_epoch = 0;
  if (!a.resume.empty()) {
    CheckpointMetadata meta;
    try {
      meta = load_checkpoint(a.resume, *model,
                             a.reset_optimizer ? nullptr : opt.get());
    } catch (const Error &e) {
      // Optimizer state that does not fit (missing, another optimizer's)
      // can be left behind on request.
      std::string_view msg = e.what();
      if (!a.reset_optimizer && (msg.find("optimizer state") != msg.npos ||
                                 msg.find("optimizer kind") != msg.npos ||
                                 msg.find("'optim.") != msg.npos))
        fail("{}; --reset-optimizer resumes the weights only, with fresh "
             "optimizer state",
             msg);
      throw;
    }
    first_epoch = checkpoint_epoch(a.resume, meta);
    if (first_epoch >= a.epochs)
      fail("checkpoint {} is at epoch {}; --epochs {} trains nothing", a.resume,
           first_epoch, a.epochs);
    if (a.reset_optimizer)
      fmt::print("resumed the weights from {} after epoch {} (fresh {} "
                 "optimizer state)\n",
                 a.resume, first_epoch, opt->kind());
    else
      fmt::print("resumed from {} after epoch {}\n", a.resume, first_epoch);
  }

  FashionMnist train_full(Split::train, a.data_dir);
  FashionMnist test_full(Split::test, a.data_dir);
  Subset train_set = take_first(train_full, a.train_subset ? a.train_subset
                                                           : train_full.size());
  Subset test_set =
      take_first(test_full, a.test_subset ? a.test_subset : test_full.size());
  // Nothing to train on or to evaluate is an error, not a NaN loss or an
  // accuracy of 0.
  if (train_set.size() == 0)
    fail("the training set is empty: {} holds no training examples",
         train_full.dir());
  if (test_set.size() == 0)
    fail("the test set is empty: {} holds no test examples", test_full.dir());

  DataLoader loader(train_set, {.batch_size = a.batch_size,
                                .shuffle = true,
                                .seed = static_cast<uint64_t>(a.seed),
                                .drop_last = false});
  int64_t steps_per_epoch = static_cast<int64_t>(loader.num_batches());
  auto schedule = make_schedule(a, *opt, steps_per_epoch * a.epochs);

  if (schedule && first_epoch > 0) // O(1), whatever the epoch
    schedule->set_step(first_epoch * steps_per_epoch);

  // One compiled step per batch size (the last batch may be smaller).
  std::map<int64_t, TrainStep> steps;
  auto step_for = [&](int64_t n) -> TrainStep & {
    auto it = steps.find(n);
    if (it == steps.end()) {
      TrainStep s =
          compile_train_step(*model, nn::cross_entropy, *opt,
                             {DType::f32, {n, 784}}, {DType::i32, {n}});
      if (!a.dump_ir.empty())
        std::ofstream(fmt::format("{}/step-b{}.kir", a.dump_ir, n))
            << print(s.graph());
      it = steps.emplace(n, std::move(s)).first;
    }
    return it->second;
  };

  double accuracy = 0;
  for (int epoch = first_epoch; epoch < a.epochs; ++epoch) {
    loader.set_epoch(epoch);
    auto t0 = Clock::now();
    double loss_sum = 0, epoch_compile_secs = 0;
    int64_t done = 0;
    ProgressBar bar(fmt::format("epoch {}/{}", epoch + 1, a.epochs),
                    steps_per_epoch);
    for (const Batch &b : loader) {
      // A batch size's first step compiles it (the step is traced and
      // compiled on first use): that time is compiling, not stepping.
      auto n = static_cast<int64_t>(b.size());
      bool fresh = !steps.count(n);
      auto s0 = Clock::now();
      double loss = step_for(n)(batch_x(b), batch_y(b));
      if (fresh) {
        double c = seconds_since(s0);
        bar.exclude(c);
        epoch_compile_secs += c;
      }
      if (!std::isfinite(loss))
        fail("the loss became {} at epoch {} step {}; try a smaller --lr", loss,
             epoch + 1, done + 1);
      loss_sum += loss;
      ++done;
      if (schedule)
        schedule->step();
      bar.update(done, fmt::format("loss {:.4f}", loss_sum / done));
    }
    bar.done();
    double train_secs = seconds_since(t0);
    double step_secs = std::max(train_secs - epoch_compile_secs, 1e-9);
    accuracy = evaluate(*model, test_set);
    // steps/s counts stepping only; compiling is reported apart.
    std::string compiled =
        epoch_compile_secs > 0
            ? fmt::format(", compile and first step {:.2f} s",
                          epoch_compile_secs)
            : "";
    fmt::print("epoch {}/{}  train loss {:.4f}  test accuracy {:.4f}  "
               "time {:.1f} s ({:.0f} steps/s{})  lr {:.5f}\n",
               epoch + 1, a.epochs, loss_sum / done, accuracy, train_secs,
               done / step_secs, compiled, opt->lr());
    std::fflush(stdout);
    if (!a.checkpoint.empty())
      save_checkpoint(a.checkpoint, *model, opt.get(),
                      {{"epoch", std::to_string(epoch + 1)},
                       {"lr", fmt::format("{}", a.lr)},
                       {"test_accuracy", fmt::format("{:.4f}", accuracy)}});
  }
  fmt::print("final test accuracy {:.4f}\n", accuracy);
  if (!a.checkpoint.empty())
    fmt::print("checkpoint written to {}\n", a.checkpoint);
}

} // namespace

void add_train_command(CLI::App &app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App *cmd = app.add_subcommand(
      "train", "train the built-in MLP on Fashion-MNIST (the main job)");
  cmd->add_option("--epochs", args->epochs, "passes over the training set")
      ->capture_default_str();
  cmd->add_option("--batch-size", args->batch_size, "examples per step")
      ->capture_default_str();
  cmd->add_option("--lr", args->lr, "initial learning rate")
      ->capture_default_str();
  cmd->add_option("--optimizer", args->optimizer, "sgd, adam or adamw")
      ->capture_default_str();
  cmd->add_option("--momentum", args->momentum, "SGD momentum")
      ->capture_default_str();
  cmd->add_option("--weight-decay", args->weight_decay,
                  "weight decay (decoupled for adamw)")
      ->capture_default_str();
  cmd->add_option("--dropout", args->dropout, "dropout after each hidden layer")
      ->capture_default_str();
  cmd->add_option("--schedule", args->schedule,
                  "learning-rate schedule: cosine (per step) or none")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "initialisation, shuffle, dropout")
      ->capture_default_str();
  cmd->add_option("--device", args->device,
                  "best, cpu, cuda or interpreter (default: KILN_DEVICE, "
                  "else best)");
  cmd->add_option("--checkpoint", args->checkpoint,
                  "safetensors file written after every epoch ('' to skip)")
      ->capture_default_str();
  cmd->add_option("--resume", args->resume, "continue from this checkpoint");
  cmd->add_flag("--reset-optimizer", args->reset_optimizer,
                "with --resume: load the weights only and start the "
                "optimizer state afresh");
  cmd->add_option("--dump-ir", args->dump_ir,
                  "write the step IR after every pass to this folder");
  cmd->add_option("--data-dir", args->data_dir,
                  "Fashion-MNIST folder (default: KILN_DATA_DIR or "
                  "/usr/share/datasets/fashion-mnist)");
  cmd->add_option("--train-subset", args->train_subset,
                  "use only the first N training examples");
  cmd->add_option("--test-subset", args->test_subset,
                  "use only the first N test examples");
  cmd->callback([args] { train(*args); });
}

} // namespace kiln
