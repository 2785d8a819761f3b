// Loading PyTorch weights: a 20-16-3 MLP trained by PyTorch and exported as
// its state_dict in safetensors (export_torch_mlp.py made the files beside
// this one, with torch 1.13.1) loads by name into the same model written
// with kiln, which then predicts exactly what PyTorch predicted on the
// held-out set. Exits non-zero on any differing prediction.
//
//   pytorch_weights [EXPORT_DIR]
#include <kiln/kiln.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// The model as PyTorch's script defines it: fc1 (Linear 20 -> 16), ReLU,
// fc2 (Linear 16 -> 3). Same names, so the state_dict's keys
// ("fc1.weight", ...) are the parameters' names.
struct Net : kiln::nn::Module {
  kiln::nn::Linear fc1{nullptr}, fc2{nullptr};
  Net() {
    fc1 = register_module("fc1", kiln::nn::Linear(20, 16));
    fc2 = register_module("fc2", kiln::nn::Linear(16, 3));
  }
  kiln::Tensor forward(const kiln::Tensor &x) override {
    return fc2(kiln::relu(fc1(x)));
  }
};

static std::vector<int64_t> ints(const kiln::SafeTensor &t) {
  std::vector<int64_t> v(t.bytes.size() / sizeof(int64_t));
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

int main(int argc, char **argv) {
  std::string dir = argc > 1 ? argv[1] : EXPORT_DIR;
  kiln::SafeTensorsFile test =
      kiln::load_safetensors(dir + "/test.safetensors");
  const kiln::SafeTensor &xs = test.tensors.at("x");
  kiln::Array x(kiln::Type{kiln::DType::f32, xs.shape});
  std::memcpy(x.data(), xs.bytes.data(), xs.bytes.size());
  std::vector<int64_t> labels = ints(test.tensors.at("y"));
  const int64_t n = xs.shape[0];

  int bad = 0;
  for (std::string dtype : {"F32", "F16", "BF16"}) {
    Net net;
    // Missing, unexpected or mis-shaped tensors would be one error listing
    // them all; F16 and BF16 widen exactly to the parameters' f32.
    kiln::load_state_dict(dir + "/model_" + dtype + ".safetensors", net);
    net.eval();
    kiln::NoGradGuard no_grad;
    kiln::Array logits = net(kiln::Tensor::from(x, "x")).to_host();
    std::vector<int64_t> torch_pred = ints(test.tensors.at("pred_" + dtype));
    int64_t same = 0, correct = 0;
    for (int64_t i = 0; i < n; ++i) {
      int64_t best = 0;
      for (int64_t c = 1; c < 3; ++c)
        if (logits.get(i * 3 + c) > logits.get(i * 3 + best))
          best = c;
      same += best == torch_pred[i];
      correct += best == labels[i];
    }
    std::printf("%-4s weights: kiln accuracy %.4f, PyTorch %s; %lld/%lld "
                "predictions identical\n",
                dtype.c_str(), static_cast<double>(correct) / n,
                test.metadata.at("accuracy_" + dtype).c_str(),
                static_cast<long long>(same), static_cast<long long>(n));
    bad += same != n;
  }
  std::printf("device %s\n", kiln::current_device_name().c_str());
  if (bad) {
    std::fprintf(stderr, "error: kiln's predictions differ from PyTorch's\n");
    return 1;
  }
  return 0;
}
