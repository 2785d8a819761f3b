#include "tools/svg_plot.h"

#include "runtime/atomic_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln {

namespace {

// Layout in SVG user units (pixels at 100%).
constexpr double kWidth = 960;
constexpr double kTitleHeight = 44;
constexpr double kPanelHeight = 300;
constexpr double kPlotLeft = 80;
constexpr double kPlotRight = 720;
constexpr double kPanelTitle = 30;  // above the plot area
constexpr double kPanelBottom = 56; // tick labels and the axis label
constexpr double kLegendX = 740;
constexpr double kAxisPad = 0.03;   // of the tick range, each side
constexpr size_t kMaxLabel = 30;    // characters of a run's label in the legend
constexpr size_t kMarkersUpTo = 40; // points per curve that still get markers

// Colours that stay apart for most colour-blind readers (matplotlib tab10).
constexpr const char *kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                    "#bcbd22", "#17becf"};

struct Series {
  std::optional<double> EpochMetrics::*field;
  const char *key;    // data-series attribute: the CSV column
  const char *label;  // legend text
  const char *dash;   // stroke-dasharray, "" for solid
  const char *colour; // with one run
};

struct Panel {
  const char *id;
  const char *title;
  const char *y_label;
  std::vector<Series> series;
};

const std::vector<Panel> &panels() {
  static const std::vector<Panel> p = {
      {"loss",
       "loss",
       "loss",
       {{&EpochMetrics::train_loss, "train_loss", "train loss", "",
         kPalette[0]},
        {&EpochMetrics::val_loss, "val_loss", "validation loss", "7 4",
         kPalette[1]}}},
      {"accuracy",
       "accuracy",
       "accuracy",
       {{&EpochMetrics::val_accuracy, "val_accuracy", "validation accuracy",
         "7 4", kPalette[1]},
        {&EpochMetrics::test_accuracy, "test_accuracy", "test accuracy", "2 3",
         kPalette[2]}}},
  };
  return p;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&apos;";
      break;
    default:
      // Control characters other than tab/newline are not allowed in XML 1.0.
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n')
        out += '?';
      else
        out += c;
    }
  }
  return out;
}

