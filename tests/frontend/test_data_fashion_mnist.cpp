// FashionMnist: the real files of dataset-fashion-mnist when installed, and
// small fake directories for the directory override and the error cases.
#include "frontend/dataloader.h"
#include "frontend/fashion_mnist.h"
#include "frontend/idx.h"
#include "ir/error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <unistd.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;

bool real_data_present() {
  return fs::exists(fs::path(FashionMnist::kDefaultDir) /
                    "t10k-labels-idx1-ubyte.gz");
}

#define SKIP_WITHOUT_DATA()                                                    \
  if (!real_data_present())                                                    \
  GTEST_SKIP() << "fashion-mnist not installed at "                            \
               << FashionMnist::kDefaultDir                                    \
               << " (apt-get install dataset-fashion-mnist)"

// Sets or unsets an environment variable for one scope.
class ScopedEnv {
public:
  ScopedEnv(const char *name, const char *value) : name_(name) {
    if (const char *old = std::getenv(name))
      old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

private:
  const char *name_;
  std::optional<std::string> old_;
};

TEST(FashionMnist, LoadsTrainAndTestSplits) {
  SKIP_WITHOUT_DATA();
  ScopedEnv env("KILN_DATA_DIR", nullptr);
  FashionMnist train(Split::train), test(Split::test);
  EXPECT_EQ(train.size(), 60000u);
  EXPECT_EQ(test.size(), 10000u);
  EXPECT_EQ(train.sample_shape(), (Shape{784}));
  EXPECT_EQ(train.num_classes(), 10);

  // Fashion-MNIST is balanced: 6000 and 1000 examples per class.
  std::vector<size_t> train_counts(10), test_counts(10);
  // Over the training set the normalised pixels have mean 0 and std 1, by
  // the choice of kMean and kStd.
  double sum = 0, sum_sq = 0;
  std::vector<float> x(784);
  for (size_t i = 0; i < train.size(); ++i) {
    int64_t label = train.read_into(i, x.data());
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++train_counts[label];
    for (float v : x) {
      sum += v;
      sum_sq += double(v) * v;
    }
  }
  for (size_t i = 0; i < test.size(); ++i) {
    int64_t label = test.get(i).label;
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++test_counts[label];
  }
  EXPECT_EQ(train_counts, std::vector<size_t>(10, 6000));
  EXPECT_EQ(test_counts, std::vector<size_t>(10, 1000));
  double n = 60000.0 * 784;
  double mean = sum / n, stddev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(stddev, 1.0, 0.01);

  // A pixel of 0 maps to -kMean/kStd, 255 to (1-kMean)/kStd.
  Example e = test.get(0);
  for (float v : e.x) {
    EXPECT_GE(v, -0.2860f / 0.3530f - 1e-5f);
    EXPECT_LE(v, (1 - 0.2860f) / 0.3530f + 1e-5f);
  }
}

TEST(FashionMnist, BatchesThroughADataLoader) {
  SKIP_WITHOUT_DATA();
  FashionMnist test(Split::test, std::string(FashionMnist::kDefaultDir),
                    {.flatten = false});
  EXPECT_EQ(test.sample_shape(), (Shape{1, 28, 28}));
  DataLoader loader(test, {.batch_size = 64, .shuffle = true, .seed = 1});
  EXPECT_EQ(loader.num_batches(), 157u);
  size_t n = 0;
  for (const Batch &b : loader) {
    EXPECT_EQ(b.x.size(), b.size() * 784);
    n += b.size();
  }
  EXPECT_EQ(n, 10000u);
}

TEST(FashionMnist, ClassNames) {
  EXPECT_EQ(FashionMnist::class_name(0), "T-shirt/top");
  EXPECT_EQ(FashionMnist::class_name(9), "Ankle boot");
  EXPECT_THROW(FashionMnist::class_name(10), Error);
}

// Writes a fake split with `images` images and `labels` labels into a
// fresh temporary directory.
class FakeDir : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kiln_fmnist_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write_split(const std::string &prefix, int64_t images, int64_t labels,
                   uint8_t max_label = 9) {
    IdxArray img{IdxType::u8, {images, 28, 28}, {}};
    img.data.resize(static_cast<size_t>(images) * 784);
    for (size_t i = 0; i < img.data.size(); ++i)
      img.data[i] = static_cast<uint8_t>(i % 256);
    IdxArray lab{IdxType::u8, {labels}, {}};
    for (int64_t i = 0; i < labels; ++i)
      lab.data.push_back(static_cast<uint8_t>(i % (max_label + 1)));
    write_idx((dir_ / (prefix + "-images-idx3-ubyte.gz")).string(), img, true);
    write_idx((dir_ / (prefix + "-labels-idx1-ubyte.gz")).string(), lab, true);
  }

