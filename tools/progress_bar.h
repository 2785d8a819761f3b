// A one-line terminal progress bar for `kiln train`. Debian packages no C++
// progress-bar library (indicators, tqdm-cpp and the like are not in Debian
// 12), and what kiln needs is one line redrawn with '\r', so it is written
// here. When the stream is not a terminal it prints nothing until done(),
// keeping logs and CI output clean.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace kiln {

class ProgressBar {
public:
  ProgressBar(std::string label, int64_t total, std::FILE *out = stderr);
  // Marks `done` of `total` steps finished; `extra` is shown after the bar
  // (e.g. "loss 0.4213"). Redraws at most ~10 times a second.
  void update(int64_t done, const std::string &extra);
  // Clears the line (on a terminal).
  void done();
  // Leaves `secs` out of the rate and the ETA (time spent compiling a step
  // is not time spent stepping).
  void exclude(double secs);

  // The line drawn after `done` of `total` steps took `secs` of stepping:
  // bar, count, steps/s, the estimated time left, then `extra`.
  static std::string render(const std::string &label, int64_t done,
                            int64_t total, double secs,
                            const std::string &extra);

private:
  void draw(int64_t done, const std::string &extra);

  std::string label_;
  int64_t total_;
  std::FILE *out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

} // namespace kiln
