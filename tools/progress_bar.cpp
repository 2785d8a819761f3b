#include "tools/progress_bar.h"

#include <fmt/format.h>
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

void ProgressBar::draw(int64_t done, const std::string &extra) {
  constexpr int kWidth = 30;
  double frac = total_ > 0 ? static_cast<double>(done) / total_ : 1.0;
  int filled = static_cast<int>(frac * kWidth);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
          .count();
  double rate = secs > 0 ? done / secs : 0;
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  std::fputs(fmt::format("\r{} [{}] {}/{} {:.0f} steps/s {}\x1b[K", label_, bar,
                         done, total_, rate, extra)
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
