// The metrics a `kiln train` run keeps (tools/metrics_csv.h): the rows so
// far, rewritten to the CSV file and, with --plot, to the SVG after every
// epoch, so that an interrupted run leaves both up to its last epoch.
#pragma once

#include "tools/metrics_csv.h"

#include <string>
#include <vector>

namespace kiln {

class MetricsLog {
public:
  // `csv` and `svg` may be "" (not written). With `resume_epoch` > 0 the
  // rows of epochs 1..resume_epoch already in `csv` are kept, so the file and
  // the plot show the whole run; an unreadable old file is reported on
  // stderr and replaced. Missing or unwritable folders are errors now,
  // before any training.
  MetricsLog(std::string csv, std::string svg, int resume_epoch,
             std::string title);

  // Appends the row (replacing a kept row of the same epoch) and rewrites
  // the files atomically.
  void add(const EpochMetrics &row);

  // Fills in the test accuracy measured after training (on the weights of
  // `epoch`: the last one, or the best one early stopping restored) and
  // rewrites the files; nothing when no row has that epoch.
  void set_test_accuracy(int epoch, double accuracy);

  const std::vector<EpochMetrics> &rows() const { return rows_; }
  const std::string &csv_path() const { return csv_; }
  const std::string &svg_path() const { return svg_; }

private:
  void write();

  std::string csv_, svg_, title_;
  std::vector<EpochMetrics> rows_;
};

// An output file's folder exists and is writable, and the path is not a
// folder: "<option> <path>: the folder <dir> does not exist" otherwise.
void check_output_path(const std::string &option, const std::string &path);

} // namespace kiln
