// Profiling the CPU backend (ir/profile.h): with profiling on, a run records
// one launch event per launch the executable makes, named and typed, with
// the bytes and FLOPs of its node; with it off, none.
#include "ir/builder.h"
#include "ir/profile.h"
#include "passes/pass_manager.h"
#include "runtime/cpu_backend.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(CpuProfile, OneEventPerLaunch) {
  Graph g("prof");
  Value *x = g.add_input("x", {DType::f32, {8, 16}});
  Value *w = g.add_input("w", {DType::f32, {16, 4}}, InputKind::param);
  Builder b(g);
  Value *h = b.relu(b.add(b.matmul(x, w), b.constant(1.0, {DType::f32, {}})));
  g.add_output(b.sum(h, {1}));
  PassOptions opts;
  opts.read_env = false;
  opts.verify_each = true;
  PassManager pm(opts);
  pm.add_pipeline("canonicalize,cse,dce,fuse-elementwise,dce");
  pm.run(g);

  auto backend = make_cpu_backend(1);
  auto exe = backend->compile(g);
  const CpuExecutableStats *st = cpu_executable_stats(*exe);
  ASSERT_NE(st, nullptr);
  int launches = st->kernel_launches + st->gemm_launches + st->host_launches;
  std::vector<Array> in = {Array({DType::f32, {8, 16}}),
                           Array({DType::f32, {16, 4}})};

  profile::set_enabled(false);
  profile::take();
  exe->run(in);
  EXPECT_TRUE(profile::take().empty());

  profile::set_enabled(true);
  exe->run(in);
  profile::set_enabled(false);
  std::vector<profile::Event> ev = profile::take();
  ASSERT_EQ(static_cast<int>(ev.size()), launches);
  ASSERT_GE(launches, 2);
  EXPECT_EQ(ev[0].category, "launch");
  EXPECT_EQ(ev[0].kind, "gemm");
  // 2 * 8 * 4 * 16 multiply-adds; x, w and the [8,4] result once each.
  EXPECT_EQ(ev[0].flops, 2.0 * 8 * 4 * 16);
  EXPECT_EQ(ev[0].bytes, (8 * 16 + 16 * 4 + 8 * 4) * 4);
  EXPECT_NE(ev[0].name.find("(gemm)"), std::string::npos) << ev[0].name;
  EXPECT_EQ(ev[1].kind, "reduction");
  for (size_t i = 1; i < ev.size(); ++i)
    EXPECT_GE(ev[i].start_us, ev[i - 1].start_us);
}

} // namespace
} // namespace kiln
