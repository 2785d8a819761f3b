// Training curves as a self-contained SVG: `kiln train --plot FILE.svg` and
// `kiln plot a.csv b.csv -o cmp.svg`. Two panels share the epoch axis: loss
// (train solid, validation dashed) and accuracy (validation dashed, test
// dotted), each with ticks, grid, axis labels and a legend. One run gets a
// colour per curve; several runs get a colour per run, and the line style
// says which curve it is.
//
// Why it is written here: Debian packages no C++ plotting library that fits
// (matplot++ and sciplot are not packaged and drive gnuplot, a program the
// user may not have; PLplot, also packaged, is a large C library whose SVG
// driver needs run-time plug-ins). Line plots of a few hundred points are a
// page of SVG text, and SVG opens in any browser.
//
// A value that is not finite (a NaN loss) breaks a curve into pieces
// instead of being drawn as 0, while one not measured at some epochs (an
// empty field) is left out and the line joins the epochs that have one; a point
// with no neighbour gets a marker so it stays visible; a constant series and a
// single epoch get a padded axis range instead of a division by zero.
#pragma once

#include "tools/metrics_csv.h"

#include <string>
#include <vector>

namespace kiln {

struct PlotRun {
  std::string label; // in the legend when there are several runs
  std::vector<EpochMetrics> rows;
};

struct PlotOptions {
  std::string title = "training curves";
};

// The whole SVG document (XML declaration to </svg>).
std::string render_metrics_svg(const std::vector<PlotRun> &runs,
                               const PlotOptions &options = {});
// Renders and writes it atomically (runtime/atomic_file.h).
void write_metrics_svg(const std::string &path,
                       const std::vector<PlotRun> &runs,
                       const PlotOptions &options = {});

// Axis ticks: round values (1, 2 or 5 times a power of ten) covering
// [lo, hi], about `target` of them; the first <= lo, the last >= hi.
// lo < hi, both finite.
std::vector<double> nice_ticks(double lo, double hi, int target);

} // namespace kiln
