// DataLoader and the small data sets: each example exactly once per epoch,
// shuffle orders per (seed, epoch), drop_last, early exit, and worker errors
// reaching the consumer.
#include "frontend/dataloader.h"
#include "ir/error.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <chrono>
#include <set>
#include <thread>

namespace kiln {
namespace {

constexpr size_t kN = 103;

// Example i has x = [i*10 + k for k in 0..5] in shape [2,3] and label i % 7,
// so a batch tells which examples it holds.
TensorDataset make_data(size_t n = kN) {
  std::vector<float> x;
  std::vector<int64_t> y;
  for (size_t i = 0; i < n; ++i) {
    for (int k = 0; k < 6; ++k)
      x.push_back(static_cast<float>(i * 10 + k));
    y.push_back(static_cast<int64_t>(i % 7));
  }
  return TensorDataset({2, 3}, std::move(x), std::move(y));
}

// The example indices of one epoch, in order, checking each batch's layout.
std::vector<size_t> run_epoch(DataLoader &loader) {
  std::vector<size_t> seen;
  for (const Batch &b : loader) {
    EXPECT_EQ(b.x_shape.size(), 3u);
    EXPECT_EQ(b.x_shape[1], 2);
    EXPECT_EQ(b.x_shape[2], 3);
    EXPECT_EQ(b.x.size(), b.y.size() * 6);
    EXPECT_EQ(static_cast<size_t>(b.x_shape[0]), b.y.size());
    for (size_t j = 0; j < b.y.size(); ++j) {
      size_t i = static_cast<size_t>(b.x[j * 6]) / 10;
      EXPECT_EQ(b.x[j * 6 + 5], static_cast<float>(i * 10 + 5));
      EXPECT_EQ(b.y[j], static_cast<int32_t>(i % 7));
      seen.push_back(i);
    }
  }
  return seen;
}

TEST(DataLoader, EverySampleExactlyOncePerEpoch) {
  TensorDataset data = make_data();
  for (bool shuffle : {false, true})
    for (bool prefetch : {false, true}) {
      SCOPED_TRACE(testing::Message()
                   << "shuffle " << shuffle << " prefetch " << prefetch);
      DataLoader loader(data, {.batch_size = 10,
                               .shuffle = shuffle,
                               .seed = 3,
                               .prefetch = prefetch});
      for (int epoch = 0; epoch < 3; ++epoch) {
        std::vector<size_t> seen = run_epoch(loader);
        ASSERT_EQ(seen.size(), kN);
        std::set<size_t> unique(seen.begin(), seen.end());
        EXPECT_EQ(unique.size(), kN);
        EXPECT_EQ(*unique.rbegin(), kN - 1);
        EXPECT_EQ(seen, loader.order(static_cast<uint64_t>(epoch)));
      }
      EXPECT_EQ(loader.epoch(), 3u);
    }
}

TEST(DataLoader, WithoutShuffleKeepsDatasetOrder) {
  TensorDataset data = make_data();
  DataLoader loader(data, {.batch_size = 16});
  std::vector<size_t> seen = run_epoch(loader);
  for (size_t i = 0; i < kN; ++i)
    EXPECT_EQ(seen[i], i);
}

TEST(DataLoader, ShuffleDiffersPerEpochAndRepeatsPerSeed) {
  TensorDataset data = make_data();
  DataLoaderOptions opts{.batch_size = 8, .shuffle = true, .seed = 42};
  DataLoader a(data, opts), b(data, opts);
  std::vector<size_t> a0 = run_epoch(a), a1 = run_epoch(a);
  std::vector<size_t> b0 = run_epoch(b), b1 = run_epoch(b);
  EXPECT_NE(a0, a1);
  EXPECT_EQ(a0, b0);
  EXPECT_EQ(a1, b1);

  opts.seed = 43;
  DataLoader c(data, opts);
  EXPECT_NE(run_epoch(c), a0);

  // set_epoch replays an epoch's order, e.g. when resuming a run.
  a.set_epoch(1);
  EXPECT_EQ(run_epoch(a), a1);
  EXPECT_EQ(a.epoch(), 2u);
}

TEST(DataLoader, ShuffleOrderIsFixedAcrossBuilds) {
  // The permutation comes from kiln's own generator, not std::shuffle, so it
  // must not change with the standard library. Pin one small case.
  TensorDataset data = make_data(10);
  DataLoader loader(data, {.batch_size = 4, .shuffle = true, .seed = 7});
  std::vector<size_t> first = loader.order(0);
  DataLoader again(data, {.batch_size = 4, .shuffle = true, .seed = 7});
  EXPECT_EQ(again.order(0), first);
  std::vector<size_t> identity = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_NE(first, identity);
}

TEST(DataLoader, DropLastSizes) {
  TensorDataset data = make_data();
  DataLoader keep(data, {.batch_size = 10, .drop_last = false});
  DataLoader drop(data, {.batch_size = 10, .shuffle = true, .drop_last = true});
  EXPECT_EQ(keep.num_batches(), 11u);
  EXPECT_EQ(drop.num_batches(), 10u);

  std::vector<size_t> sizes;
  for (const Batch &b : keep)
    sizes.push_back(b.size());
  ASSERT_EQ(sizes.size(), 11u);
  for (size_t k = 0; k < 10; ++k)
    EXPECT_EQ(sizes[k], 10u);
  EXPECT_EQ(sizes.back(), 3u);

  size_t batches = 0, examples = 0;
  for (const Batch &b : drop) {
    EXPECT_EQ(b.x_shape[0], 10);
    ++batches;
    examples += b.size();
  }
  EXPECT_EQ(batches, 10u);
  EXPECT_EQ(examples, 100u);
}

// A loader whose epochs would have no batch is an error at construction
// (issue 15, item 10: a training loop over it did nothing and reported a
// NaN loss), naming why.
TEST(DataLoader, SmallAndEmptyDatasets) {
  TensorDataset three = make_data(3);
  DataLoader keep(three, {.batch_size = 5});
  EXPECT_EQ(keep.num_batches(), 1u);
  EXPECT_EQ(run_epoch(keep).size(), 3u);
  auto fails = [](const Dataset &d, DataLoaderOptions o,
                  const std::string &what) {
    try {
      DataLoader l(d, o);
      ADD_FAILURE() << "a loader with " << l.num_batches()
                    << " batches was accepted";
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos)
          << e.what();
    }
  };
  fails(three, {.batch_size = 5, .drop_last = true},
        "drop_last with 3 examples and batch_size 5 leaves no batch");
  TensorDataset empty({4}, {}, {});
  fails(empty, {.batch_size = 2, .shuffle = true}, "the dataset is empty");
}

TEST(DataLoader, RejectsBadBatchSize) {
  TensorDataset data = make_data();
  EXPECT_THROW(DataLoader(data, {.batch_size = 0}), Error);
}

// Slow reads make the worker sit in the middle of a batch or blocked on the
// full queue when the consumer leaves.
class SlowDataset : public Dataset {
public:
  size_t size() const override { return 64; }
  Shape sample_shape() const override { return {1}; }
  Example get(size_t i) const override {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    return {{static_cast<float>(i)}, 0};
  }
};

TEST(DataLoader, EarlyBreakJoinsCleanly) {
  SlowDataset data;
  DataLoader loader(data, {.batch_size = 4, .shuffle = true});
  for (int rep = 0; rep < 50; ++rep) {
    int n = 0;
    for (const Batch &b : loader) {
      EXPECT_EQ(b.size(), 4u);
      if (++n == 1 + rep % 3)
        break;
    }
    EXPECT_EQ(n, 1 + rep % 3);
  }
  // An iterator dropped right after begin(), before any batch was used.
  for (int rep = 0; rep < 20; ++rep)
    (void)loader.begin();
  // A full epoch still works afterwards.
  size_t total = 0;
  for (const Batch &b : loader)
    total += b.size();
  EXPECT_EQ(total, 64u);
}

// Example 25 cannot be read.
class FailingDataset : public Dataset {
public:
  size_t size() const override { return 40; }
  Shape sample_shape() const override { return {1}; }
  Example get(size_t i) const override {
    if (i == 25)
      fail("failing dataset: example {} is unreadable", i);
    return {{static_cast<float>(i)}, 1};
  }
};

TEST(DataLoader, WorkerErrorReachesTheConsumer) {
  FailingDataset data;
  for (bool prefetch : {false, true}) {
    DataLoader loader(data, {.batch_size = 10, .prefetch = prefetch});
    size_t delivered = 0;
    try {
      for (const Batch &b : loader)
        delivered += b.size();
      FAIL() << "expected the unreadable example to throw";
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find("example 25 is unreadable"),
                std::string::npos);
    }
    // Batches 0 and 1 are complete before the failing batch 2.
    EXPECT_EQ(delivered, 20u);
  }
  // A failure in the very first batch surfaces from begin().
  DataLoader first(data, {.batch_size = 40});
  EXPECT_THROW(first.begin(), Error);
}

