// Profiles (ir/profile.h, tools/profile_report.h): events are recorded only
// while profiling is on; the CPU backend records one launch event per
// launch of a step; the table and the Chrome trace show them.
#include "ir/builder.h"
#include "ir/profile.h"
#include "tools/profile_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace kiln {
namespace {

TEST(Profile, RecordsOnlyWhenOn) {
  profile::set_enabled(false);
  profile::take();
  { profile::Scope s("off", "pass"); }
  EXPECT_TRUE(profile::take().empty());
  profile::set_enabled(true);
  { profile::Scope s("on", "pass"); }
  profile::set_enabled(false);
  auto ev = profile::take();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].name, "on");
  EXPECT_EQ(ev[0].category, "pass");
  EXPECT_GE(ev[0].dur_us, 0);
}

std::vector<profile::Event> sample() {
  return {{"compile", "compile", 0, 500, "", 0, 0},
          {"step", "step", 1000, 100, "", 0, 0},
          {"%0 (gemm)", "launch", 1010, 60, "gemm", 6000, 1.2e6},
          {"%1 (elementwise)", "launch", 1075, 20, "elementwise", 2000, 500},
          {"late", "launch", 2000, 5, "host", 0, 0}};
}

TEST(ProfileReport, TableOfTheLastStep) {
  auto launches = last_step_launches(sample());
  ASSERT_EQ(launches.size(), 2u); // "late" ran outside the step
  std::string t = launch_table(launches, 10.0);
  // %0: 60 of 80 us = 75%, 6000 B / 60 us = 0.1 GB/s = 1% of 10 GB/s,
  // 1.2e6 flop / 60 us = 20 GFLOP/s.
  EXPECT_NE(
      t.find("| 0 | %0 (gemm) | gemm | 60.0 | 75.0% | 0.10 | 20.00 | 1% |"),
      std::string::npos)
      << t;
  EXPECT_NE(t.find("| | total: 2 launches | | 80.0 | 100% |"),
            std::string::npos)
      << t;
  std::string p = phase_summary(sample());
  EXPECT_NE(p.find("compile"), std::string::npos) << p;
  EXPECT_NE(p.find("launch"), std::string::npos) << p;
}

TEST(ProfileReport, ChromeTraceIsValidJson) {
  auto path = std::filesystem::temp_directory_path() /
              ("kiln-trace-" + std::to_string(::getpid()) + ".json");
  write_chrome_trace(path.string(), sample());
  std::ifstream in(path);
  auto doc = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  auto &ev = doc.at("traceEvents");
  ASSERT_GE(ev.size(), 5u);
  EXPECT_EQ(ev[2].at("ph"), "X");
  EXPECT_EQ(ev[2].at("name"), "%0 (gemm)");
  EXPECT_EQ(ev[2].at("tid"), 2);
  EXPECT_EQ(ev[2].at("args").at("bytes"), 6000);
  EXPECT_EQ(ev[0].at("tid"), 1);
}

TEST(ProfileReport, CopyBandwidthIsPositive) {
  EXPECT_GT(measure_copy_bandwidth(), 0.1);
}

} // namespace
} // namespace kiln
