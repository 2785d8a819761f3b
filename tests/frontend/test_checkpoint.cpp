// Checkpoints (frontend/checkpoint.h): parameters and optimizer state survive
// a save/load round trip exactly; training, saving, loading into a fresh
// model and optimizer and continuing is bit-identical to training without the
// interruption; a damaged or mismatched file is a kiln::Error naming the path
// and leaves the model as it was.
#include "frontend/checkpoint.h"
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "ir/error.h"
#include "runtime/safetensors.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr int64_t B = 8;
const Type kX{DType::f32, {B, 12}}, kY{DType::i32, {B}};

MlpOptions small_mlp(std::vector<int64_t> hidden = {10, 6}) {
  MlpOptions o;
  o.in_features = 12;
  o.hidden = std::move(hidden);
  o.out_features = 4;
  return o;
}

std::pair<Array, Array> batch(int k) {
  Array x(kX), y(kY);
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set(i, std::sin(0.37 * static_cast<double>(i + 13 * k)));
  for (int64_t i = 0; i < B; ++i)
    y.set(i, static_cast<double>((i + k) % 4));
  return {x, y};
}

enum class Opt { sgd, adam };

std::unique_ptr<optim::Optimizer> make_opt(Opt kind, nn::Module &m) {
  if (kind == Opt::sgd) {
    optim::SGDOptions o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    return std::make_unique<optim::SGD>(m.parameters(), o);
  }
  optim::AdamOptions o;
  o.lr = 0.01;
  o.weight_decay = 1e-3;
  return std::make_unique<optim::Adam>(m.parameters(), o);
}

// Runs steps [first, last) of the fixed batch sequence.
void train(nn::Module &m, optim::Optimizer &opt, int first, int last) {
  TrainStep step = compile_train_step(m, nn::cross_entropy, opt, kX, kY);
  for (int k = first; k < last; ++k) {
    auto [x, y] = batch(k);
    double l = step(x, y);
    ASSERT_TRUE(std::isfinite(l));
  }
}

std::vector<uint8_t> bytes_of(const Array &a) {
  const auto *p = static_cast<const uint8_t *>(a.data());
  return {p, p + a.bytes()};
}

// Every parameter's bytes by name.
std::map<std::string, std::vector<uint8_t>> snapshot(const nn::Module &m) {
  std::map<std::string, std::vector<uint8_t>> s;
  for (const auto &[name, p] : m.named_parameters())
    s[name] = bytes_of(p->value());
  return s;
}

std::map<std::string, std::vector<uint8_t>>
snapshot_state(optim::Optimizer &opt) {
  std::map<std::string, std::vector<uint8_t>> s;
  for (const auto &[name, a] : opt.named_state())
    s[name] = bytes_of(*a);
  return s;
}

// The names whose bytes differ between two snapshots ("" when none), so a
// failure names tensors instead of dumping bytes.
std::string changed(const std::map<std::string, std::vector<uint8_t>> &a,
                    const std::map<std::string, std::vector<uint8_t>> &b) {
  std::string out;
  for (const auto &[name, bytes] : a) {
    auto it = b.find(name);
    if (it == b.end() || it->second != bytes)
      out += (out.empty() ? "" : ", ") + name;
  }
  for (const auto &[name, bytes] : b)
    if (!a.count(name))
      out += (out.empty() ? "" : ", ") + name;
  return out;
}

// A fresh folder per test, removed afterwards.
fs::path test_dir(const char *prefix) {
  std::string name =
      ::testing::UnitTest::GetInstance()->current_test_info()->name();
  for (char &c : name)
    if (c == '/')
      c = '_'; // parameterized tests are named "Case/Param"
  fs::path d = fs::temp_directory_path() /
               fmt::format("{}-{}-{}", prefix, ::getpid(), name);
  fs::create_directories(d);
  return d;
}

