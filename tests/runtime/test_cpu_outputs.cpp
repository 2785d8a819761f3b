// The CPU backend's results belong to the caller: an Array returned by one
// run keeps its values after the next run (as on the interpreter and CUDA).
// The frontend relies on it: `Array a = t.to_host();` must not change when
// the next step runs on the same compiled executable.
#include "ir/builder.h"
#include "ir/graph.h"
#include "runtime/cpu_backend.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(CpuOutputs, AResultKeepsItsValuesAfterTheNextRun) {
  Graph g("f");
  Builder b(g);
  Value *x = g.add_input("x", Type{DType::f32, {8}});
  g.add_output(b.add(b.exp(x), x));
  auto exe = make_cpu_backend()->compile(g);
  Array x1(Type{DType::f32, {8}}), x2(Type{DType::f32, {8}});
  for (int64_t i = 0; i < 8; ++i) {
    x1.set(i, 0.0);
    x2.set(i, 1.0);
  }
  std::vector<Array> in1{x1}, in2{x2};
  Array first = exe->run(in1)[0];
  Array second = exe->run(in2)[0];
  EXPECT_FALSE(first.shares_storage(second));
  for (int64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(first.get(i), 1.0) << i;
    EXPECT_NEAR(second.get(i), 3.718281828, 1e-5) << i;
  }
}

} // namespace
} // namespace kiln
