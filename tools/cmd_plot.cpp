// `kiln plot a.csv b.csv -o cmp.svg`: overlays the training curves of one or
// more runs, read from the metrics files `kiln train` writes beside its
// checkpoints (tools/metrics_csv.h), as one SVG (tools/svg_plot.h). Each
// run is named in the legend by its file name; a missing file or a
// malformed line (named file:line:column) is an error before anything is
// written.
#include "ir/error.h"
#include "tools/commands.h"
#include "tools/metrics_csv.h"
#include "tools/svg_plot.h"
#include "tools/train_metrics.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <set>

namespace kiln {

namespace {

struct PlotArgs {
  std::vector<std::string> inputs;
  std::string output;
  std::string title = "training curves";
};

// "runs/sgd.metrics.csv" -> "sgd"; the path as given when two runs would
// share a name.
std::vector<std::string> run_labels(const std::vector<std::string> &paths) {
  std::vector<std::string> labels;
  for (const std::string &p : paths) {
    std::string name = std::filesystem::path(p).filename().string();
    for (const char *suffix : {".metrics.csv", ".csv"})
      if (name.size() > std::strlen(suffix) && name.ends_with(suffix)) {
        name.resize(name.size() - std::strlen(suffix));
        break;
      }
    labels.push_back(name);
  }
  std::set<std::string> seen, dup;
  for (const std::string &l : labels)
    if (!seen.insert(l).second)
      dup.insert(l);
  for (size_t i = 0; i < labels.size(); ++i)
    if (dup.count(labels[i]))
      labels[i] = paths[i];
  return labels;
}

void plot(const PlotArgs &a) {
  check_output_path("-o", a.output);
  std::vector<std::string> labels = run_labels(a.inputs);
  std::vector<PlotRun> runs;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    runs.push_back({labels[i], read_metrics_csv(a.inputs[i])});
    if (runs.back().rows.empty())
      fail("{}: no epochs (only a header)", a.inputs[i]);
  }
  write_metrics_svg(a.output, runs, {.title = a.title});
  fmt::print("plot of {} run{} written to {}\n", runs.size(),
             runs.size() == 1 ? "" : "s", a.output);
}

} // namespace

void add_plot_command(CLI::App &app) {
  auto args = std::make_shared<PlotArgs>();
  CLI::App *cmd = app.add_subcommand(
      "plot", "overlay training curves from kiln train's metrics CSV files "
              "as an SVG");
  cmd->add_option("files", args->inputs,
                  "metrics CSV files (kiln train writes NAME.metrics.csv "
                  "beside its checkpoint)")
      ->required();
  cmd->add_option("-o,--output", args->output, "the SVG file to write")
      ->required();
  cmd->add_option("--title", args->title, "the plot's title")
      ->capture_default_str();
  cmd->callback([args] { plot(*args); });
}

} // namespace kiln