class CheckpointTest : public ::testing::TestWithParam<Opt> {
protected:
  void SetUp() override { dir_ = test_dir("kiln-ckpt"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string &name) const {
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_P(CheckpointTest, RoundTripOfParamsAndOptimizerState) {
  manual_seed(1);
  auto m = make_mlp(small_mlp());
  auto opt = make_opt(GetParam(), *m);
  train(*m, *opt, 0, 2);
  auto params = snapshot(*m);
  auto state = snapshot_state(*opt);
  ASSERT_FALSE(state.empty());
  std::string file = path("a.safetensors");
  save_checkpoint(file, *m, opt.get(), {{"epoch", "2"}});

  manual_seed(99); // a different initialisation
  auto m2 = make_mlp(small_mlp());
  auto opt2 = make_opt(GetParam(), *m2);
  ASSERT_NE(changed(params, snapshot(*m2)), "");
  CheckpointMetadata meta = load_checkpoint(file, *m2, opt2.get());
  EXPECT_EQ(meta.at("epoch"), "2");
  EXPECT_EQ(meta.at("format"), "kiln-checkpoint-2");
  EXPECT_EQ(changed(params, snapshot(*m2)), "");
  EXPECT_EQ(changed(state, snapshot_state(*opt2)), "");
  // The state slots a fresh optimizer lacked were created with their names.
  for (const auto &[name, bytes] : state)
    EXPECT_TRUE(snapshot_state(*opt2).count(name)) << name;
}

TEST_P(CheckpointTest, ResumingIsBitIdenticalToUninterruptedTraining) {
  manual_seed(2);
  auto a = make_mlp(small_mlp());
  auto opt_a = make_opt(GetParam(), *a);
  train(*a, *opt_a, 0, 3);
  std::string file = path("resume.safetensors");
  save_checkpoint(file, *a, opt_a.get(), {{"step", "3"}});
  train(*a, *opt_a, 3, 6);

  manual_seed(77);
  auto b = make_mlp(small_mlp());
  auto opt_b = make_opt(GetParam(), *b);
  load_checkpoint(file, *b, opt_b.get());
  train(*b, *opt_b, 3, 6);
  EXPECT_EQ(changed(snapshot(*a), snapshot(*b)), "");
  EXPECT_EQ(changed(snapshot_state(*opt_a), snapshot_state(*opt_b)), "");

  // Without the optimizer state the trajectory differs (the test can fail).
  manual_seed(77);
  auto c = make_mlp(small_mlp());
  auto opt_c = make_opt(GetParam(), *c);
  load_checkpoint(file, *c, nullptr);
  train(*c, *opt_c, 3, 6);
  EXPECT_NE(changed(snapshot(*a), snapshot(*c)), "");
}

INSTANTIATE_TEST_SUITE_P(Optimizers, CheckpointTest,
                         ::testing::Values(Opt::sgd, Opt::adam),
                         [](const auto &info) {
                           return info.param == Opt::sgd ? "SGD" : "Adam";
                         });

// ---- failures --------------------------------------------------------------

class BadCheckpoint : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = test_dir("kiln-badckpt");
    manual_seed(5);
    model_ = make_mlp(small_mlp());
    opt_ = make_opt(Opt::sgd, *model_);
    train(*model_, *opt_, 0, 1);
    good_ = (dir_ / "good.safetensors").string();
    save_checkpoint(good_, *model_, opt_.get(), {{"epoch", "1"}});
    // The model that loads: different values, so a partial load shows.
    manual_seed(6);
    target_ = make_mlp(small_mlp());
    target_opt_ = make_opt(Opt::sgd, *target_);
    before_ = snapshot(*target_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<char> read(const std::string &p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
  }
  std::string write(const std::string &name, const std::vector<char> &data) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary).write(data.data(), data.size());
    return p;
  }
  // Loading `p` into the target throws a kiln::Error whose message names
  // `p` and contains `what`, and changes no parameter.
  void expect_load_fails(const std::string &p, const std::string &what,
                         bool with_opt = true) {
    try {
      load_checkpoint(p, *target_, with_opt ? target_opt_.get() : nullptr);
      ADD_FAILURE() << "loading " << p << " succeeded";
    } catch (const Error &e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
      last_error_ = msg;
    }
    EXPECT_EQ(changed(before_, snapshot(*target_)), "")
        << "a failed load changed parameters";
    EXPECT_TRUE(snapshot_state(*target_opt_).empty())
        << "a failed load created optimizer state";
  }

  fs::path dir_;
  std::shared_ptr<Mlp> model_, target_;
  std::unique_ptr<optim::Optimizer> opt_, target_opt_;
  std::string good_, last_error_;
  std::map<std::string, std::vector<uint8_t>> before_;

  // good_ edited by `edit`, written to `name`.
  template <typename F> std::string edited(const std::string &name, F edit) {
    SafeTensorsFile f = load_safetensors(good_);
    edit(f);
    std::string p = (dir_ / name).string();
    save_safetensors(p, f.tensors, f.metadata);
    return p;
  }
};

TEST_F(BadCheckpoint, TheGoodFileLoads) {
  load_checkpoint(good_, *target_, target_opt_.get());
  EXPECT_EQ(changed(snapshot(*model_), snapshot(*target_)), "");
}

TEST_F(BadCheckpoint, Truncated) {
  std::vector<char> data = read(good_);
  ASSERT_GT(data.size(), 100u);
  for (size_t keep :
       {data.size() - 1, data.size() / 2, size_t{20}, size_t{3}, size_t{0}}) {
    SCOPED_TRACE(keep);
    std::vector<char> cut(data.begin(), data.begin() + keep);
    expect_load_fails(write("cut.safetensors", cut), "");
  }
}

TEST_F(BadCheckpoint, FlippedHeaderBytes) {
  std::vector<char> data = read(good_);
  uint64_t header = 0;
  std::memcpy(&header, data.data(), 8);
  ASSERT_LT(8 + header, data.size());
  // The length prefix, the JSON's opening brace, a dtype, an offset digit.
  std::string json(data.data() + 8, header);
  std::vector<size_t> at = {1, 7, 8, 8 + json.find("F32") + 1,
                            8 + json.find("data_offsets") + 16};
  for (size_t i : at) {
    SCOPED_TRACE(i);
    std::vector<char> bad = data;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    expect_load_fails(write("flipped.safetensors", bad), "");
  }
}

TEST_F(BadCheckpoint, AnotherModelShape) {
  manual_seed(7);
  auto other = make_mlp(small_mlp({9, 6}));
  std::string p = (dir_ / "other.safetensors").string();
  save_checkpoint(p, *other, nullptr, {});
  expect_load_fails(p, "fc1.weight");
}

TEST_F(BadCheckpoint, MissingParameter) {
  SafeTensorsFile f = load_safetensors(good_);
  ASSERT_EQ(f.tensors.erase("model.fc2.bias"), 1u);
  std::string p = (dir_ / "missing.safetensors").string();
  save_safetensors(p, f.tensors, f.metadata);
  expect_load_fails(p, "parameter 'fc2.bias' is missing");
}

// A mistyped optimizer buffer is rejected before any parameter is written
// (load_checkpoint checks every state tensor with Optimizer::check_state
// first).
TEST_F(BadCheckpoint, MistypedOptimizerState) {
  SafeTensorsFile f = load_safetensors(good_);
  SafeTensor &buf = f.tensors.at("optim.fc1.bias.momentum_buffer");
  buf.shape = {5, 2}; // 10 elements, as many bytes, another shape
  std::string p = (dir_ / "state.safetensors").string();
  save_safetensors(p, f.tensors, f.metadata);
  expect_load_fails(p, "fc1.bias.momentum_buffer");
}

// Item 8 of issue 15: optimizer state that is missing, another optimizer's,
// or extra is an error naming the tensors, never a silent fresh start.
TEST_F(BadCheckpoint, OneMomentumBufferMissing) {
  std::string p = edited("one.safetensors", [](SafeTensorsFile &f) {
    ASSERT_EQ(f.tensors.erase("optim.fc2.weight.momentum_buffer"), 1u);
  });
  expect_load_fails(p, "sgd optimizer state is missing: "
                       "'optim.fc2.weight.momentum_buffer'");
}

TEST_F(BadCheckpoint, AllOptimizerStateMissing) {
  std::string p = edited("none.safetensors", [](SafeTensorsFile &f) {
    std::erase_if(f.tensors, [](const auto &kv) {
      return kv.first.rfind("optim.", 0) == 0;
    });
  });
  expect_load_fails(p, "'optim.fc1.bias.momentum_buffer', "
                       "'optim.fc1.weight.momentum_buffer'");
  // A checkpoint saved without an optimizer has no state to resume from.
  std::string w = (dir_ / "weights.safetensors").string();
  save_checkpoint(w, *model_, nullptr, {});
  expect_load_fails(w, "holds no optimizer kind");
}

TEST_F(BadCheckpoint, AnotherOptimizersState) {
  target_opt_ = make_opt(Opt::adam, *target_);
  expect_load_fails(good_, "holds sgd optimizer state, not adam");
  // Without the metadata the tensors still give it away.
  std::string p = edited("relabelled.safetensors", [](SafeTensorsFile &f) {
    f.metadata["optimizer"] = "adam";
  });
  expect_load_fails(p, "'optim.fc1.bias.momentum_buffer'");
  EXPECT_NE(last_error_.find("does not have"), std::string::npos)
      << last_error_;
}

TEST_F(BadCheckpoint, ExtraOptimizerState) {
  std::string p = edited("extra_state.safetensors", [](SafeTensorsFile &f) {
    f.tensors["optim.fc1.weight.exp_avg"] =
        f.tensors.at("optim.fc1.weight.momentum_buffer");
  });
  expect_load_fails(p, "does not have: 'optim.fc1.weight.exp_avg'");
}

// Loading the weights only (no optimizer) skips the optimizer state on
// purpose, but a tensor that is no parameter of the model is still an error.
TEST_F(BadCheckpoint, ExtraTensorWithoutOptimizer) {
  load_checkpoint(good_, *target_, nullptr);
  EXPECT_EQ(changed(snapshot(*model_), snapshot(*target_)), "");
  manual_seed(6);
  target_ = make_mlp(small_mlp());
  std::string p = edited("extra.safetensors", [](SafeTensorsFile &f) {
    f.tensors["model.fc9.weight"] = f.tensors.at("model.fc1.weight");
    f.tensors["other"] = f.tensors.at("model.fc1.bias");
  });
  expect_load_fails(p, "does not have: 'model.fc9.weight', 'other'",
                    /*with_opt=*/false);
}

// A tensor name is file content: quoted escaped, never raw bytes.
TEST_F(BadCheckpoint, ExtraTensorNamesAreEscaped) {
  std::string p = edited("escaped.safetensors", [](SafeTensorsFile &f) {
    f.tensors["bad\x1b[2Jname"] = f.tensors.at("model.fc1.bias");
  });
  expect_load_fails(p, "does not have: 'bad\\x1b[2Jname'",
                    /*with_opt=*/false);
}

// Item 18 of issue 15: a NaN in a checkpoint names the tensor (the loss
// would only go NaN later, and `kiln train` blamed the lr).
TEST_F(BadCheckpoint, NonFiniteValues) {
  for (std::string name :
       {"model.fc2.weight", "optim.fc3.bias.momentum_buffer"}) {
    SCOPED_TRACE(name);
    std::string p = edited("nan.safetensors", [&](SafeTensorsFile &f) {
      float nan = std::nanf("");
      std::memcpy(f.tensors.at(name).bytes.data() + 4, &nan, 4);
    });
    expect_load_fails(p, "tensor '" + name +
                             "' holds non-finite values (element 1 is nan)");
  }
}

// A checkpoint written before the first step holds the zero state every
// slot starts from, so it resumes like a fresh optimizer.
TEST_F(BadCheckpoint, SavedBeforeTheFirstStep) {
  manual_seed(8);
  auto fresh = make_mlp(small_mlp());
  auto fresh_opt = make_opt(Opt::adam, *fresh);
  std::string p = (dir_ / "fresh.safetensors").string();
  save_checkpoint(p, *fresh, fresh_opt.get(), {});
  SafeTensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.metadata.at("optimizer"), "adam");
  EXPECT_TRUE(f.tensors.count("optim.adam.step"));
  EXPECT_TRUE(f.tensors.count("optim.fc1.weight.exp_avg_sq"));
  target_opt_ = make_opt(Opt::adam, *target_);
  load_checkpoint(p, *target_, target_opt_.get());
  train(*fresh, *fresh_opt, 0, 2);
  train(*target_, *target_opt_, 0, 2);
  EXPECT_EQ(changed(snapshot(*fresh), snapshot(*target_)), "");
}

