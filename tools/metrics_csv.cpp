#include "tools/metrics_csv.h"

#include "ir/error.h"
#include "ir/escape.h"
#include "runtime/atomic_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace kiln {

namespace {

// The value columns after "epoch", in file order; one table drives both the
// writer and the reader.
struct MetricsColumn {
  const char *name;
  std::optional<double> EpochMetrics::*field;
};

constexpr MetricsColumn kColumns[] = {
    {"train_loss", &EpochMetrics::train_loss},
    {"val_loss", &EpochMetrics::val_loss},
    {"val_accuracy", &EpochMetrics::val_accuracy},
    {"test_accuracy", &EpochMetrics::test_accuracy},
    {"lr", &EpochMetrics::lr},
    {"seconds", &EpochMetrics::seconds},
    {"steps_per_s", &EpochMetrics::steps_per_s},
};

std::string format_value(const std::optional<double> &v) {
  if (!v)
    return "";
  if (std::isnan(*v))
    return "nan";
  if (std::isinf(*v))
    return *v > 0 ? "inf" : "-inf";
  return fmt::format("{}", *v); // shortest text that reads back exactly
}

// A field with its 1-based column in the line.
struct Field {
  std::string_view text;
  size_t col;
};

std::string_view trim(std::string_view s, size_t &col) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
    ++col;
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

std::vector<Field> split_fields(std::string_view line) {
  std::vector<Field> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    std::string_view raw =
        line.substr(start, comma == line.npos ? line.npos : comma - start);
    size_t col = start + 1;
    std::string_view t = trim(raw, col);
    out.push_back({t, col});
    if (comma == line.npos)
      break;
    start = comma + 1;
  }
  return out;
}

} // namespace

std::string format_metrics_csv(const std::vector<EpochMetrics> &rows) {
  std::string out = "epoch";
  for (const MetricsColumn &c : kColumns)
    out += fmt::format(",{}", c.name);
  out += '\n';
  for (const EpochMetrics &r : rows) {
    out += std::to_string(r.epoch);
    for (const MetricsColumn &c : kColumns)
      out += "," + format_value(r.*c.field);
    out += '\n';
  }
  return out;
}

std::vector<EpochMetrics> parse_metrics_csv(std::string_view text,
                                            const std::string &name) {
  std::vector<EpochMetrics> rows;
  // Header column index -> the field it fills (nullptr: a column this kiln
  // does not know, skipped).
  std::vector<std::optional<double> EpochMetrics::*> fields;
  std::vector<std::string> names;
  size_t epoch_index = 0, header_line = 0;
  bool have_header = false;
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == text.npos ? text.npos : nl - pos);
    pos = nl == text.npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    size_t dummy = 1;
    if (trim(line, dummy).empty())
      continue; // blank lines (a trailing one, or between rows) are harmless
    auto where = [&](size_t col) {
      return fmt::format("{}:{}:{}", name, line_no, col);
    };
    std::vector<Field> f = split_fields(line);
    for (const Field &x : f)
      if (x.text.find('"') != x.text.npos)
        fail("{}: quoted fields are not supported in a metrics file",
             where(x.col));

    if (!have_header) {
      have_header = true;
      header_line = line_no;
      std::map<std::string_view, size_t> seen;
      bool has_epoch = false;
      for (size_t i = 0; i < f.size(); ++i) {
        if (f[i].text.empty())
          fail("{}: empty column name in the header", where(f[i].col));
        if (!seen.emplace(f[i].text, i).second)
          fail("{}: column '{}' appears twice in the header", where(f[i].col),
               escape_for_message(std::string(f[i].text)));
        std::optional<double> EpochMetrics::*field = nullptr;
        if (f[i].text == "epoch") {
          has_epoch = true;
          epoch_index = i;
        }
        for (const MetricsColumn &c : kColumns)
          if (f[i].text == c.name)
            field = c.field;
        fields.push_back(field);
        names.emplace_back(f[i].text);
      }
      if (!has_epoch)
        fail("{}: the header has no 'epoch' column (expected a metrics CSV "
             "from kiln train: epoch,train_loss,...)",
             where(1));
      continue;
    }

    if (f.size() != fields.size())
      fail("{}: {} fields, expected {} as in the header (line {})", where(1),
           f.size(), fields.size(), header_line);
    EpochMetrics row;
    for (size_t i = 0; i < f.size(); ++i) {
      std::string_view t = f[i].text;
      if (i == epoch_index) {
        int e = -1;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), e);
        if (t.empty() || ec != std::errc() || end != t.data() + t.size() ||
            e < 0)
          fail("{}: epoch '{}' is not a whole number of 0 or more",
               where(f[i].col), escape_for_message(std::string(t)));
        row.epoch = e;
        continue;
      }
      if (!fields[i] || t.empty())
        continue;
      double v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      // from_chars reads "nan" and "inf" as well; an out-of-range number is
      // an error too, not a silent 0 or infinity.
      if (ec != std::errc() || end != t.data() + t.size())
        fail("{}: {} '{}' is not a number", where(f[i].col), names[i],
             escape_for_message(std::string(t)));
      row.*fields[i] = v;
    }
    if (!rows.empty() && row.epoch <= rows.back().epoch)
      fail("{}: epoch {} follows epoch {}; epochs must increase", where(1),
           row.epoch, rows.back().epoch);
    rows.push_back(row);
  }
  if (!have_header)
    fail("{}: empty, expected a header line (epoch,train_loss,...)", name);
  return rows;
}

std::vector<EpochMetrics> read_metrics_csv(const std::string &path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (!fs::exists(st))
    fail("{}: cannot read metrics file: no such file", path);
  if (!fs::is_regular_file(st))
    fail("{}: cannot read metrics file: not a regular file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("{}: cannot read metrics file: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    fail("{}: cannot read metrics file: read error", path);
  return parse_metrics_csv(ss.str(), path);
}

void write_metrics_csv(const std::string &path,
                       const std::vector<EpochMetrics> &rows) {
  AtomicFile f(path, "cannot write metrics file");
  f.write(format_metrics_csv(rows));
  f.commit();
}

std::string metrics_path_for_checkpoint(const std::string &checkpoint) {
  if (checkpoint.empty())
    return "";
  std::filesystem::path p(checkpoint);
  if (p.extension() == ".safetensors")
    p.replace_extension();
  return p.string() + ".metrics.csv";
}

} // namespace kiln
