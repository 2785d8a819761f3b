// `kiln train`: the main job. Trains the built-in MLP (784-256-128-10) on
// Fashion-MNIST with SGD (momentum 0.9, weight decay 5e-4) and a cosine
// annealed learning rate stepped every iteration, on the best device. Each
// batch size gets one compiled step (the last, smaller batch its own),
// evaluation its own small graph; after every epoch it prints the train loss,
// the validation loss and accuracy (--val-split examples held out of the
// training set, chosen by the seed; without them, the test accuracy) and time,
// and writes a safetensors checkpoint atomically. Test accuracy is measured at
// the end (every epoch with --test-every-epoch). --patience K stops after K
// epochs without a better validation loss, writes only improving epochs (so
// the checkpoint is the best one) and ends on the best weights. --l2 X adds
// X * sum(w^2) over every parameter to the loss differentiated (the train loss
// printed stays the cross-entropy); --hidden sets the MLP's widths.
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
#include "ir/profile.h"
#include "runtime/device.h"
#include "tools/commands.h"
#include "tools/profile_report.h"
#include "tools/progress_bar.h"
#include "tools/train_metrics.h"

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
  std::string metrics; // with metrics_given; else beside the checkpoint
  bool metrics_given = false;
  std::string plot; // SVG of the curves, "" for none
  std::string resume;
  bool reset_optimizer = false;
  std::string dump_ir;
  std::string data_dir;
  size_t train_subset = 0; // 0: all
  size_t test_subset = 0;
  int64_t val_split = -1; // -1: the default (see resolve_val_split)
  bool test_every_epoch = false;
  int patience = 0; // 0: no early stopping
  double l2 = 0;    // adds l2 * sum(w^2) to the loss
  std::string hidden = "256,128";
  std::string model = "mlp"; // mlp or cnn
  bool profile = false;      // profile the first epoch's steps
  std::string trace;         // with profile: the Chrome trace file
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

struct EvalResult {
  double loss = 0;     // mean cross-entropy
  double accuracy = 0; // fraction classified right
};

// Mean cross-entropy and accuracy of `model` on `data` in eval mode (no
// dropout, no backward): each batch realizes one forward graph with the
// logits and the batch's mean loss (compiled once per batch size, through
// the compile cache).
EvalResult evaluate(nn::Module &model, const Dataset &data) {
  NoGradGuard no_grad; // evaluation records no backward pass
  model.eval();
  DataLoader loader(data, {.batch_size = 500, .shuffle = false});
  int64_t correct = 0, total = 0;
  double loss_sum = 0;
  for (const Batch &b : loader) {
    Tensor logits_t = model(Tensor::from(batch_x(b), "x"));
    std::vector<Array> out = realize(
        {logits_t, nn::cross_entropy(logits_t, Tensor::from(batch_y(b), "y"))});
    const Array &logits = out[0];
    loss_sum += out[1].get(0) * static_cast<double>(b.size());
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
  if (!total)
    return {};
  return {loss_sum / static_cast<double>(total),
          static_cast<double>(correct) / static_cast<double>(total)};
}

// How many of `pool` training examples are held out for validation: --val-
// split N as given (an error when it leaves nothing to train on), or by
// default 5000, capped at a tenth of the pool so that a --train-subset run
// still trains on most of its examples.
size_t resolve_val_split(int64_t requested, size_t pool) {
  if (requested < -1)
    fail("--val-split must be 0 or more, got {}", requested);
  if (requested == -1)
    return std::min<size_t>(5000, pool / 10);
  if (static_cast<uint64_t>(requested) >= pool)
    fail("--val-split {} leaves nothing to train on: the training set holds "
         "{} examples",
         requested, pool);
  return static_cast<size_t>(requested);
}

// A number from the checkpoint metadata, or `fallback` when absent.
double metadata_number(const std::string &path, const CheckpointMetadata &meta,
                       const std::string &key, double fallback) {
  auto it = meta.find(key);
  if (it == meta.end())
    return fallback;
  const std::string &s = it->second;
  char *end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size())
    fail("{}: metadata '{}' is '{}', expected a number", path, key,
         escape_for_message(s));
  return v;
}