TEST_F(BadCheckpoint, NotAKilnCheckpoint) {
  SafeTensorsFile f = load_safetensors(good_);
  f.metadata.erase("format");
  std::string p = (dir_ / "plain.safetensors").string();
  save_safetensors(p, f.tensors, f.metadata);
  expect_load_fails(p, "not a kiln checkpoint");
}

TEST_F(BadCheckpoint, MissingFile) {
  expect_load_fails((dir_ / "nowhere.safetensors").string(), "");
}

// Issue 13: Linear weights are [out, in] (as in PyTorch) from checkpoint
// format 2 on; a format-1 file (weights [in, out]) is refused with the
// reason, never loaded transposed.
TEST_F(BadCheckpoint, SavesFormat2WithOutInWeights) {
  SafeTensorsFile f = load_safetensors(good_);
  EXPECT_EQ(f.metadata.at("format"), "kiln-checkpoint-2");
  EXPECT_EQ(f.tensors.at("model.fc1.weight").shape,
            (std::vector<int64_t>{10, 12}));
}

TEST_F(BadCheckpoint, OlderFormatIsRefusedWithTheReason) {
  std::string p = edited("v1.safetensors", [](SafeTensorsFile &f) {
    f.metadata["format"] = "kiln-checkpoint-1";
  });
  expect_load_fails(p, "checkpoint format kiln-checkpoint-1 is from an older "
                       "kiln, which stored Linear weights transposed ([in, "
                       "out]); this kiln stores them [out, in]");
  // load_state_dict refuses it too.
  EXPECT_THROW(load_state_dict(p, *target_), Error);
  EXPECT_EQ(changed(before_, snapshot(*target_)), "");
}