  std::string error_of(Split split, const std::string &dir) {
    try {
      FashionMnist d(split, dir);
    } catch (const Error &e) {
      return e.what();
    }
    ADD_FAILURE() << "expected FashionMnist to throw";
    return "";
  }

  fs::path dir_;
};

TEST_F(FakeDir, ReadsTheDirectoryFromKilnDataDir) {
  write_split("t10k", 5, 5);
  ScopedEnv env("KILN_DATA_DIR", dir_.c_str());
  EXPECT_EQ(FashionMnist::default_dir(), dir_.string());
  FashionMnist d(Split::test);
  EXPECT_EQ(d.dir(), dir_.string());
  ASSERT_EQ(d.size(), 5u);
  Example e = d.get(1);
  EXPECT_EQ(e.label, 1);
  // Image 1 starts at byte 784, whose value is 784 % 256 = 16.
  EXPECT_FLOAT_EQ(e.x[0], (16.0f / 255.0f - 0.2860f) / 0.3530f);
  EXPECT_THROW(d.get(5), Error);
}

TEST_F(FakeDir, ExplicitDirectoryBeatsEnvironment) {
  write_split("train", 3, 3);
  ScopedEnv env("KILN_DATA_DIR", "/nonexistent/kiln/data");
  FashionMnist d(Split::train, dir_.string());
  EXPECT_EQ(d.size(), 3u);
}

TEST_F(FakeDir, MissingDirectorySaysHowToInstall) {
  std::string msg = error_of(Split::train, (dir_ / "absent").string());
  EXPECT_NE(msg.find("apt-get install dataset-fashion-mnist"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find((dir_ / "absent").string()), std::string::npos) << msg;
}

TEST_F(FakeDir, MissingFileNamesIt) {
  write_split("t10k", 2, 2);
  std::string msg = error_of(Split::train, dir_.string());
  EXPECT_NE(msg.find("train-images-idx3-ubyte.gz"), std::string::npos) << msg;
}

TEST_F(FakeDir, CountMismatchIsAnError) {
  write_split("train", 4, 3);
  std::string msg = error_of(Split::train, dir_.string());
  EXPECT_NE(msg.find("4 images"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3 labels"), std::string::npos) << msg;
}

TEST_F(FakeDir, LabelOutOfRangeIsAnError) {
  write_split("train", 12, 12, /*max_label=*/11);
  std::string msg = error_of(Split::train, dir_.string());
  EXPECT_NE(msg.find("label 10"), std::string::npos) << msg;
}

TEST_F(FakeDir, WrongImageShapeIsAnError) {
  write_split("train", 2, 2);
  IdxArray img{IdxType::u8, {2, 14, 14}, std::vector<uint8_t>(2 * 196)};
  write_idx((dir_ / "train-images-idx3-ubyte.gz").string(), img, true);
  std::string msg = error_of(Split::train, dir_.string());
  EXPECT_NE(msg.find("[N,28,28]"), std::string::npos) << msg;
}

} // namespace
} // namespace kiln
