// DataLoader: cuts a Dataset into batches, optionally shuffled, with a
// background thread that prepares the next batch while the current one is in
// use.
//
//   DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 1});
//   for (int e = 0; e < epochs; ++e)
//     for (const Batch &b : loader) // each loop is one epoch
//       step(b.x_shape, b.x, b.y);
#pragma once

#include "frontend/dataset.h"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

namespace kiln {

struct DataLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = false;
  // With shuffle, epoch e's order depends only on (seed, e).
  uint64_t seed = 0;
  // Drop a last batch smaller than batch_size (keeps shapes static).
  bool drop_last = false;
  // Build the next batch on a background thread.
  bool prefetch = true;
};

struct Batch {
  Shape x_shape;          // [n, ...sample_shape]
  std::vector<float> x;   // x: [n, ...sample_shape], row-major
  std::vector<int32_t> y; // y: [n]
  size_t size() const { return y.size(); }
};

class DataLoader {
  struct Epoch;

public:
  struct Sentinel {};

  // Walks one epoch. Move-only: it owns the epoch's prefetch thread, which
  // it stops and joins when destroyed, also when the loop ends early.
  class Iterator {
  public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;

    Iterator(Iterator &&) noexcept;
    Iterator &operator=(Iterator &&) noexcept;
    ~Iterator();

    // Valid until the next increment.
    const Batch &operator*() const;
    const Batch *operator->() const { return &**this; }
    // Rethrows here an exception raised while building the batch.
    Iterator &operator++();
    void operator++(int) { ++*this; }
    bool operator==(Sentinel) const;

  private:
    friend class DataLoader;
    explicit Iterator(std::unique_ptr<Epoch> e);
    std::unique_ptr<Epoch> e_;
  };

  // `data` must outlive the loader and its iterators. Throws kiln::Error for
  // batch_size < 1 and when an epoch would have no batch (an empty dataset,
  // or drop_last with fewer examples than batch_size).
  DataLoader(const Dataset &data, DataLoaderOptions options);

  // Starts the next epoch (epoch() then increments).
  Iterator begin();
  Sentinel end() const { return {}; }

  size_t num_batches() const;
  // The epoch number the next begin() uses; it decides the shuffle order.
  uint64_t epoch() const { return epoch_; }
  void set_epoch(uint64_t epoch) { epoch_ = epoch; }
  // The order of example indices in that epoch (identity without shuffle).
  std::vector<size_t> order(uint64_t epoch) const;
  const DataLoaderOptions &options() const { return options_; }

private:
  const Dataset &data_;
  DataLoaderOptions options_;
  uint64_t epoch_ = 0;
};

} // namespace kiln