// load_state_dict: a state_dict by name (PyTorch's names, no "model."), as
// save_state_dict writes it.
class StateDict : public BadCheckpoint {
protected:
  // model_'s parameters under their own names, each as `dtype`.
  std::map<std::string, SafeTensor>
  torch_names(const std::string &prefix = "") {
    SafeTensorsFile f = load_safetensors(good_);
    std::map<std::string, SafeTensor> out;
    for (auto &[name, t] : f.tensors)
      if (name.rfind("model.", 0) == 0)
        out[prefix + name.substr(6)] = t;
    return out;
  }
  std::string write_st(const std::string &name,
                       const std::map<std::string, SafeTensor> &tensors) {
    std::string p = (dir_ / name).string();
    save_safetensors(p, tensors, {{"format", "pt"}});
    return p;
  }
  // load_state_dict(p) throws; returns the message after checking that it
  // names p and that nothing was loaded.
  std::string load_error(const std::string &p, StateDictOptions o = {}) {
    std::string msg;
    try {
      load_state_dict(p, *target_, o);
      ADD_FAILURE() << "loading " << p << " succeeded";
    } catch (const Error &e) {
      msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
    }
    EXPECT_EQ(changed(before_, snapshot(*target_)), "")
        << "a failed load changed parameters";
    return msg;
  }
};

