// The training-curve SVG (tools/svg_plot.h): both panels' curves and legend
// labels, gaps for NaN values, epochs not measured joined over, a single epoch
// and a constant series without a division by zero, escaped labels, and round
// ticks. (That the output parses as XML is checked with python3 in
// tests/lit/tools/plot.test.)
#include "tools/svg_plot.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln {
namespace {

// The points="..." of the polyline of series `name` ("" when there is none).
// (A plain search: std::regex trips GCC 12's -Wmaybe-uninitialized under
// the sanitizers.)
std::string series_points(const std::string &svg, const std::string &name) {
  std::string key = "data-series=\"" + name + "\" points=\"";
  size_t at = svg.find(key);
  if (at == std::string::npos)
    return "";
  at += key.size();
  return svg.substr(at, svg.find('"', at) - at);
}

size_t count(const std::string &s, const std::string &what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != s.npos; p = s.find(what, p + 1))
    ++n;
  return n;
}

EpochMetrics row(int epoch, double train, std::optional<double> val_loss,
                 std::optional<double> val_acc) {
  EpochMetrics r;
  r.epoch = epoch;
  r.train_loss = train;
  r.val_loss = val_loss;
  r.val_accuracy = val_acc;
  return r;
}

// Every number in the SVG's coordinates is finite (no "nan", "inf").
void expect_finite(const std::string &svg) {
  EXPECT_EQ(svg.find("nan"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("inf"), std::string::npos) << svg;
}

TEST(SvgPlot, BothPanelsCurvesAndLegend) {
  std::vector<EpochMetrics> rows = {
      row(1, 1.2, 0.9, 0.70), row(2, 0.7, 0.6, 0.78), row(3, 0.5, 0.55, 0.81)};
  rows[2].test_accuracy = 0.8;
  std::string svg = render_metrics_svg({{"run", rows}}, {.title = "t"});
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(count(svg, "<g class=\"panel\""), 2u);
  EXPECT_EQ(count(svg, "data-series=\"train_loss\" points="), 1u);
  EXPECT_EQ(count(svg, "data-series=\"val_loss\" points="), 1u);
  EXPECT_EQ(count(svg, "data-series=\"val_accuracy\" points="), 1u);
  // One test point: a marker, no line.
  EXPECT_EQ(count(svg, "data-series=\"test_accuracy\" points="), 0u);
  EXPECT_EQ(count(svg, "data-series=\"test_accuracy\" cx="), 1u);
  for (const char *label : {">train loss<", ">validation loss<",
                            ">validation accuracy<", ">test accuracy<"})
    EXPECT_EQ(count(svg, label), 1u) << label;
  EXPECT_NE(svg.find(">epoch</text>"), std::string::npos);
  EXPECT_NE(svg.find("class=\"xtick\""), std::string::npos);
  expect_finite(svg);
}

TEST(SvgPlot, NotMeasuredSeriesAreLeftOutOfTheLegend) {
  std::string svg =
      render_metrics_svg({{"run", {row(1, 1.0, {}, {}), row(2, 0.8, {}, {})}}});
  EXPECT_EQ(count(svg, ">train loss<"), 1u);
  EXPECT_EQ(count(svg, ">validation loss<"), 0u);
  EXPECT_EQ(count(svg, "data-series=\"val_loss\""), 0u);
  EXPECT_NE(svg.find(">no data<"), std::string::npos); // the accuracy panel
}

TEST(SvgPlot, SingleEpochIsAMarkerOnACentredAxis) {
  std::string svg = render_metrics_svg({{"run", {row(1, 0.9, 0.8, 0.7)}}});
  EXPECT_EQ(count(svg, "<polyline"), 0u);
  EXPECT_EQ(count(svg, "class=\"marker\""), 3u);
  // Epoch ticks 0, 1, 2 on both panels, whole numbers only.
  EXPECT_EQ(count(svg, "class=\"xtick\""), 6u);
  EXPECT_NE(svg.find(">1</text>"), std::string::npos);
  expect_finite(svg);
}

TEST(SvgPlot, NanBreaksTheCurve) {
  double nan = std::nan("");
  std::vector<EpochMetrics> rows = {row(1, 1.0, {}, {}), row(2, 0.9, {}, {}),
                                    row(3, nan, {}, {}), row(4, 0.7, {}, {}),
                                    row(5, 0.6, {}, {})};
  std::string svg = render_metrics_svg({{"run", rows}});
  EXPECT_EQ(count(svg, "data-series=\"train_loss\" points="), 2u);
  EXPECT_EQ(count(svg, "data-series=\"train_loss\" cx="), 4u);
  expect_finite(svg);
  // Infinity is a gap too, and an all-NaN series draws nothing.
  rows[2].train_loss = INFINITY;
  EXPECT_EQ(count(render_metrics_svg({{"run", rows}}),
                  "data-series=\"train_loss\" points="),
            2u);
  std::string all_nan =
      render_metrics_svg({{"run", {row(1, nan, {}, {}), row(2, nan, {}, {})}}});
  EXPECT_EQ(count(all_nan, "<polyline"), 0u);
  expect_finite(all_nan);
}

TEST(SvgPlot, EpochsNotMeasuredAreJoinedOver) {
  // Test accuracy every other epoch: one line through epochs 1, 3, 5.
  std::vector<EpochMetrics> rows;
  for (int e = 1; e <= 5; ++e) {
    rows.push_back(row(e, 1.0 / e, {}, {}));
    if (e % 2)
      rows.back().test_accuracy = 0.5 + 0.05 * e;
  }
  std::string svg = render_metrics_svg({{"run", rows}});
  std::string points = series_points(svg, "test_accuracy");
  ASSERT_FALSE(points.empty());
  EXPECT_EQ(count(points, ","), 3u) << points;
  EXPECT_EQ(count(svg, "data-series=\"test_accuracy\" points="), 1u);
}

TEST(SvgPlot, ConstantSeriesGetsAPaddedRange) {
  std::string svg = render_metrics_svg(
      {{"run",
        {row(1, 0.5, {}, 0.9), row(2, 0.5, {}, 0.9), row(3, 0.5, {}, 0.9)}}});
  expect_finite(svg);
  // The flat line sits in the middle of the plot (y 74..288), between
  // padded ticks (0.44..0.56); epochs 1..3 span x 80..720 less 3% each side.
  EXPECT_EQ(series_points(svg, "train_loss"),
            "98.1,181.0 400.0,181.0 701.9,181.0");
  EXPECT_GE(count(svg, "class=\"ytick\""), 4u);
}

TEST(SvgPlot, SeveralRunsColourPerRunAndEscapedLabels) {
  std::vector<EpochMetrics> rows = {row(1, 1.0, 0.9, 0.7),
                                    row(2, 0.8, 0.85, 0.75)};
  std::string svg = render_metrics_svg({{"a<&>\"b", rows}, {"second", rows}},
                                       {.title = "x & y"});
  EXPECT_NE(svg.find(">a&lt;&amp;&gt;&quot;b<"), std::string::npos);
  EXPECT_NE(svg.find("data-run=\"a&lt;&amp;&gt;&quot;b\""), std::string::npos);
  EXPECT_NE(svg.find("<title>x &amp; y</title>"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 6u); // 2 runs x 3 curves with data
  EXPECT_EQ(count(svg, ">second<"), 2u);  // in both panels' legends
  EXPECT_NE(svg.find("stroke=\"#1f77b4\""), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#ff7f0e\""), std::string::npos);
}

TEST(SvgPlot, LongLabelsKeepTheirEnd) {
  std::string label(50, 'x');
  label += "-end";
  std::string svg = render_metrics_svg(
      {{label, {row(1, 1.0, {}, {})}}, {"b", {row(1, 1.0, {}, {})}}});
  EXPECT_NE(svg.find(">...xxxxxxxxxxxxxxxxxxxxxxx-end<"), std::string::npos);
}

TEST(SvgPlot, NiceTicks) {
  EXPECT_EQ(nice_ticks(0.31, 2.27, 5),
            (std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5}));
  auto t = nice_ticks(1, 30, 8);
  EXPECT_EQ(t.front(), 0);
  EXPECT_EQ(t.back(), 30);
  EXPECT_EQ(t[1], 5);
  t = nice_ticks(0.72, 0.79, 5);
  EXPECT_NEAR(t.front(), 0.72, 1e-12);
  EXPECT_NEAR(t.back(), 0.79, 1e-12);
  EXPECT_EQ(t.size(), 8u); // step 0.01
}

} // namespace
} // namespace kiln
