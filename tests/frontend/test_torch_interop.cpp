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

// Trains Net (20-16-3, ReLU) with SGD on synthetic data (labels from a noisy
// linear teacher, fixed seeds), then writes model_{F32,F16,BF16}.safetensors
// and test.safetensors: the held-out inputs x, labels y, and for each dtype
// PyTorch's predictions (computed with the weights rounded to that dtype,
// in f32, which is what kiln computes after widening them) and its accuracy
// and smallest top-2 logit margin as metadata.
constexpr const char *kScript = R"PY(
import json, struct, sys
import torch

out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)
D, H, C = 20, 16, 3
g = torch.Generator().manual_seed(1)
teacher = torch.randn(D, C, generator=g)

def data(n):
    x = torch.randn(n, D, generator=g)
    y = (x @ teacher + 0.8 * torch.randn(n, C, generator=g)).argmax(1)
    return x, y

xtr, ytr = data(1024)
xte, yte = data(400)

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(D, H)
        self.fc2 = torch.nn.Linear(H, C)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for step in range(300):
    i = torch.randint(0, len(xtr), (64,), generator=g)
    loss = torch.nn.functional.cross_entropy(model(xtr[i]), ytr[i])
    opt.zero_grad()
    loss.backward()
    opt.step()

def raw(t, dtype):
    t = t.detach().contiguous()
    if dtype == "F32":
        return t.float().numpy().tobytes()
    if dtype == "F16":
        return t.half().numpy().tobytes()
    if dtype == "BF16":
        return t.bfloat16().view(torch.int16).numpy().tobytes()
    if dtype == "I64":
        return t.long().numpy().tobytes()
    raise ValueError(dtype)

def save(path, tensors, metadata):
    header, blobs, off = {}, [], 0
    for name, (dtype, t) in tensors.items():
        data = raw(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)

sd = model.state_dict()
tensors = {"x": ("F32", xte), "y": ("I64", yte)}
meta = {}
for dtype, cast in [("F32", torch.float32), ("F16", torch.float16),
                    ("BF16", torch.bfloat16)]:
    save(f"{out}/model_{dtype}.safetensors",
         {k: (dtype, v) for k, v in sd.items()}, {"format": "pt"})
    m = Net()
    m.load_state_dict({k: v.to(cast).float() for k, v in sd.items()})
    with torch.no_grad():
        logits = m(xte)
    top2 = logits.topk(2, 1).values
    pred = logits.argmax(1)
    tensors[f"pred_{dtype}"] = ("I64", pred)
    meta[f"accuracy_{dtype}"] = repr((pred == yte).float().mean().item())
    meta[f"margin_{dtype}"] = repr((top2[:, 0] - top2[:, 1]).min().item())
save(f"{out}/test.safetensors", tensors, meta)
)PY";

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

TEST_F(TorchInterop, TorchTrainedMlpReproducesTorchPredictionsExactly) {
  const std::string &py = testing::python_with("torch, numpy");
  if (py.empty())
    GTEST_SKIP() << "no python3 with torch and numpy found (tried "
                    "$KILN_PYTHON, python3, /usr/bin/python3; "
                    "tools/install-deps.sh --with-torch installs it)";
  std::string script = path("export.py");
  testing::write_bytes(script, kScript);
  std::string cmd = fmt::format("'{}' '{}' '{}'", py, script, dir_.string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

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

  // Into a model of other widths (20-8-3): one error names every tensor.
  MlpOptions narrow;
  narrow.in_features = 20;
  narrow.hidden = {8};
  narrow.out_features = 3;
  auto other = make_mlp(narrow);
  std::string p = path("model_F32.safetensors");
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