// get() returning the wrong number of values is caught, not a buffer overrun.
class WrongSizeDataset : public Dataset {
public:
  size_t size() const override { return 2; }
  Shape sample_shape() const override { return {3}; }
  Example get(size_t) const override { return {{1.0f, 2.0f}, 0}; }
};

TEST(DataLoader, RejectsExampleOfWrongSize) {
  WrongSizeDataset data;
  DataLoader loader(data, {.batch_size = 2});
  EXPECT_THROW(loader.begin(), Error);
}

TEST(Dataset, TensorDatasetChecksItsInputs) {
  EXPECT_THROW(TensorDataset({2}, {1, 2, 3}, {0, 1}), Error);
  EXPECT_THROW(TensorDataset({1}, {1, 2}, {0, -1}), Error);
  EXPECT_THROW(TensorDataset({1}, {1, 2}, {0, 3}, /*num_classes=*/3), Error);
  TensorDataset d({1}, {5, 6}, {0, 4});
  EXPECT_EQ(d.num_classes(), 5);
  EXPECT_EQ(d.get(1).x, std::vector<float>{6});
  EXPECT_EQ(d.get(1).label, 4);
  EXPECT_THROW(d.get(2), Error);
}

TEST(Dataset, SubsetAndTakeFirst) {
  TensorDataset data = make_data(20);
  Subset s(data, {7, 3, 7});
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.sample_shape(), (Shape{2, 3}));
  EXPECT_EQ(s.num_classes(), 7);
  EXPECT_EQ(s.get(0).x[0], 70.0f);
  EXPECT_EQ(s.get(1).label, 3);
  EXPECT_THROW(Subset(data, {20}), Error);
  EXPECT_THROW(s.get(3), Error);

  Subset head = take_first(data, 5);
  EXPECT_EQ(head.size(), 5u);
  EXPECT_EQ(head.get(4).x[0], 40.0f);
  EXPECT_EQ(take_first(data, 1000).size(), 20u);

  DataLoader loader(head, {.batch_size = 2, .shuffle = true});
  std::vector<size_t> seen = run_epoch(loader);
  EXPECT_EQ(std::set<size_t>(seen.begin(), seen.end()),
            (std::set<size_t>{0, 1, 2, 3, 4}));
}

} // namespace
} // namespace kiln

namespace kiln {
namespace {

// split_indices (what `kiln train --val-split` holds out): sizes, disjoint
// and complete, each part sorted, the same for the same seed, another
// choice for another seed.
TEST(SplitIndices, DisjointSortedAndSeeded) {
  auto [kept, held] = split_indices(100, 30, 7);
  ASSERT_EQ(kept.size(), 70u);
  ASSERT_EQ(held.size(), 30u);
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
  EXPECT_TRUE(std::is_sorted(held.begin(), held.end()));
  std::vector<size_t> all = kept;
  all.insert(all.end(), held.begin(), held.end());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i)
    ASSERT_EQ(all[i], i);
  EXPECT_EQ(split_indices(100, 30, 7).second, held);
  EXPECT_NE(split_indices(100, 30, 8).second, held);
  // Not simply the first or last 30.
  EXPECT_NE(held.front(), 0u);
  EXPECT_NE(held.back(), 29u);
  EXPECT_TRUE(split_indices(5, 0, 1).second.empty());
}

} // namespace
} // namespace kiln
