#include "frontend/dataset.h"

#include "frontend/random.h"

#include "ir/error.h"

#include <algorithm>
#include <numeric>

namespace kiln {

int64_t Dataset::num_classes() const { return 0; }

int64_t Dataset::read_into(size_t i, float *x) const {
  Example e = get(i);
  // A data set whose get() disagrees with its own sample_shape() would
  // otherwise write past the batch buffer.
  size_t want = static_cast<size_t>(numel(sample_shape()));
  if (e.x.size() != want)
    fail("dataset example {} has {} values, expected {} for sample shape {}", i,
         e.x.size(), want, shape_str(sample_shape()));
  std::copy(e.x.begin(), e.x.end(), x);
  return e.label;
}

TensorDataset::TensorDataset(Shape sample_shape, std::vector<float> x,
                             std::vector<int64_t> labels, int64_t num_classes)
    : shape_(std::move(sample_shape)), x_(std::move(x)),
      labels_(std::move(labels)), num_classes_(num_classes) {
  for (int64_t d : shape_)
    if (d < 0)
      fail("tensor dataset: negative dimension in sample shape {}",
           shape_str(shape_));
  sample_numel_ = static_cast<size_t>(numel(shape_));
  if (x_.size() != labels_.size() * sample_numel_)
    fail("tensor dataset: {} labels of sample shape {} need {} values, got {}",
         labels_.size(), shape_str(shape_), labels_.size() * sample_numel_,
         x_.size());
  if (num_classes_ < 0)
    fail("tensor dataset: num_classes is {}, expected >= 0", num_classes_);
  if (num_classes_ == 0 && !labels_.empty())
    num_classes_ = *std::max_element(labels_.begin(), labels_.end()) + 1;
  for (size_t i = 0; i < labels_.size(); ++i)
    if (labels_[i] < 0 || labels_[i] >= num_classes_)
      fail("tensor dataset: label {} of example {} is outside [0, {})",
           labels_[i], i, num_classes_);
}

Example TensorDataset::get(size_t i) const {
  Example e;
  e.x.resize(sample_numel_);
  e.label = read_into(i, e.x.data());
  return e;
}

int64_t TensorDataset::read_into(size_t i, float *x) const {
  if (i >= labels_.size())
    fail("tensor dataset: index {} out of range for size {}", i,
         labels_.size());
  const float *src = x_.data() + i * sample_numel_;
  std::copy(src, src + sample_numel_, x);
  return labels_[i];
}

Subset::Subset(const Dataset &base, std::vector<size_t> indices)
    : base_(base), indices_(std::move(indices)) {
  size_t n = base_.size();
  for (size_t i = 0; i < indices_.size(); ++i)
    if (indices_[i] >= n)
      fail("subset: index {} (position {}) out of range for a dataset of size "
           "{}",
           indices_[i], i, n);
}

size_t Subset::base_index(size_t i) const {
  if (i >= indices_.size())
    fail("subset: index {} out of range for size {}", i, indices_.size());
  return indices_[i];
}

Example Subset::get(size_t i) const { return base_.get(base_index(i)); }

int64_t Subset::read_into(size_t i, float *x) const {
  return base_.read_into(base_index(i), x);
}

Subset take_first(const Dataset &base, size_t n) {
  std::vector<size_t> idx(std::min(n, base.size()));
  std::iota(idx.begin(), idx.end(), size_t{0});
  return Subset(base, std::move(idx));
}

std::pair<std::vector<size_t>, std::vector<size_t>>
split_indices(size_t pool, size_t n_held, uint64_t seed) {
  std::vector<size_t> perm(pool);
  for (size_t i = 0; i < pool; ++i)
    perm[i] = i;
  uint64_t state = seed ^ 0x6b696c6e2d76616cULL; // "kiln-val"
  for (size_t i = 0; i < n_held && i + 1 < pool; ++i) {
    size_t j = i + static_cast<size_t>(splitmix64(state) % (pool - i));
    std::swap(perm[i], perm[j]);
  }
  std::vector<size_t> held(perm.begin(), perm.begin() + n_held);
  std::vector<size_t> kept(perm.begin() + n_held, perm.end());
  std::sort(held.begin(), held.end());
  std::sort(kept.begin(), kept.end());
  return {std::move(kept), std::move(held)};
}

} // namespace kiln
