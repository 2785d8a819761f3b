#include "tools/train_metrics.h"

#include "ir/error.h"
#include "tools/svg_plot.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <unistd.h>

namespace kiln {

void check_output_path(const std::string &option, const std::string &path) {
  if (path.empty())
    return;
  namespace fs = std::filesystem;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty())
    dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("{} {}: the folder {} does not exist", option, path, dir.string());
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    fail("{} {}: the folder {} is not writable: {}", option, path, dir.string(),
         std::strerror(errno));
  if (fs::is_directory(path, ec))
    fail("{} {}: is a folder, expected a file name", option, path);
}

MetricsLog::MetricsLog(std::string csv, std::string svg, int resume_epoch,
                       std::string title)
    : csv_(std::move(csv)), svg_(std::move(svg)), title_(std::move(title)) {
  check_output_path("--metrics", csv_);
  check_output_path("--plot", svg_);
  if (resume_epoch <= 0 || csv_.empty() || !std::filesystem::exists(csv_))
    return;
  try {
    for (const EpochMetrics &r : read_metrics_csv(csv_))
      if (r.epoch <= resume_epoch)
        rows_.push_back(r);
  } catch (const Error &e) {
    fmt::print(stderr, "warning: {}; the metrics file starts afresh\n",
               e.what());
    rows_.clear();
  }
}

void MetricsLog::add(const EpochMetrics &row) {
  while (!rows_.empty() && rows_.back().epoch >= row.epoch)
    rows_.pop_back();
  rows_.push_back(row);
  write();
}

void MetricsLog::set_test_accuracy(int epoch, double accuracy) {
  for (EpochMetrics &r : rows_)
    if (r.epoch == epoch) {
      r.test_accuracy = accuracy;
      write();
      return;
    }
}

void MetricsLog::write() {
  if (!csv_.empty())
    write_metrics_csv(csv_, rows_);
  if (!svg_.empty())
    write_metrics_svg(svg_, {{title_, rows_}}, {.title = title_});
}

} // namespace kiln