// The training step. Without --l2 it is compile_train_step's. With it, the
// loss differentiated is cross-entropy + l2 * sum(w^2) over every parameter,
// biases included (nn::l2_penalty(params, 2 * l2): the same parameters
// --weight-decay decays, so for plain SGD --l2 X follows --weight-decay 2X),
// while the step's output, the "train loss" printed, stays the cross-entropy
// alone, comparable between runs with and without the penalty.
TrainStep compile_step(nn::Module &model, optim::Optimizer &opt, double l2,
                       int64_t n) {
  Type x_type{DType::f32, {n, 784}}, y_type{DType::i32, {n}};
  if (l2 == 0)
    return compile_train_step(model, nn::cross_entropy, opt, x_type, y_type);
  TraceScope scope;
  Tensor x = Tensor::from(Array(x_type), "x");
  Tensor y = Tensor::from(Array(y_type), "y");
  opt.zero_grad();
  Tensor ce = nn::cross_entropy(model(x), y);
  Tensor loss = ce + nn::l2_penalty(model.parameters(), 2 * l2);
  loss.backward();
  opt.step();
  return TrainStep(scope.trace()->finish({ce.value()}, ""));
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

// --profile: the first epoch's compile phases and steps; the per-launch
// table of its last step and the Chrome trace of all of them.
void report_profile(const TrainArgs &a, std::string_view device) {
  std::vector<profile::Event> events = profile::take();
  std::vector<profile::Event> launches =
      last_step_launches(events, "full step");
  if (launches.empty()) // every batch was smaller than --batch-size
    launches = last_step_launches(events, "partial step");
  kiln::report_profile(
      events, launches,
      fmt::format("profile of the first epoch ({}; compile phases apart from "
                  "the steps):",
                  device),
      "the launches of its last full-batch step:", device,
      a.trace.empty() ? "kiln-train.trace.json" : a.trace);
}

void train(const TrainArgs &a) {
  if (a.epochs < 1 || a.batch_size < 1)
    fail("--epochs and --batch-size must be at least 1");
  if (a.reset_optimizer && a.resume.empty())
    fail("--reset-optimizer needs --resume");
  if (!a.trace.empty() && !a.profile)
    fail("--trace needs --profile");
  if (!(a.dropout >= 0 && a.dropout < 1))
    fail("--dropout must be in [0, 1), got {}", a.dropout);
  if (a.seed < 0)
    fail("--seed must be 0 or more, got {}", a.seed);
  if (a.patience < 0)
    fail("--patience must be 0 or more, got {}", a.patience);
  if (!(a.l2 >= 0) || !std::isfinite(a.l2))
    fail("--l2 must be 0 or more, got {}", a.l2);
  if (a.val_split < -1)
    fail("--val-split must be 0 or more, got {}", a.val_split);
  if (a.model != "mlp" && a.model != "cnn")
    fail("--model must be mlp or cnn, got '{}'", a.model);
  const bool cnn = a.model == "cnn";
  MlpOptions mlp{.hidden = parse_mlp_hidden(a.hidden), .dropout = a.dropout};
  check_checkpoint_folder(a.checkpoint);
  set_default_backend(a.device.empty() ? best_backend()
                                       : backend_by_name(a.device));
  fmt::print("kiln train: {} on Fashion-MNIST, {} "
             "(batch {}, lr {}, {} schedule, {} epochs), backend {}\n",
             cnn ? std::string("CNN conv32-conv64-128-10")
                 : "MLP " + mlp_shape_name(mlp),
             a.optimizer, a.batch_size, a.lr, a.schedule, a.epochs,
             default_backend().name());
  if (!a.dump_ir.empty()) {
    std::filesystem::create_directories(a.dump_ir);
    set_compile_options({.dump_dir = a.dump_ir});
  }

  // The checkpoint first: a bad one fails before the data set is read.
  manual_seed(static_cast<uint64_t>(a.seed));
  std::shared_ptr<nn::Module> model;
  if (cnn)
    model = make_cnn({.dropout = a.dropout});
  else
    model = make_mlp(mlp);
  auto opt = make_optimizer(a, *model);
  int first_epoch = 0;
  CheckpointMetadata meta; // the resumed checkpoint's
  if (!a.resume.empty()) {
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

  // Per-epoch metrics (tools/metrics_csv.h): CSV beside the checkpoint
  // unless --metrics says otherwise, and the curves with --plot.
  MetricsLog metrics(
      a.metrics_given ? a.metrics : metrics_path_for_checkpoint(a.checkpoint),
      a.plot, first_epoch,
      fmt::format("kiln train: {} lr {}, batch {}", a.optimizer, a.lr,
                  a.batch_size));

  FashionMnist train_full(Split::train, a.data_dir);
  FashionMnist test_full(Split::test, a.data_dir);
  Subset train_pool = take_first(
      train_full, a.train_subset ? a.train_subset : train_full.size());
  Subset test_set =
      take_first(test_full, a.test_subset ? a.test_subset : test_full.size());
  // Nothing to train on or to evaluate is an error, not a NaN loss or an
  // accuracy of 0.
  if (train_pool.size() == 0)
    fail("the training set is empty: {} holds no training examples",
         train_full.dir());
  if (test_set.size() == 0)
    fail("the test set is empty: {} holds no test examples", test_full.dir());
  // The validation examples come out of the training pool (the first
  // --train-subset examples), chosen by the seed.
  size_t n_val = resolve_val_split(a.val_split, train_pool.size());
  if (a.patience > 0 && n_val == 0)
    fail("--patience needs a validation set (--val-split N with N > 0)");
  auto [train_idx, val_idx] =
      split_indices(train_pool.size(), n_val, static_cast<uint64_t>(a.seed));
  Subset train_set(train_full, std::move(train_idx));
  Subset val_set(train_full, std::move(val_idx));
  bool has_val = n_val > 0;
  // A resumed run must hold out the same examples, or it would train on
  // what the checkpoint was validated on.
  std::string split_desc =
      fmt::format("{} of {} (seed {})", n_val, train_pool.size(), a.seed);
  if (auto it = meta.find("val_split");
      it != meta.end() && it->second != split_desc)
    fail("{}: the checkpoint was trained holding out {} examples for "
         "validation, this run {}; resume with the same --val-split, "
         "--train-subset and --seed",
         a.resume, escape_for_message(it->second), split_desc);
  if (has_val)
    fmt::print("validation: {} of the {} training examples held out (seed "
               "{}), {} to train on\n",
               n_val, train_pool.size(), a.seed, train_set.size());

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
      TrainStep s = compile_step(*model, *opt, a.l2, n);
      if (!a.dump_ir.empty())
        std::ofstream(fmt::format("{}/step-b{}.kir", a.dump_ir, n))
            << print(s.graph());
      it = steps.emplace(n, std::move(s)).first;
    }
    return it->second;
  };

  double accuracy = 0;
  bool accuracy_current = false; // measured on the weights the model holds
  // The best validation loss so far (a resumed checkpoint's own counts) and,
  // with --patience, that epoch's weights, restored at the end.
  double best_val = metadata_number(a.resume, meta, "val_loss",
                                    std::numeric_limits<double>::infinity());
  int best_epoch = std::isfinite(best_val) ? first_epoch : 0;
  std::vector<Array> best_weights;
  auto keep_best_weights = [&] {
    best_weights.clear();
    for (const auto &p : model->parameters())
      best_weights.push_back(std::as_const(*p).value().clone());
  };
  if (a.patience > 0 && best_epoch > 0)
    keep_best_weights();
  bool wrote_checkpoint = false;
  int last_epoch = first_epoch;
  if (a.profile) {
    profile::take();
    profile::set_enabled(true);
  }
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
      double loss;
      {
        // The profile's table shows a full-batch step, not a smaller last
        // batch.
        profile::Scope scope(
            profile::enabled() ? fmt::format("train step (batch {})", n) : "",
            n == a.batch_size ? "full step" : "partial step");
        loss = step_for(n)(batch_x(b), batch_y(b));
      }
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
    if (a.profile && epoch == first_epoch)
      profile::set_enabled(false); // evaluation is not part of the profile
    double train_secs = seconds_since(t0);
    double step_secs = std::max(train_secs - epoch_compile_secs, 1e-9);
    last_epoch = epoch + 1;
    EvalResult val;
    if (has_val)
      val = evaluate(*model, val_set);
    // Without a validation set the test set is all there is to watch.
    bool measure_test = a.test_every_epoch || !has_val;
    if (measure_test)
      accuracy = evaluate(*model, test_set).accuracy;
    accuracy_current = measure_test;
    bool improved = has_val && val.loss < best_val;
    if (improved) {
      best_val = val.loss;
      best_epoch = epoch + 1;
      if (a.patience > 0)
        keep_best_weights();
    }
    std::string measured =
        has_val ? fmt::format("  val loss {:.6f}  val accuracy {:.4f}",
                              val.loss, val.accuracy)
                : "";
    if (measure_test)
      measured += fmt::format("  test accuracy {:.4f}", accuracy);
    // steps/s counts stepping only; compiling is reported apart.
    std::string compiled =
        epoch_compile_secs > 0
            ? fmt::format(", compile and first step {:.2f} s",
                          epoch_compile_secs)
            : "";
    fmt::print("epoch {}/{}  train loss {:.6f}{}  "
               "time {:.1f} s ({:.0f} steps/s{})  lr {:.5f}\n",
               epoch + 1, a.epochs, loss_sum / done, measured, train_secs,
               done / step_secs, compiled, opt->lr());
    if (a.profile && epoch == first_epoch)
      report_profile(a, default_backend().name());
    std::fflush(stdout);
    EpochMetrics row;
    row.epoch = epoch + 1;
    row.train_loss = loss_sum / done;
    row.lr = opt->lr();
    row.seconds = train_secs;
    row.steps_per_s = done / step_secs;
    if (has_val) {
      row.val_loss = val.loss;
      row.val_accuracy = val.accuracy;
    }
    if (measure_test)
      row.test_accuracy = accuracy;
    metrics.add(row);
    // With --patience only an improving epoch is written: the file holds
    // the best validation loss's weights and optimizer state.
    if (!a.checkpoint.empty() && (a.patience == 0 || improved)) {
      CheckpointMetadata out = {{"epoch", std::to_string(epoch + 1)},
                                {"lr", fmt::format("{}", a.lr)},
                                {"model", a.model},
                                {"hidden", a.hidden},
                                {"val_split", split_desc}};
      if (measure_test)
        out["test_accuracy"] = fmt::format("{:.4f}", accuracy);
      if (has_val) {
        out["val_loss"] = fmt::format("{}", val.loss);
        out["val_accuracy"] = fmt::format("{:.4f}", val.accuracy);
      }
      save_checkpoint(a.checkpoint, *model, opt.get(), out);
      wrote_checkpoint = true;
    }
    if (a.patience > 0 && epoch + 1 - best_epoch >= a.patience) {
      fmt::print("early stopping: the validation loss has not improved for "
                 "{} epochs (best {:.6f} after epoch {})\n",
                 epoch + 1 - best_epoch, best_val, best_epoch);
      break;
    }
  }
  if (a.patience > 0 && !best_weights.empty() && best_epoch != last_epoch) {
    auto params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      Array &w = params[i]->value(); // marks it modified on the host
      std::memcpy(w.data(), best_weights[i].data(), w.bytes());
    }
    accuracy_current = false;
    fmt::print("restored the weights of epoch {} (best validation loss "
               "{:.6f})\n",
               best_epoch, best_val);
  }
  if (!accuracy_current)
    accuracy = evaluate(*model, test_set).accuracy;
  // The final test accuracy belongs to the weights the model now holds.
  metrics.set_test_accuracy(
      a.patience > 0 && !best_weights.empty() ? best_epoch : last_epoch,
      accuracy);
  fmt::print("final test accuracy {:.4f}\n", accuracy);
  if (wrote_checkpoint && a.patience > 0)
    fmt::print("checkpoint written to {} (the best validation loss, epoch "
               "{})\n",
               a.checkpoint, best_epoch);
  else if (wrote_checkpoint)
    fmt::print("checkpoint written to {}\n", a.checkpoint);
  else if (!a.checkpoint.empty())
    fmt::print("no epoch improved on the validation loss of {}; {} not "
               "written\n",
               a.resume, a.checkpoint);
  if (!metrics.csv_path().empty())
    fmt::print("metrics written to {}\n", metrics.csv_path());
  if (!metrics.svg_path().empty())
    fmt::print("plot written to {}\n", metrics.svg_path());
}

} // namespace

