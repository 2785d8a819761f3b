#include "tools/progress_bar.h"

#include <fmt/format.h>

#include <algorithm>
#include <unistd.h>

namespace kiln {

ProgressBar::ProgressBar(std::string label, int64_t total, std::FILE *out)
    : label_(std::move(label)), total_(total), out_(out),
      tty_(isatty(fileno(out)) != 0), start_(std::chrono::steady_clock::now()),
      last_draw_() {}

void ProgressBar::update(int64_t done, const std::string &extra) {
  if (!tty_)
    return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100))
    return;
  last_draw_ = now;
  draw(done, extra);
}

std::string ProgressBar::render(const std::string &label, int64_t done,
                                int64_t total, double secs,
                                const std::string &extra) {
  constexpr int kWidth = 30;
  double frac = total > 0 ? static_cast<double>(done) / total : 1.0;
  int filled = static_cast<int>(std::clamp(frac, 0.0, 1.0) * kWidth);
  double rate = secs > 0 ? done / secs : 0;
  std::string eta = "--";
  if (rate > 0 && done <= total) {
    auto left = static_cast<int64_t>((total - done) / rate + 0.5);
    eta = left >= 3600 ? fmt::format("{}:{:02}:{:02}", left / 3600,
                                     left / 60 % 60, left % 60)
                       : fmt::format("{}:{:02}", left / 60, left % 60);
  }
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  return fmt::format("{} [{}] {}/{} {:.0f} steps/s ETA {} {}", label, bar, done,
                     total, rate, eta, extra);
}

void ProgressBar::exclude(double secs) {
  start_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(secs));
}

void ProgressBar::draw(int64_t done, const std::string &extra) {
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
          .count();
  std::fputs(
      fmt::format("\r{}\x1b[K", render(label_, done, total_, secs, extra))
          .c_str(),
      out_);
  std::fflush(out_);
}

void ProgressBar::done() {
  if (tty_) {
    std::fputs("\r\x1b[K", out_);
    std::fflush(out_);
  }
}

} // namespace kiln
