// Data sets: a size and an indexed read of one (features, label) example.
// DataLoader batches them; FashionMnist and TensorDataset implement them.
#pragma once

#include "ir/types.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace kiln {

struct Example {
  std::vector<float> x; // numel(sample_shape()) values, row-major
  int64_t label = 0;
};

// get() and read_into() are const and may be called from DataLoader's
// background thread, so implementations must not mutate shared state there.
class Dataset {
public:
  virtual ~Dataset() = default;

  virtual size_t size() const = 0;
  virtual Example get(size_t i) const = 0;
  // The shape of one example's x, without the batch axis.
  virtual Shape sample_shape() const = 0;
  // Number of label classes; 0 when the data set does not know.
  virtual int64_t num_classes() const;

  // Writes example i's numel(sample_shape()) features to `x` and returns its
  // label. The default goes through get(); data sets override it to fill a
  // batch without a temporary vector per example.
  virtual int64_t read_into(size_t i, float *x) const;
};

// An in-memory data set: `x` holds labels.size() examples of `sample_shape`
// back to back.
class TensorDataset : public Dataset {
public:
  // Throws kiln::Error when x.size() != labels.size() * numel(sample_shape)
  // or a label is outside [0, num_classes). num_classes = 0 takes the
  // largest label + 1.
  TensorDataset(Shape sample_shape, std::vector<float> x,
                std::vector<int64_t> labels, int64_t num_classes = 0);

  size_t size() const override { return labels_.size(); }
  Example get(size_t i) const override;
  Shape sample_shape() const override { return shape_; }
  int64_t num_classes() const override { return num_classes_; }
  int64_t read_into(size_t i, float *x) const override;

private:
  Shape shape_;
  size_t sample_numel_;
  std::vector<float> x_;
  std::vector<int64_t> labels_;
  int64_t num_classes_;
};

// A view of chosen examples of another data set, in the given order. Holds a
// reference: `base` must outlive the Subset.
class Subset : public Dataset {
public:
  // Throws kiln::Error when an index is out of range.
  Subset(const Dataset &base, std::vector<size_t> indices);

  size_t size() const override { return indices_.size(); }
  Example get(size_t i) const override;
  Shape sample_shape() const override { return base_.sample_shape(); }
  int64_t num_classes() const override { return base_.num_classes(); }
  int64_t read_into(size_t i, float *x) const override;

private:
  size_t base_index(size_t i) const;

  const Dataset &base_;
  std::vector<size_t> indices_;
};

// The first min(n, base.size()) examples, e.g. for a quick run on part of a
// data set.
Subset take_first(const Dataset &base, size_t n);

// Splits indices 0..pool-1 into (kept, held out) with `n_held` held out,
// each in increasing order, chosen by `seed` alone (a Fisher-Yates
// permutation driven by splitmix64, the same on every platform): what
// `kiln train --val-split` holds out for validation.
std::pair<std::vector<size_t>, std::vector<size_t>>
split_indices(size_t pool, size_t n_held, uint64_t seed);

} // namespace kiln
