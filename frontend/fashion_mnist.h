// Fashion-MNIST (Zalando, 28x28 grey images of clothing, 10 classes), read
// from the gzip IDX files of Debian's dataset-fashion-mnist package.
#pragma once

#include "frontend/dataset.h"

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

enum class Split { train, test };

struct FashionMnistOptions {
  // true: each example is x: [784]; false: x: [1, 28, 28] (channels first).
  // The values are the same either way, only sample_shape() differs.
  bool flatten = true;
};

class FashionMnist : public Dataset {
public:
  static constexpr int64_t kRows = 28, kCols = 28, kClasses = 10;
  // Mean and standard deviation of the training pixels after scaling to
  // [0, 1]; every pixel is mapped to (p / 255 - kMean) / kStd.
  static constexpr float kMean = 0.2860f, kStd = 0.3530f;
  static constexpr std::string_view kDefaultDir =
      "/usr/share/datasets/fashion-mnist";

  // Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or the files
  // without .gz) from `dir`; an empty `dir` means default_dir(). Throws
  // kiln::Error for a missing directory (saying how to install it), a bad
  // file, or an image/label count mismatch.
  explicit FashionMnist(Split split, std::string dir = "",
                        FashionMnistOptions options = {});

  // $KILN_DATA_DIR when set and non-empty, else kDefaultDir.
  static std::string default_dir();
  // "T-shirt/top", "Trouser", ... for labels 0..9.
  static std::string_view class_name(int64_t label);

  size_t size() const override { return labels_.size(); }
  Example get(size_t i) const override;
  Shape sample_shape() const override;
  int64_t num_classes() const override { return kClasses; }
  int64_t read_into(size_t i, float *x) const override;

  // The directory the files were read from.
  const std::string &dir() const { return dir_; }

private:
  std::string dir_;
  FashionMnistOptions options_;
  std::vector<uint8_t> pixels_; // [N, 28, 28], raw 0..255
  std::vector<uint8_t> labels_; // [N], 0..9
  // Normalised value of each raw pixel value, so reads are one lookup.
  std::array<float, 256> lut_;
};

} // namespace kiln
