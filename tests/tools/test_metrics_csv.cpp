// The metrics CSV that `kiln train` writes and `kiln plot` reads
// (tools/metrics_csv.h): round trip, empty fields for values not measured,
// columns by name, and located errors for malformed files.
#include "ir/error.h"
#include "tools/metrics_csv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace kiln {
namespace {

std::string error_of(std::string_view text) {
  try {
    parse_metrics_csv(text, "m.csv");
  } catch (const Error &e) {
    return e.what();
  }
  return "(no error)";
}

TEST(MetricsCsv, RoundTripKeepsEmptyFieldsAndExactValues) {
  EpochMetrics a;
  a.epoch = 1;
  a.train_loss = 0.1 + 0.2; // not a short decimal
  a.test_accuracy = 0.8123;
  a.lr = 0.05;
  EpochMetrics b;
  b.epoch = 2;
  b.train_loss = std::nan("");
  b.val_loss = 0.5;
  b.val_accuracy = 0.75;
  std::string text = format_metrics_csv({a, b});
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "epoch,train_loss,val_loss,val_accuracy,test_accuracy,lr,seconds,"
            "steps_per_s");
  EXPECT_NE(text.find("\n1,0.30000000000000004,,,0.8123,0.05,,\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n2,nan,0.5,0.75,,,,\n"), std::string::npos) << text;
  auto rows = parse_metrics_csv(text, "m.csv");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].epoch, 1);
  EXPECT_EQ(*rows[0].train_loss, 0.1 + 0.2);
  EXPECT_FALSE(rows[0].val_loss.has_value());
  EXPECT_EQ(*rows[0].test_accuracy, 0.8123);
  EXPECT_FALSE(rows[0].seconds.has_value());
  EXPECT_TRUE(std::isnan(*rows[1].train_loss));
  EXPECT_EQ(*rows[1].val_accuracy, 0.75);
  EXPECT_FALSE(rows[1].test_accuracy.has_value());
}

TEST(MetricsCsv, ColumnsByNameUnknownOnesSkipped) {
  auto rows = parse_metrics_csv(
      "val_loss, epoch ,future_column,train_loss\r\n0.5,3,x,1.25\r\n\n", "m");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].epoch, 3);
  EXPECT_EQ(*rows[0].val_loss, 0.5);
  EXPECT_EQ(*rows[0].train_loss, 1.25);
}

TEST(MetricsCsv, HeaderOnlyHasNoRows) {
  EXPECT_TRUE(parse_metrics_csv("epoch,train_loss\n", "m").empty());
}

TEST(MetricsCsv, MalformedLinesAreNamedFileLineColumn) {
  EXPECT_EQ(error_of(""), "m.csv: empty, expected a header line "
                          "(epoch,train_loss,...)");
  EXPECT_EQ(error_of("loss,acc\n1,2\n"),
            "m.csv:1:1: the header has no 'epoch' column (expected a metrics "
            "CSV from kiln train: epoch,train_loss,...)");
  EXPECT_EQ(error_of("epoch,train_loss\n1,0.5\n2,abc\n"),
            "m.csv:3:3: train_loss 'abc' is not a number");
  EXPECT_EQ(error_of("epoch,train_loss\n1,0.5,7\n"),
            "m.csv:2:1: 3 fields, expected 2 as in the header (line 1)");
  EXPECT_EQ(error_of("epoch,train_loss\n1.5,0.5\n"),
            "m.csv:2:1: epoch '1.5' is not a whole number of 0 or more");
  EXPECT_EQ(error_of("epoch,train_loss\n2,0.5\n1,0.4\n"),
            "m.csv:3:1: epoch 1 follows epoch 2; epochs must increase");
  EXPECT_EQ(error_of("epoch,epoch\n"),
            "m.csv:1:7: column 'epoch' appears twice in the header");
  EXPECT_EQ(error_of("epoch,train_loss\n1,\"0.5\"\n"),
            "m.csv:2:3: quoted fields are not supported in a metrics file");
  EXPECT_EQ(error_of("epoch,train_loss\n1,1e999\n"),
            "m.csv:2:3: train_loss '1e999' is not a number");
}

TEST(MetricsCsv, MissingFileIsNamed) {
  try {
    read_metrics_csv("/nonexistent/run.metrics.csv");
    FAIL() << "no error";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "/nonexistent/run.metrics.csv: cannot read metrics "
                           "file: no such file");
  }
}

TEST(MetricsCsv, WriteThenRead) {
  auto dir = std::filesystem::temp_directory_path() /
             ("kiln-metrics-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "run.metrics.csv").string();
  EpochMetrics r;
  r.epoch = 1;
  r.seconds = 2.5;
  write_metrics_csv(path, {r});
  auto back = read_metrics_csv(path);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(*back[0].seconds, 2.5);
  std::filesystem::remove_all(dir);
}

TEST(MetricsCsv, PathBesideTheCheckpoint) {
  EXPECT_EQ(metrics_path_for_checkpoint("runs/a.safetensors"),
            "runs/a.metrics.csv");
  EXPECT_EQ(metrics_path_for_checkpoint("kiln-mlp.safetensors"),
            "kiln-mlp.metrics.csv");
  EXPECT_EQ(metrics_path_for_checkpoint("ckpt.bin"), "ckpt.bin.metrics.csv");
  EXPECT_EQ(metrics_path_for_checkpoint(""), "");
}

} // namespace
} // namespace kiln