// The end of a long label (paths differ at the end), marked as shortened.
std::string shorten(const std::string &s) {
  if (s.size() <= kMaxLabel)
    return s;
  size_t from = s.size() - (kMaxLabel - 3);
  // Do not start inside a UTF-8 sequence.
  while (from < s.size() &&
         (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80)
    ++from;
  return "..." + s.substr(from);
}

std::string num(double v) { return fmt::format("{:.1f}", v); }

int decimals_for(double step) {
  if (step >= 1)
    return 0;
  return static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
}

std::string tick_label(double v, int decimals) {
  if (std::fabs(v) < 1e-12)
    v = 0; // no "-0.0"
  return fmt::format("{:.{}f}", v, decimals);
}

struct Range {
  std::vector<double> ticks;
  double lo = 0, hi = 1;
  int decimals = 0;
};

Range y_range(double lo, double hi) {
  if (!(lo <= hi)) { // no data
    lo = 0;
    hi = 1;
  }
  if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {
    double pad = std::max(std::fabs(hi) * 0.05, 0.05);
    lo -= pad;
    hi += pad;
  }
  Range r;
  r.ticks = nice_ticks(lo, hi, 5);
  r.lo = r.ticks.front();
  r.hi = r.ticks.back();
  r.decimals = r.ticks.size() > 1 ? decimals_for(r.ticks[1] - r.ticks[0]) : 0;
  return r;
}

Range x_range(double lo, double hi) {
  if (!(lo <= hi)) {
    lo = 0;
    hi = 1;
  }
  if (lo == hi) { // one epoch: centred
    lo -= 1;
    hi += 1;
  }
  Range r;
  r.ticks = nice_ticks(lo, hi, 8);
  if (r.ticks.size() > 1 && r.ticks[1] - r.ticks[0] < 1) {
    // Epochs are whole numbers: no tick at 1.5.
    r.ticks.clear();
    for (double e = std::floor(lo); e <= std::ceil(hi); e += 1)
      r.ticks.push_back(e);
  }
  r.lo = r.ticks.front();
  r.hi = r.ticks.back();
  r.decimals = 0;
  return r;
}

void render_panel(std::string &out, const Panel &panel, double top,
                  const std::vector<PlotRun> &runs, const Range &xr) {
  double plot_top = top + kPanelTitle;
  double plot_bottom = top + kPanelHeight - kPanelBottom;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  std::vector<bool> present(panel.series.size(), false);
  for (const PlotRun &run : runs)
    for (size_t s = 0; s < panel.series.size(); ++s)
      for (const EpochMetrics &r : run.rows) {
        const auto &v = r.*panel.series[s].field;
        if (v && std::isfinite(*v)) {
          lo = std::min(lo, *v);
          hi = std::max(hi, *v);
          present[s] = true;
        }
      }
  bool any = lo <= hi;
  Range yr = y_range(lo, hi);
  // The axes reach a little past the outer ticks so that points on them
  // (the first epoch, the highest loss) are not drawn on the frame.
  double x0 = xr.lo - kAxisPad * (xr.hi - xr.lo);
  double x1 = xr.hi + kAxisPad * (xr.hi - xr.lo);
  double y0 = yr.lo - kAxisPad * (yr.hi - yr.lo);
  double y1 = yr.hi + kAxisPad * (yr.hi - yr.lo);
  auto px = [&](double x) {
    return kPlotLeft + (x - x0) / (x1 - x0) * (kPlotRight - kPlotLeft);
  };
  auto py = [&](double y) {
    return plot_bottom - (y - y0) / (y1 - y0) * (plot_bottom - plot_top);
  };

  out += fmt::format("<g class=\"panel\" id=\"{}\">\n", panel.id);
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
                     "font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                     num((kPlotLeft + kPlotRight) / 2), num(top + 20),
                     panel.title);
  // Grid and ticks.
  for (double t : yr.ticks) {
    double y = py(t);
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" "
                       "stroke=\"#e3e3e3\"/>\n",
                       num(kPlotLeft), num(y), num(kPlotRight), num(y));
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" "
                       "stroke=\"#333\"/>\n",
                       num(kPlotLeft - 5), num(y), num(kPlotLeft), num(y));
    out +=
        fmt::format("<text class=\"ytick\" x=\"{}\" y=\"{}\" "
                    "text-anchor=\"end\">{}</text>\n",
                    num(kPlotLeft - 8), num(y + 4), tick_label(t, yr.decimals));
  }
  for (double t : xr.ticks) {
    double x = px(t);
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" "
                       "stroke=\"#e3e3e3\"/>\n",
                       num(x), num(plot_top), num(x), num(plot_bottom));
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" "
                       "stroke=\"#333\"/>\n",
                       num(x), num(plot_bottom), num(x), num(plot_bottom + 5));
    out +=
        fmt::format("<text class=\"xtick\" x=\"{}\" y=\"{}\" "
                    "text-anchor=\"middle\">{}</text>\n",
                    num(x), num(plot_bottom + 19), tick_label(t, xr.decimals));
  }
  out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
                     "fill=\"none\" stroke=\"#333\"/>\n",
                     num(kPlotLeft), num(plot_top), num(kPlotRight - kPlotLeft),
                     num(plot_bottom - plot_top));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch"
                     "</text>\n",
                     num((kPlotLeft + kPlotRight) / 2), num(plot_bottom + 40));
  double ymid = (plot_top + plot_bottom) / 2;
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 {} {})\">{}</text>\n",
                     num(kPlotLeft - 55), num(ymid), num(kPlotLeft - 55),
                     num(ymid), panel.y_label);
  if (!any)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
                       "fill=\"#888\">no data</text>\n",
                       num((kPlotLeft + kPlotRight) / 2), num(ymid));

  // Curves: one polyline per stretch of finite values.
  bool several = runs.size() > 1;
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const PlotRun &run = runs[ri];
    for (const Series &s : panel.series) {
      const char *colour =
          several ? kPalette[ri % std::size(kPalette)] : s.colour;
      std::vector<std::vector<std::pair<double, double>>> pieces(1);
      size_t finite = 0;
      for (const EpochMetrics &r : run.rows) {
        const auto &v = r.*s.field;
        // Not measured this epoch (test accuracy every few epochs): the
        // line joins the epochs that were. A NaN or infinite value was
        // measured and is not a number: the line breaks there.
        if (!v)
          continue;
        if (std::isfinite(*v)) {
          pieces.back().emplace_back(px(r.epoch), py(*v));
          ++finite;
        } else if (!pieces.back().empty()) {
          pieces.emplace_back();
        }
      }
      std::string attrs = fmt::format("data-run=\"{}\" data-series=\"{}\"",
                                      xml_escape(run.label), s.key);
      for (const auto &piece : pieces) {
        if (piece.size() >= 2) {
          std::string points;
          for (auto [x, y] : piece)
            points += fmt::format("{}{},{}", points.empty() ? "" : " ", num(x),
                                  num(y));
          out += fmt::format(
              "<polyline class=\"curve\" {} points=\"{}\" fill=\"none\" "
              "stroke=\"{}\" stroke-width=\"2\"{} "
              "stroke-linejoin=\"round\"/>\n",
              attrs, points, colour,
              *s.dash ? fmt::format(" stroke-dasharray=\"{}\"", s.dash) : "");
        }
        // A lone point has no line to show it; short curves get markers on
        // every point so that the epochs can be read off.
        if (piece.size() == 1 || finite <= kMarkersUpTo)
          for (auto [x, y] : piece)
            out += fmt::format("<circle class=\"marker\" {} cx=\"{}\" "
                               "cy=\"{}\" r=\"3\" fill=\"{}\"/>\n",
                               attrs, num(x), num(y), colour);
      }
    }
  }

  // Legend, right of the plot area.
  out += "<g class=\"legend\">\n";
  double ly = plot_top + 8;
  auto entry = [&](const char *colour, const char *dash,
                   const std::string &text) {
    out += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
        "stroke-width=\"2\"{}/>\n",
        num(kLegendX), num(ly), num(kLegendX + 28), num(ly), colour,
        *dash ? fmt::format(" stroke-dasharray=\"{}\"", dash) : "");
    // The marker too: a curve of one point is a marker alone.
    out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"/>\n",
                       num(kLegendX + 14), num(ly), colour);
    out += fmt::format("<text class=\"legend-label\" x=\"{}\" y=\"{}\">{}"
                       "</text>\n",
                       num(kLegendX + 36), num(ly + 4), xml_escape(text));
    ly += 20;
  };
  if (!several) {
    for (size_t s = 0; s < panel.series.size(); ++s)
      if (present[s])
        entry(panel.series[s].colour, panel.series[s].dash,
              panel.series[s].label);
  } else {
    for (size_t ri = 0; ri < runs.size(); ++ri)
      entry(kPalette[ri % std::size(kPalette)], "", shorten(runs[ri].label));
    ly += 6;
    for (size_t s = 0; s < panel.series.size(); ++s)
      if (present[s])
        entry("#555", panel.series[s].dash, panel.series[s].label);
  }
  out += "</g>\n</g>\n";
}

} // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  double raw = (hi - lo) / std::max(target, 1);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  double first = std::floor(lo / step + 1e-9) * step;
  double last = std::ceil(hi / step - 1e-9) * step;
  auto n = static_cast<long>(std::llround((last - first) / step));
  std::vector<double> ticks;
  for (long k = 0; k <= n; ++k)
    ticks.push_back(first + static_cast<double>(k) * step);
  return ticks;
}

