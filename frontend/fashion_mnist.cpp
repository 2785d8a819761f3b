#include "frontend/fashion_mnist.h"

#include "frontend/idx.h"
#include "ir/error.h"

#include <fmt/ranges.h>

#include <cstdlib>
#include <filesystem>

namespace kiln {

namespace {

namespace fs = std::filesystem;

// Debian ships the .gz files; a user who unpacked them keeps working.
std::string find_file(const std::string &dir, const std::string &stem) {
  fs::path gz = fs::path(dir) / (stem + ".gz");
  fs::path plain = fs::path(dir) / stem;
  if (!fs::exists(gz) && fs::exists(plain))
    return plain.string();
  return gz.string();
}

// Loads one IDX file of unsigned bytes and checks its shape against
// `inner` (the dimensions after the example count).
IdxArray load_u8(const std::string &path, const std::vector<int64_t> &inner) {
  IdxArray a = read_idx(path);
  if (a.type != IdxType::u8)
    fail("{}: fashion-mnist expects unsigned byte data (type 0x08), got type "
         "0x{:02x}",
         path, static_cast<unsigned>(a.type));
  std::vector<int64_t> got(a.dims.begin() + 1, a.dims.end());
  if (got != inner)
    fail("{}: fashion-mnist expects dimensions [N{}{}], got [{}]", path,
         inner.empty() ? "" : ",", fmt::join(inner, ","),
         fmt::join(a.dims, ","));
  return a;
}

} // namespace

std::string FashionMnist::default_dir() {
  const char *env = std::getenv("KILN_DATA_DIR");
  if (env && *env)
    return env;
  return std::string(kDefaultDir);
}

std::string_view FashionMnist::class_name(int64_t label) {
  static constexpr std::string_view names[kClasses] = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  if (label < 0 || label >= kClasses)
    fail("fashion-mnist: label {} outside [0, {})", label, kClasses);
  return names[label];
}

FashionMnist::FashionMnist(Split split, std::string dir,
                           FashionMnistOptions options)
    : dir_(dir.empty() ? default_dir() : std::move(dir)), options_(options) {
  if (!fs::is_directory(dir_))
    fail("fashion-mnist: directory {} not found; install the data set with "
         "`apt-get install dataset-fashion-mnist`, or point KILN_DATA_DIR at a "
         "directory holding its files",
         dir_);
  std::string prefix = split == Split::train ? "train" : "t10k";
  std::string images_path = find_file(dir_, prefix + "-images-idx3-ubyte");
  std::string labels_path = find_file(dir_, prefix + "-labels-idx1-ubyte");

  IdxArray images = load_u8(images_path, {kRows, kCols});
  IdxArray labels = load_u8(labels_path, {});
  if (images.dims[0] != labels.dims[0])
    fail("fashion-mnist: {} holds {} images but {} holds {} labels",
         images_path, images.dims[0], labels_path, labels.dims[0]);
  for (size_t i = 0; i < labels.data.size(); ++i)
    if (labels.data[i] >= kClasses)
      fail("{}: label {} of example {} is outside [0, {})", labels_path,
           labels.data[i], i, kClasses);
  pixels_ = std::move(images.data);
  labels_ = std::move(labels.data);
  for (int v = 0; v < 256; ++v)
    lut_[v] = (static_cast<float>(v) / 255.0f - kMean) / kStd;
}

Shape FashionMnist::sample_shape() const {
  if (options_.flatten)
    return {kRows * kCols};
  return {1, kRows, kCols};
}

Example FashionMnist::get(size_t i) const {
  Example e;
  e.x.resize(kRows * kCols);
  e.label = read_into(i, e.x.data());
  return e;
}

int64_t FashionMnist::read_into(size_t i, float *x) const {
  if (i >= labels_.size())
    fail("fashion-mnist: index {} out of range for size {}", i, labels_.size());
  const uint8_t *src = pixels_.data() + i * kRows * kCols;
  for (int64_t k = 0; k < kRows * kCols; ++k)
    x[k] = lut_[src[k]];
  return labels_[i];
}

} // namespace kiln