TEST_F(StateDict, LoadsTorchNamesAndKilnCheckpoints) {
  std::string p = (dir_ / "sd.safetensors").string();
  save_state_dict(p, *model_);
  SafeTensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_TRUE(f.tensors.count("fc1.weight"));
  load_state_dict(p, *target_);
  EXPECT_EQ(changed(snapshot(*model_), snapshot(*target_)), "");
  // A kiln checkpoint: "model." by itself, the optimizer state skipped.
  manual_seed(6);
  target_ = make_mlp(small_mlp());
  load_state_dict(good_, *target_);
  EXPECT_EQ(changed(snapshot(*model_), snapshot(*target_)), "");
}

TEST_F(StateDict, PrefixedNamesLoadWithThePrefixAndHintWithout) {
  std::string p = write_st("prefixed.safetensors", torch_names("model."));
  std::string msg = load_error(p);
  EXPECT_NE(msg.find("6 missing, 6 unexpected, 0 mismatched"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("load with StateDictOptions::prefix = \"model.\""),
            std::string::npos)
      << msg;
  load_state_dict(p, *target_, {.prefix = "model.", .strict = true});
  EXPECT_EQ(changed(snapshot(*model_), snapshot(*target_)), "");
}

// One error lists every missing, unexpected and mis-shaped tensor, each
// with the expected and actual type; a transposed weight says so.
TEST_F(StateDict, AMismatchListsEveryBadTensorInOneMessage) {
  auto t = torch_names();
  ASSERT_EQ(t.erase("fc2.bias"), 1u);
  ASSERT_EQ(t.erase("fc3.weight"), 1u);
  t["fc4.weight"] = t.at("fc1.bias");
  t["extra"] = t.at("fc1.bias");
  t.at("fc1.weight").shape = {12, 10}; // the old [in, out] layout
  t.at("fc2.weight").shape = {5, 12};  // 60 elements, as [6, 10]
  t.at("fc3.bias").dtype = "I32";      // 4 bytes per element, as F32
  std::string msg = load_error(write_st("bad.safetensors", t));
  for (const char *want :
       {"2 missing, 2 unexpected, 3 mismatched", "missing: 'fc2.bias' (f32[6])",
        "missing: 'fc3.weight' (f32[4,6])", "unexpected: 'extra' (F32[10])",
        "unexpected: 'fc4.weight' (F32[10])",
        "mismatched: 'fc1.weight' is F32[12,10], expected f32[10,12] "
        "(transposed: kiln stores Linear weights [out, in] as PyTorch does)",
        "mismatched: 'fc2.weight' is F32[5,12], expected f32[6,10]",
        "mismatched: 'fc3.bias' is I32[4], expected f32[4]"})
    EXPECT_NE(msg.find(want), std::string::npos) << want << "\n" << msg;
  // strict = false: missing and unexpected are allowed, mismatches are not.
  msg = load_error(write_st("bad.safetensors", t),
                   {.prefix = "", .strict = false});
  EXPECT_NE(msg.find("0 missing, 0 unexpected, 3 mismatched"),
            std::string::npos)
      << msg;
}

// F16, BF16 and F64 tensors convert to the parameters' f32.
TEST_F(StateDict, HalfBfloat16AndDoubleConvert) {
  auto t = torch_names();
  auto convert = [](SafeTensor &s, const std::string &dtype) {
    std::vector<float> v(s.bytes.size() / 4);
    std::memcpy(v.data(), s.bytes.data(), s.bytes.size());
    s.dtype = dtype;
    s.bytes.clear();
    for (float x : v) {
      uint32_t bits;
      std::memcpy(&bits, &x, 4);
      if (dtype == "BF16") { // truncated; the load widens it exactly
        bits &= 0xffff0000u;
        s.bytes.push_back(static_cast<uint8_t>(bits >> 16));
        s.bytes.push_back(static_cast<uint8_t>(bits >> 24));
      } else {
        double d = x;
        const auto *p = reinterpret_cast<const uint8_t *>(&d);
        s.bytes.insert(s.bytes.end(), p, p + 8);
      }
    }
  };
  convert(t.at("fc1.weight"), "BF16");
  convert(t.at("fc2.weight"), "F64");
  // F16 1.0, -2.0, 0.5, 2^-24 (subnormal), 0, 65504, then 1.0.
  std::vector<uint16_t> half = {0x3c00, 0xc000, 0x3800, 0x0001, 0x0000, 0x7bff};
  SafeTensor &b = t.at("fc2.bias");
  b.dtype = "F16";
  b.bytes.resize(12);
  std::memcpy(b.bytes.data(), half.data(), 12);
  load_state_dict(write_st("mixed.safetensors", t), *target_);
  const Array &w1 = model_->named_parameters()[0].second->value();
  auto params = target_->named_parameters();
  ASSERT_EQ(params[0].first, "fc1.weight");
  for (int64_t i = 0; i < w1.numel(); ++i) {
    float x = static_cast<float>(w1.get(i));
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    bits &= 0xffff0000u;
    float want;
    std::memcpy(&want, &bits, 4);
    ASSERT_EQ(params[0].second->value().get(i), want) << i;
  }
  ASSERT_EQ(params[2].first, "fc2.weight");
  EXPECT_EQ(
      changed({{"w", bytes_of(model_->named_parameters()[2].second->value())}},
              {{"w", bytes_of(params[2].second->value())}}),
      "");
  ASSERT_EQ(params[3].first, "fc2.bias");
  std::vector<double> want = {1.0, -2.0, 0.5, 0x1p-24, 0.0, 65504.0};
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(params[3].second->value().get(static_cast<int64_t>(i)), want[i]);
  // A non-finite value in a converted parameter is an error too.
  half[1] = 0x7c00; // inf
  std::memcpy(b.bytes.data(), half.data(), 12);
  manual_seed(6);
  target_ = make_mlp(small_mlp());
  before_ = snapshot(*target_);
  std::string msg = load_error(write_st("inf.safetensors", t));
  EXPECT_NE(msg.find("mismatched: 'fc2.bias' holds non-finite values "
                     "(element 1 is inf)"),
            std::string::npos)
      << msg;
}

} // namespace
} // namespace kiln
