// Reports of a profiled run (ir/profile.h events): the per-launch table of
// one step, printed by `kiln run --profile` and `kiln train --profile`, and
// a Chrome trace (chrome://tracing, Perfetto) of every event.
#pragma once

#include "ir/profile.h"

#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// This machine's memcpy bandwidth in GB/s (bytes read plus bytes written),
// the ceiling the table compares each launch with.
double measure_copy_bandwidth();

// The launches recorded during the last event of category `step` (all the
// launch events when there is none), in order.
std::vector<profile::Event>
last_step_launches(const std::vector<profile::Event> &events,
                   std::string_view step = "step");

// Markdown: launch, kind, time, share of the step, GB/s, GFLOP/s and the
// share of the copy bandwidth, then a total row.
std::string launch_table(const std::vector<profile::Event> &launches,
                         double copy_gbps);

// Compile phases apart from steps: the total time of each category
// ("trace", "pass", "compile", "jit", "step", "launch"; jit is part of
// compile and launches are part of steps).
std::string phase_summary(const std::vector<profile::Event> &events);

// Writes the Chrome trace JSON (Trace Event Format, complete events) to
// path atomically; compile phases and steps on one track, launches on
// another.
void write_chrome_trace(const std::string &path,
                        const std::vector<profile::Event> &events);

// What `--profile` prints and writes: `title` and the phase summary of
// `events`, the launch table of `launches` (or a line saying `device`
// records none), and the Chrome trace at `trace_path`.
void report_profile(const std::vector<profile::Event> &events,
                    const std::vector<profile::Event> &launches,
                    std::string_view title, std::string_view launches_title,
                    std::string_view device, const std::string &trace_path);

} // namespace kiln
