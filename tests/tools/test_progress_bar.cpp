// The progress bar's line (tools/progress_bar.h): count, rate and an ETA
// from the stepping time only.
#include "tools/progress_bar.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(ProgressBar, RateAndEta) {
  // 100 of 400 steps in 10 s: 10 steps/s, 300 steps left = 0:30.
  std::string l = ProgressBar::render("epoch 1/5", 100, 400, 10.0, "loss 0.5");
  EXPECT_NE(l.find("100/400 10 steps/s ETA 0:30 loss 0.5"), std::string::npos)
      << l;
  EXPECT_NE(l.find("[#######......................."), std::string::npos) << l;
}

TEST(ProgressBar, LongEtaHasHours) {
  std::string l = ProgressBar::render("e", 1, 10000, 1.0, "");
  EXPECT_NE(l.find("ETA 2:46:39"), std::string::npos) << l;
}

TEST(ProgressBar, NoRateYetHasNoEta) {
  std::string l = ProgressBar::render("e", 0, 10, 0.0, "");
  EXPECT_NE(l.find("ETA --"), std::string::npos) << l;
}

} // namespace
} // namespace kiln