void add_train_command(CLI::App &app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App *cmd = app.add_subcommand(
      "train", "train the built-in MLP or CNN on Fashion-MNIST (the main job)");
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
  auto *dropout_opt = cmd->add_option(
      "--dropout", args->dropout,
      "dropout probability: the MLP's after each hidden layer (default 0), "
      "the CNN's before its last layer (default 0.25)");
  cmd->add_option("--schedule", args->schedule,
                  "learning-rate schedule: cosine (per step) or none")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "initialisation, shuffle, dropout")
      ->capture_default_str();
  cmd->add_option("--device", args->device,
                  "best, cpu, cuda or interpreter (default: KILN_DEVICE, "
                  "else best)");
  CLI::Option *checkpoint_opt =
      cmd->add_option(
             "--checkpoint", args->checkpoint,
             "safetensors file written after every epoch (with --patience: "
             "after each epoch that improves the validation loss); '' "
             "to skip")
          ->capture_default_str();
  CLI::Option *metrics_opt =
      cmd->add_option("--metrics", args->metrics,
                      "per-epoch metrics CSV (default: beside the checkpoint, "
                      "NAME.metrics.csv; '' to skip)");
  cmd->add_option("--plot", args->plot,
                  "draw loss and accuracy against epochs to this SVG file");
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
  cmd->add_option("--val-split", args->val_split,
                  "hold out N training examples (chosen by --seed) for "
                  "validation; 0: none (default: 5000, at most a tenth of "
                  "the training set)");
  cmd->add_flag("--test-every-epoch", args->test_every_epoch,
                "measure test accuracy after every epoch, not only at the end");
  cmd->add_option("--patience", args->patience,
                  "stop after K epochs without a better validation loss and "
                  "keep the best epoch's weights and checkpoint (0: off)")
      ->capture_default_str();
  cmd->add_option("--l2", args->l2,
                  "add X * sum(w^2) over every parameter (biases included) "
                  "to the loss; with plain SGD the same as --weight-decay 2X")
      ->capture_default_str();
  cmd->add_option("--model", args->model,
                  "the built-in model: mlp or cnn (the checkpoint's default "
                  "name follows it: kiln-cnn.safetensors)")
      ->capture_default_str();
  auto *hidden_opt =
      cmd->add_option("--hidden", args->hidden,
                      "the MLP's hidden layer widths, comma-separated");
  hidden_opt->capture_default_str();
  cmd->add_flag("--profile", args->profile,
                "profile the first epoch: a per-launch table of its last "
                "step, compile phases apart, and a Chrome trace");
  cmd->add_option("--trace", args->trace,
                  "with --profile: the trace file (default: "
                  "kiln-train.trace.json)");
  cmd->callback([args, metrics_opt, checkpoint_opt, dropout_opt, hidden_opt] {
    args->metrics_given = metrics_opt->count() > 0;
    if (dropout_opt->count() == 0)
      args->dropout = args->model == "cnn" ? CnnOptions{}.dropout : 0.0;
    if (args->model == "cnn" && hidden_opt->count() > 0)
      fail("--hidden sets the MLP's layer widths; the CNN's are fixed "
           "(frontend/models.h)");
    // The checkpoint's default name follows the model.
    if (args->model == "cnn" && checkpoint_opt->count() == 0)
      args->checkpoint = "kiln-cnn.safetensors";
    train(*args);
  });
}

} // namespace kiln
