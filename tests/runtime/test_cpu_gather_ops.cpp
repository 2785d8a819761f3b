// The CPU backend's gather and scatter_add host loops
// (runtime/cpu_gather_ops.cpp) against the reference interpreter on random
// shapes, every axis, i32 and i64 indices with repeats; and an index out of
// range as a clear error, both as a graph input (checked before the step)
// and computed inside the graph (checked by the host loop before it writes).
#include "cpu_test_util.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln::test {
namespace {

struct GatherCase {
  DType data, index;
  Shape x, idx;
  int axis;
  std::string str() const {
    return fmt::format("{}[{}] axis {} indices {}[{}]", dtype_name(data),
                       fmt::join(x, ","), axis, dtype_name(index),
                       fmt::join(idx, ","));
  }
};

// gather(x, idx) and scatter_add(idx, u) {size = x.shape[axis]} with u of
// gather's result shape: outputs 0 and 1.
std::unique_ptr<Graph> gather_graph(const GatherCase &c) {
  auto g = std::make_unique<Graph>("t");
  Value *x = g->add_input("x", {c.data, c.x});
  Value *i = g->add_input("i", {c.index, c.idx});
  Builder b(*g);
  Value *y = b.op(Op::Gather, {x, i}, {{"axis", int64_t{c.axis}}});
  Value *u = g->add_input("u", y->type);
  g->add_output(y);
  g->add_output(b.op(Op::ScatterAdd, {i, u},
                     {{"axis", int64_t{c.axis}}, {"size", c.x[c.axis]}}));
  return g;
}

std::vector<Array> gather_inputs(const Graph &g, const GatherCase &c,
                                 std::mt19937 &rng) {
  std::vector<Array> in = random_inputs(g, rng());
  // Indices drawn from a small range, so that scatter_add sees repeats.
  std::uniform_int_distribution<int64_t> pick(0, c.x[c.axis] - 1);
  for (int64_t k = 0; k < in[1].numel(); ++k)
    in[1].set(k, static_cast<double>(pick(rng)));
  return in;
}

TEST(CpuGatherOps, MatchTheInterpreterOnRandomShapesAxesAndIndexTypes) {
  std::mt19937 rng(1201);
  std::uniform_int_distribution<int64_t> dim(1, 4);
  for (int t = 0; t < 60; ++t) {
    GatherCase c;
    c.data = t % 2 ? DType::f64 : DType::f32;
    c.index = (t / 2) % 2 ? DType::i64 : DType::i32;
    int rank = 1 + t % 3;
    for (int d = 0; d < rank; ++d)
      c.x.push_back(dim(rng));
    c.axis = static_cast<int>(rng() % rank);
    int irank = static_cast<int>(rng() % 3); // 0: a scalar index
    for (int d = 0; d < irank; ++d)
      c.idx.push_back(dim(rng) + 1);
    SCOPED_TRACE(c.str());
    auto g = gather_graph(c);
    // f32 sums of repeated updates may differ in the last bit: the
    // interpreter adds in f64 and rounds once.
    check_against_interpreter(*g, gather_inputs(*g, c, rng), c.str(), 1, -1,
                              c.data == DType::f32 ? 1e-5 : -1);
  }
}

TEST(CpuGatherOps, WideRowsAndManyRepeats) {
  // An embedding-like table (rows wider than scatter_add's 512-column
  // blocks, more indices than rows) and a middle axis with outer > 1.
  std::mt19937 rng(7);
  for (GatherCase c :
       {GatherCase{DType::f32, DType::i64, {10, 1100}, {64}, 0},
        GatherCase{DType::f64, DType::i32, {3, 5, 700}, {4, 9}, 1},
        GatherCase{DType::f32, DType::i32, {6, 2, 3}, {50}, 2}}) {
    SCOPED_TRACE(c.str());
    auto g = gather_graph(c);
    check_against_interpreter(*g, gather_inputs(*g, c, rng), c.str(), 2, -1,
                              c.data == DType::f32 ? 1e-4 : -1);
  }
}

TEST(CpuGatherOps, GatherCopiesIntegerRows) {
  // gather moves elements without arithmetic, so i64 values beyond 2^53
  // come through exactly.
  Graph g("t");
  Value *x = g.add_input("x", {DType::i64, {3, 2}});
  Value *i = g.add_input("i", {DType::i32, {4}});
  Builder b(g);
  g.add_output(b.op(Op::Gather, {x, i}));
  std::vector<Array> in = {Array(x->type), Array(i->type)};
  const int64_t big = (int64_t{1} << 60) + 1;
  for (int k = 0; k < 6; ++k)
    in[0].as<int64_t>()[k] = big + k;
  int32_t pick[] = {2, 0, 2, 1};
  std::copy(pick, pick + 4, in[1].as<int32_t>());
  std::vector<Array> out = make_cpu_backend()->compile(g)->run(in);
  const int64_t *y = out[0].as<int64_t>();
  for (int r = 0; r < 4; ++r)
    for (int k = 0; k < 2; ++k)
      EXPECT_EQ(y[r * 2 + k], big + pick[r] * 2 + k);
}

std::string error_of(Executable &e, std::vector<Array> &in) {
  try {
    e.run(in);
  } catch (const Error &err) {
    return err.what();
  }
  return "no error";
}

TEST(CpuGatherOps, AnIndexInputOutOfRangeIsAnErrorBeforeTheStep) {
  GatherCase c{DType::f32, DType::i64, {5, 3}, {2, 2}, 0};
  auto g = gather_graph(c);
  auto cpu = make_cpu_backend()->compile(*g);
  std::mt19937 rng(3);
  for (int64_t bad : {5, -1}) {
    std::vector<Array> in = gather_inputs(*g, c, rng);
    in[1].set(3, static_cast<double>(bad));
    EXPECT_EQ(error_of(*cpu, in),
              fmt::format("input %i of @t: element 3 is {}, outside [0, 5), "
                          "the range of the gather that reads it",
                          bad));
  }
}

TEST(CpuGatherOps, AComputedIndexOutOfRangeIsAnErrorNamingIt) {
  // The indices are computed in the graph (i + 1), so only the host loops
  // can check them: before they write anything.
  for (Op op : {Op::Gather, Op::ScatterAdd}) {
    Graph g("t");
    Value *x = g.add_input("x", {DType::f64, {2, 4, 3}});
    Value *i = g.add_input("i", {DType::i32, {2, 2}});
    Builder b(g);
    Value *j = b.add(i, b.scalar(1, DType::i32));
    Attrs a{{"axis", int64_t{1}}};
    if (op == Op::Gather) {
      g.add_output(b.op(Op::Gather, {x, j}, a));
    } else {
      Value *u = g.add_input("u", {DType::f64, {2, 2, 2, 3}});
      a.set("size", int64_t{4});
      g.add_output(b.op(Op::ScatterAdd, {j, u}, a));
    }
    std::vector<Array> in = random_inputs(g, 1);
    for (int k = 0; k < 4; ++k)
      in[1].set(k, k == 2 ? 3 : k % 3);
    std::string want = fmt::format(
        "{}: index 4 at indices[1,0] is out of range [0, 4) for axis 1",
        op_name(op));
    auto cpu = make_cpu_backend()->compile(g);
    EXPECT_EQ(error_of(*cpu, in), want);
    auto ref = make_interpreter_backend()->compile(g);
    EXPECT_EQ(error_of(*ref, in), want);
  }
}

} // namespace
} // namespace kiln::test