std::string render_metrics_svg(const std::vector<PlotRun> &runs,
                               const PlotOptions &options) {
  double height = kTitleHeight + kPanelHeight * panels().size() + 8;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" "
      "height=\"{1}\" viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n",
      kWidth, height);
  out += fmt::format("<title>{}</title>\n", xml_escape(options.title));
  out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out += fmt::format("<text x=\"{}\" y=\"28\" text-anchor=\"middle\" "
                     "font-size=\"16\" font-weight=\"bold\">{}</text>\n",
                     num(kWidth / 2), xml_escape(options.title));
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const PlotRun &run : runs)
    for (const EpochMetrics &r : run.rows) {
      lo = std::min(lo, static_cast<double>(r.epoch));
      hi = std::max(hi, static_cast<double>(r.epoch));
    }
  Range xr = x_range(lo, hi);
  for (size_t i = 0; i < panels().size(); ++i)
    render_panel(out, panels()[i], kTitleHeight + kPanelHeight * i, runs, xr);
  out += "</svg>\n";
  return out;
}

void write_metrics_svg(const std::string &path,
                       const std::vector<PlotRun> &runs,
                       const PlotOptions &options) {
  AtomicFile f(path, "cannot write plot");
  f.write(render_metrics_svg(runs, options));
  f.commit();
}

} // namespace kiln
