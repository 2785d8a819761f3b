#include "tools/profile_report.h"

#include "runtime/atomic_file.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>

namespace kiln {

double measure_copy_bandwidth() {
  constexpr size_t kBytes = size_t{64} << 20;
  auto src = std::make_unique<char[]>(kBytes);
  auto dst = std::make_unique<char[]>(kBytes);
  std::memset(src.get(), 1, kBytes);
  std::memset(dst.get(), 0, kBytes);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst.get(), src.get(), kBytes);
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    best = std::min(best, s);
    src[rep] = dst[kBytes - 1 - rep]; // keep the copies observable
  }
  return 2.0 * static_cast<double>(kBytes) / best / 1e9;
}

std::vector<profile::Event>
last_step_launches(const std::vector<profile::Event> &events,
                   std::string_view category) {
  const profile::Event *step = nullptr;
  for (const profile::Event &e : events)
    if (e.category == category)
      step = &e;
  std::vector<profile::Event> out;
  for (const profile::Event &e : events)
    if (e.category == "launch" &&
        (!step || (e.start_us >= step->start_us &&
                   e.start_us + e.dur_us <= step->start_us + step->dur_us)))
      out.push_back(e);
  return out;
}

std::string launch_table(const std::vector<profile::Event> &launches,
                         double copy_gbps) {
  double total_us = 0, total_flops = 0;
  int64_t total_bytes = 0;
  for (const profile::Event &e : launches) {
    total_us += e.dur_us;
    total_bytes += e.bytes;
    total_flops += e.flops;
  }
  auto gbps = [](double bytes, double us) {
    return us > 0 ? bytes / us / 1e3 : 0.0;
  };
  std::string out = fmt::format(
      "| # | launch | kind | time (us) | share | GB/s | GFLOP/s | of copy "
      "bw ({:.1f} GB/s) |\n| ---: | --- | --- | ---: | ---: | ---: | ---: "
      "| ---: |\n",
      copy_gbps);
  int i = 0;
  for (const profile::Event &e : launches) {
    double bw = gbps(static_cast<double>(e.bytes), e.dur_us);
    out += fmt::format(
        "| {} | {} | {} | {:.1f} | {:.1f}% | {:.2f} | {:.2f} | {:.0f}% |\n",
        i++, e.name, e.kind, e.dur_us,
        total_us > 0 ? 100.0 * e.dur_us / total_us : 0.0, bw,
        e.dur_us > 0 ? e.flops / e.dur_us / 1e3 : 0.0,
        copy_gbps > 0 ? 100.0 * bw / copy_gbps : 0.0);
  }
  double bw = gbps(static_cast<double>(total_bytes), total_us);
  out += fmt::format(
      "| | total: {} launches | | {:.1f} | 100% | {:.2f} | {:.2f} | {:.0f}% "
      "|\n",
      launches.size(), total_us, bw,
      total_us > 0 ? total_flops / total_us / 1e3 : 0.0,
      copy_gbps > 0 ? 100.0 * bw / copy_gbps : 0.0);
  return out;
}

std::string phase_summary(const std::vector<profile::Event> &events) {
  std::map<std::string, std::pair<double, int>> by;
  for (const profile::Event &e : events) {
    auto &[us, n] = by[e.category];
    us += e.dur_us;
    ++n;
  }
  std::string out;
  // Nested phases say what they are part of.
  const std::pair<const char *, const char *> order[] = {
      {"trace", ""},
      {"pass", ""},
      {"compile", " (backend: plan, codegen, jit)"},
      {"jit", " (part of compile)"},
      {"step", ""},
      {"launch", " (part of step)"}};
  for (auto [c, note] : order)
    if (auto it = by.find(c); it != by.end())
      out += fmt::format("{:<8} {:10.2f} ms in {} event{}{}\n", c,
                         it->second.first / 1e3, it->second.second,
                         it->second.second == 1 ? "" : "s", note);
  return out;
}

void write_chrome_trace(const std::string &path,
                        const std::vector<profile::Event> &events) {
  nlohmann::json trace = nlohmann::json::array();
  for (const profile::Event &e : events) {
    nlohmann::json ev = {{"name", e.name},
                         {"cat", e.category},
                         {"ph", "X"},
                         {"ts", e.start_us},
                         {"dur", e.dur_us},
                         {"pid", 1},
                         {"tid", e.category == "launch" ? 2 : 1}};
    if (e.category == "launch")
      ev["args"] = {{"kind", e.kind}, {"bytes", e.bytes}, {"flops", e.flops}};
    trace.push_back(std::move(ev));
  }
  nlohmann::json names =
      nlohmann::json::array({{{"name", "thread_name"},
                              {"ph", "M"},
                              {"pid", 1},
                              {"tid", 1},
                              {"args", {{"name", "compile and steps"}}}},
                             {{"name", "thread_name"},
                              {"ph", "M"},
                              {"pid", 1},
                              {"tid", 2},
                              {"args", {{"name", "launches"}}}}});
  for (auto &n : names)
    trace.push_back(std::move(n));
  nlohmann::json doc = {{"traceEvents", std::move(trace)},
                        {"displayTimeUnit", "ms"}};
  AtomicFile f(path, "cannot write the trace");
  f.write(doc.dump(1));
  f.write("\n");
  f.commit();
}

void report_profile(const std::vector<profile::Event> &events,
                    const std::vector<profile::Event> &launches,
                    std::string_view title, std::string_view launches_title,
                    std::string_view device, const std::string &trace_path) {
  fmt::print("{}\n{}", title, phase_summary(events));
  if (launches.empty())
    fmt::print("the {} backend records no launches (try --device cpu)\n",
               device);
  else
    fmt::print("{}\n{}", launches_title,
               launch_table(launches, measure_copy_bandwidth()));
  write_chrome_trace(trace_path, events);
  fmt::print("trace written to {} (chrome://tracing or ui.perfetto.dev)\n",
             trace_path);
}

} // namespace kiln
