// One epoch is an Epoch object owned by the iterator. With prefetch, a worker
// thread builds batches in order and hands each over through a one-slot
// queue: it builds batch k+1 while the consumer uses batch k, then waits for
// the slot to empty. Stopping sets a flag under the lock and joins, so
// breaking out of a loop neither hangs nor leaves a thread running. An
// exception in the worker is stored and rethrown to the consumer when it
// reaches the batch that failed.
#include "frontend/dataloader.h"

#include "frontend/random.h"

#include "ir/error.h"

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

namespace kiln {

namespace {

// Uniform in [0, bound) without modulo bias, by rejection.
uint64_t uniform_below(uint64_t &state, uint64_t bound) {
  uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    uint64_t r = splitmix64(state);
    if (r >= threshold)
      return r % bound;
  }
}

} // namespace

struct DataLoader::Epoch {
  const Dataset &data;
  Shape sample_shape;
  size_t sample_numel;
  size_t batch_size;
  std::vector<size_t> order;
  size_t num_batches;
  size_t pos = 0; // index of `current`; num_batches when finished
  Batch current;

  // Prefetch state, guarded by `m`.
  std::mutex m;
  std::condition_variable cv;
  std::optional<Batch> slot;
  std::exception_ptr error;
  bool stop = false;
  std::thread worker;

  Epoch(const Dataset &d, size_t bs, std::vector<size_t> ord, size_t nb,
        bool prefetch)
      : data(d), sample_shape(d.sample_shape()),
        sample_numel(static_cast<size_t>(numel(sample_shape))), batch_size(bs),
        order(std::move(ord)), num_batches(nb) {
    if (prefetch && num_batches > 0)
      worker = std::thread([this] { produce(); });
  }

  // Loads the first batch. Kept out of the constructor so that when it
  // throws, the destructor still runs and joins the worker.
  void start() {
    if (num_batches > 0)
      current = fetch(0);
  }

  ~Epoch() {
    {
      std::lock_guard<std::mutex> lock(m);
      stop = true;
    }
    cv.notify_all();
    if (worker.joinable())
      worker.join();
  }

  // Batch k holds examples order[k*bs, min((k+1)*bs, n)).
  Batch make_batch(size_t k) const {
    size_t begin = k * batch_size;
    size_t n = std::min(batch_size, order.size() - begin);
    Batch b;
    b.x_shape.reserve(sample_shape.size() + 1);
    b.x_shape.push_back(static_cast<int64_t>(n));
    b.x_shape.insert(b.x_shape.end(), sample_shape.begin(), sample_shape.end());
    b.x.resize(n * sample_numel);
    b.y.resize(n);
    for (size_t j = 0; j < n; ++j) {
      size_t idx = order[begin + j];
      int64_t label = data.read_into(idx, b.x.data() + j * sample_numel);
      if (label < std::numeric_limits<int32_t>::min() ||
          label > std::numeric_limits<int32_t>::max())
        fail("dataloader: label {} of example {} does not fit in int32", label,
             idx);
      b.y[j] = static_cast<int32_t>(label);
    }
    return b;
  }

  void produce() {
    for (size_t k = 0; k < num_batches; ++k) {
      {
        std::lock_guard<std::mutex> lock(m);
        if (stop)
          return;
      }
      Batch b;
      try {
        b = make_batch(k);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        error = std::current_exception();
        cv.notify_all();
        return;
      }
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return !slot || stop; });
      if (stop)
        return;
      slot = std::move(b);
      cv.notify_all();
    }
  }

  Batch fetch(size_t k) {
    if (!worker.joinable())
      return make_batch(k);
    std::unique_lock<std::mutex> lock(m);
    // The slot is checked first: batches finished before a failure are
    // delivered before the failure is reported.
    cv.wait(lock, [&] { return slot.has_value() || error; });
    if (!slot)
      std::rethrow_exception(error);
    Batch b = std::move(*slot);
    slot.reset();
    cv.notify_all();
    return b;
  }

  void advance() {
    assert(pos < num_batches && "advancing past the end of an epoch");
    if (pos + 1 == num_batches) {
      pos = num_batches;
      current = Batch{};
      return;
    }
    current = fetch(pos + 1);
    ++pos;
  }
};

DataLoader::Iterator::Iterator(std::unique_ptr<Epoch> e) : e_(std::move(e)) {}
DataLoader::Iterator::Iterator(Iterator &&) noexcept = default;
DataLoader::Iterator &
DataLoader::Iterator::operator=(Iterator &&) noexcept = default;
DataLoader::Iterator::~Iterator() = default;

const Batch &DataLoader::Iterator::operator*() const {
  assert(e_ && e_->pos < e_->num_batches && "dereferencing an end iterator");
  return e_->current;
}

DataLoader::Iterator &DataLoader::Iterator::operator++() {
  e_->advance();
  return *this;
}

bool DataLoader::Iterator::operator==(Sentinel) const {
  return !e_ || e_->pos >= e_->num_batches;
}

DataLoader::DataLoader(const Dataset &data, DataLoaderOptions options)
    : data_(data), options_(options) {
  if (options_.batch_size < 1)
    fail("dataloader: batch_size is {}, expected at least 1",
         options_.batch_size);
  // An epoch without a batch would make a training loop do nothing (and
  // average its loss over zero steps): say so here, where it is known.
  if (data_.size() == 0)
    fail("dataloader: the dataset is empty, so there is no batch to load");
  if (num_batches() == 0)
    fail("dataloader: drop_last with {} examples and batch_size {} leaves no "
         "batch",
         data_.size(), options_.batch_size);
}

size_t DataLoader::num_batches() const {
  size_t n = data_.size();
  size_t bs = static_cast<size_t>(options_.batch_size);
  return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

std::vector<size_t> DataLoader::order(uint64_t epoch) const {
  std::vector<size_t> idx(data_.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  if (!options_.shuffle)
    return idx;
  // Mix seed and epoch separately so that (seed, epoch) pairs like (1, 0) and
  // (0, 1) do not share a stream.
  uint64_t s = options_.seed;
  uint64_t e = epoch ^ 0x5DEECE66Dull;
  uint64_t state = splitmix64(s) ^ (splitmix64(e) * 3);
  // Fisher-Yates, from the back.
  for (size_t i = idx.size(); i > 1; --i)
    std::swap(idx[i - 1], idx[uniform_below(state, i)]);
  return idx;
}

DataLoader::Iterator DataLoader::begin() {
  uint64_t e = epoch_++;
  size_t nb = num_batches();
  std::vector<size_t> ord = order(e);
  // drop_last: the examples past the last full batch are simply not read.
  ord.resize(
      std::min(ord.size(), nb * static_cast<size_t>(options_.batch_size)));
  auto epoch = std::make_unique<Epoch>(data_, options_.batch_size,
                                       std::move(ord), nb, options_.prefetch);
  epoch->start();
  return Iterator(std::move(epoch));
}

} // namespace kiln
