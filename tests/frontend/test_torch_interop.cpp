// PyTorch interop (issue 13): a tiny MLP trained by PyTorch, its state_dict
// exported as safetensors (F32, F16 and BF16), loads into the equivalent
// kiln model with load_state_dict, and kiln's argmax predictions on
// PyTorch's held-out set are exactly PyTorch's (so is the accuracy).
//
// Needs a python3 with torch ($KILN_PYTHON, python3 or /usr/bin/python3;
// tools/install-deps.sh --with-torch installs python3-torch); the test is
// skipped, saying so, when there is none. The script writes the safetensors
// files by hand (8-byte little-endian header length, JSON header, raw
// bytes), the layout of safetensors.torch.save_file, so the `safetensors`
// package is not needed.
#include "frontend/checkpoint.h"
#include "frontend/models.h"
#include "frontend/random.h"
#include "ir/error.h"
#include "runtime/safetensors.h"

#include "../support/files.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace kiln {
namespace {

// The exporter: examples/pytorch_weights/export_torch_mlp.py (its comment
// says what it writes). The files it made with torch 1.13.1 are checked in
// beside it, so the check runs everywhere; where a python3 with torch is
// found it also runs on a fresh export.
const std::string kExample =
    std::string(KILN_SOURCE_DIR) + "/examples/pytorch_weights";

class TorchInterop : public testing::TempDirTest {
protected:
  TorchInterop() : TempDirTest("kiln-torch-interop") {}
};

std::vector<int64_t> ints(const SafeTensor &t) {
  EXPECT_EQ(t.dtype, "I64");
  std::vector<int64_t> v(t.bytes.size() / 8);
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

// kiln's predictions with the weights in `dir` are exactly PyTorch's.
void expect_torch_predictions(const std::string &dir) {
  auto path = [&](const std::string &f) { return dir + "/" + f; };
  SafeTensorsFile test = load_safetensors(path("test.safetensors"));
  const SafeTensor &xs = test.tensors.at("x");
  ASSERT_EQ(xs.dtype, "F32");
  ASSERT_EQ(xs.shape, (std::vector<int64_t>{400, 20}));
  Array x(Type{DType::f32, xs.shape});
  std::memcpy(x.data(), xs.bytes.data(), xs.bytes.size());
  std::vector<int64_t> y = ints(test.tensors.at("y"));

  for (const char *dtype : {"F32", "F16", "BF16"}) {
    SCOPED_TRACE(dtype);
    // The equivalent kiln model (other initial weights, all overwritten).
    MlpOptions o;
    o.in_features = 20;
    o.hidden = {16};
    o.out_features = 3;
    manual_seed(123);
    auto model = make_mlp(o);
    load_state_dict(path(fmt::format("model_{}.safetensors", dtype)), *model);
    model->eval();
    Array logits = (*model)(Tensor::from(x, "x")).to_host();
    ASSERT_EQ(logits.type().shape, (std::vector<int64_t>{400, 3}));
    std::vector<int64_t> want =
        ints(test.tensors.at(fmt::format("pred_{}", dtype)));
    int64_t same = 0, correct = 0, torch_correct = 0;
    for (int64_t i = 0; i < 400; ++i) {
      int64_t best = 0;
      for (int64_t c = 1; c < 3; ++c)
        if (logits.get(i * 3 + c) > logits.get(i * 3 + best))
          best = c;
      same += best == want[i];
      correct += best == y[i];
      torch_correct += want[i] == y[i];
      EXPECT_EQ(best, want[i]) << "sample " << i;
    }
    EXPECT_EQ(same, 400);
    EXPECT_EQ(correct, torch_correct);
    // The script's accuracy, as torch computed it (float32 mean).
    EXPECT_EQ(static_cast<float>(correct) / 400.0f,
              std::stof(test.metadata.at(fmt::format("accuracy_{}", dtype))));
    // Not a degenerate model: well above chance.
    EXPECT_GT(correct, 300);
    std::printf("%s: torch accuracy %s, kiln %.4f, %lld/400 predictions "
                "identical, smallest torch top-2 margin %s\n",
                dtype,
                test.metadata.at(fmt::format("accuracy_{}", dtype)).c_str(),
                correct / 400.0, static_cast<long long>(same),
                test.metadata.at(fmt::format("margin_{}", dtype)).c_str());
  }
}

TEST_F(TorchInterop, CheckedInTorchExportReproducesTorchPredictionsExactly) {
  expect_torch_predictions(kExample);
}

TEST_F(TorchInterop, FreshTorchExportReproducesTorchPredictionsExactly) {
  const std::string &py = testing::python_with("torch, numpy");
  if (py.empty())
    GTEST_SKIP() << "no python3 with torch and numpy found (tried "
                    "$KILN_PYTHON, python3, /usr/bin/python3; "
                    "tools/install-deps.sh --with-torch installs it); the "
                    "checked-in export is tested by "
                    "CheckedInTorchExportReproducesTorchPredictionsExactly";
  std::string cmd = fmt::format("'{}' '{}/export_torch_mlp.py' '{}'", py,
                                kExample, dir_.string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  expect_torch_predictions(dir_.string());
}

TEST_F(TorchInterop, AMisshapenStateDictListsEveryBadTensor) {
  // Into a model of other widths (20-8-3): one error names every tensor.
  MlpOptions narrow;
  narrow.in_features = 20;
  narrow.hidden = {8};
  narrow.out_features = 3;
  auto other = make_mlp(narrow);
  std::string p = kExample + "/model_F32.safetensors";
  try {
    load_state_dict(p, *other);
    ADD_FAILURE() << "a 20-16-3 state_dict loaded into a 20-8-3 model";
  } catch (const Error &e) {
    std::string msg = e.what();
    for (const char *want : {"0 missing, 0 unexpected, 3 mismatched",
                             "'fc1.weight' is F32[16,20], expected f32[8,20]",
                             "'fc1.bias' is F32[16], expected f32[8]",
                             "'fc2.weight' is F32[3,16], expected f32[3,8]"})
      EXPECT_NE(msg.find(want), std::string::npos) << want << "\n" << msg;
  }
}

} // namespace
} // namespace kiln
