// Per-epoch training metrics and their CSV file: `kiln train` writes one row
// per epoch next to its checkpoint (kiln-mlp.metrics.csv), `kiln train
// --plot` and `kiln plot` read them back into curves (tools/svg_plot.h).
//
// The file is plain CSV with a header naming the columns, one row per epoch:
//   epoch,train_loss,val_loss,val_accuracy,test_accuracy,lr,seconds,steps_per_s
//   1,0.6812,,,0.8123,0.0452,3.1,1402.5
// A value that was not measured (no validation set, test accuracy only at the
// end) is an empty field, not 0; a measured NaN is "nan". Columns are read by
// name, so their order does not matter and columns a newer kiln adds are
// skipped by an older reader. Malformed input is a kiln::Error naming
// file:line:column.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// One epoch's row. Fields left empty are written as empty CSV fields.
struct EpochMetrics {
  int epoch = 0; // 1-based: the epoch just finished
  std::optional<double> train_loss;
  std::optional<double> val_loss;
  std::optional<double> val_accuracy;
  std::optional<double> test_accuracy;
  std::optional<double> lr;          // at the end of the epoch
  std::optional<double> seconds;     // the epoch's wall time
  std::optional<double> steps_per_s; // stepping only (compiling left out)
};

// The header line and one line per row, each ending in '\n'.
std::string format_metrics_csv(const std::vector<EpochMetrics> &rows);

// Parses CSV text; `name` (a path) starts error messages.
std::vector<EpochMetrics> parse_metrics_csv(std::string_view text,
                                            const std::string &name);
// Reads and parses a file; a missing or unreadable file is an error naming it.
std::vector<EpochMetrics> read_metrics_csv(const std::string &path);
// Writes the rows atomically (runtime/atomic_file.h): a reader sees the old
// file or the whole new one.
void write_metrics_csv(const std::string &path,
                       const std::vector<EpochMetrics> &rows);

// The metrics file beside a checkpoint: "dir/run.safetensors" ->
// "dir/run.metrics.csv" (another extension, or none, is kept and
// ".metrics.csv" appended after the stem); "" for no checkpoint.
std::string metrics_path_for_checkpoint(const std::string &checkpoint);

} // namespace kiln
