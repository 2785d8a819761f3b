#include "ir/builder.h"
#include "ir/error.h"
#include "passes/pass_manager.h"
#include "test_util.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace kiln {
namespace {

std::unique_ptr<Graph> small() {
  auto g = std::make_unique<Graph>("small");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, {4}});
  Value *a = b.add(x, b.scalar(0, DType::f32));
  b.exp(x); // dead
  g->add_output(b.relu(a));
  return g;
}

TEST(PassManager, ParsesPipelinesAndRejectsUnknownNames) {
  EXPECT_EQ(parse_pipeline(" canonicalize, cse ,dce").size(), 3u);
  EXPECT_EQ(parse_pipeline(default_pipeline()).back()->name, "memory-plan");
  try {
    parse_pipeline("cse,no-such-pass");
    FAIL() << "expected an error";
  } catch (const Error &e) {
    std::string m = e.what();
    EXPECT_NE(m.find("unknown pass 'no-such-pass'"), std::string::npos) << m;
    EXPECT_NE(m.find("fuse-elementwise"), std::string::npos) << m;
  }
}

TEST(PassManager, PrintAfterMarksNoChangeAndTimes) {
  std::ostringstream out;
  PassOptions o;
  o.read_env = false;
  o.print_after_all = true;
  o.pass_timing = true;
  o.out = &out;
  PassManager pm(o);
  pm.add_pipeline("canonicalize,canonicalize,dce");
  auto g = small();
  EXPECT_TRUE(pm.run(*g));
  std::string s = out.str();
  EXPECT_NE(s.find("// -----// IR after canonicalize //----- //"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("// -----// IR after canonicalize (no change) //"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("pass timing"), std::string::npos);
  ASSERT_EQ(pm.records().size(), 3u);
  EXPECT_TRUE(pm.records()[0].changed);
  EXPECT_FALSE(pm.records()[1].changed);
  EXPECT_TRUE(pm.records()[2].changed);
}

TEST(PassManager, PrintAfterNamedAndAfterChange) {
  std::ostringstream out;
  PassOptions o;
  o.read_env = false;
  o.print_after = {"dce"};
  o.print_after_change = true;
  o.out = &out;
  PassManager pm(o);
  pm.add_pipeline("canonicalize,dce,dce");
  auto g = small();
  pm.run(*g);
  std::string s = out.str();
  EXPECT_EQ(s.find("after canonicalize"), std::string::npos);
  EXPECT_NE(s.find("IR after dce //"), std::string::npos);
  EXPECT_EQ(s.find("(no change)"), std::string::npos) << s;
}

TEST(PassManager, UnknownPrintAfterPassIsAnError) {
  PassOptions o;
  o.read_env = false;
  o.print_after = {"dce", "frobnicate"};
  try {
    PassManager pm(o);
    FAIL() << "no error";
  } catch (const Error &e) {
    std::string m = e.what();
    EXPECT_NE(m.find("--print-after: unknown pass 'frobnicate' (known passes:"),
              std::string::npos)
        << m;
  }
}

TEST(PassManager, DumpsNumberedStages) {
  auto dir = std::filesystem::temp_directory_path() /
             ("kiln-dump-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  PassOptions o;
  o.read_env = false;
  o.dump_dir = dir.string();
  PassManager pm(o);
  pm.add_pipeline("canonicalize,dce,memory-plan");
  auto g = small();
  pm.run(*g);
  // One folder per run: a second graph does not overwrite the first.
  auto g2 = small();
  g2->name = "second";
  pm.run(*g2);
  std::vector<std::filesystem::path> runs;
  for (auto &e : std::filesystem::directory_iterator(dir))
    runs.push_back(e.path());
  std::sort(runs.begin(), runs.end());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(runs[0].filename().string().ends_with("-" + g->name)) << runs[0];
  EXPECT_TRUE(runs[1].filename().string().ends_with("-second")) << runs[1];
  for (const auto &run : runs)
    for (const char *f : {"00-input.kir", "01-canonicalize.kir", "02-dce.kir",
                          "03-memory-plan.kir"})
      EXPECT_TRUE(std::filesystem::exists(run / f)) << run / f;
  std::ifstream in(runs[0] / "03-memory-plan.kir");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("// memory-plan: arena"), std::string::npos) << text;
  // The annotations: the graph's one result is written into its own output
  // buffer.
  EXPECT_NE(text.find("// output 0"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

TEST(PassManager, VerifierFailureNamesThePass) {
  // A pass that breaks the graph is caught by verify-after-each.
  PassOptions o;
  o.read_env = false;
  o.verify_each = true;
  PassManager pm(o);
  pm.add("dce");
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {4}});
  Value *y = b.exp(x);
  g.add_output(y, 0); // aliases a data input: invalid
  try {
    pm.run(g);
    FAIL() << "expected a verifier error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("verifier"), std::string::npos);
  }
}

// A pass that breaks the graph: its first output now aliases a data input,
// which the verifier rejects (an output may update only a param or state).
bool break_graph(Graph &g) {
  g.outputs.at(0).alias = 0;
  return true;
}
const PassInfo kBreakGraph{"break-graph", break_graph, nullptr,
                           "test: break it"};

TEST(PassManager, VerifyEachNamesThePassThatBrokeTheGraph) {
  PassOptions o;
  o.read_env = false;
  o.verify_each = true;
  PassManager pm(o);
  pm.add("cse").add_pass(kBreakGraph).add("dce");
  auto g = small();
  try {
    pm.run(*g);
    FAIL() << "expected a verifier error naming the pass";
  } catch (const Error &e) {
    std::string m = e.what();
    EXPECT_EQ(m.rfind("after pass 'break-graph': verifier:", 0), 0u) << m;
  }
  // The pass after it did not run.
  ASSERT_EQ(pm.records().size(), 2u);
  EXPECT_EQ(pm.records().back().name, "break-graph");

  // Without verify-each the broken graph goes through unnoticed.
  o.verify_each = false;
  PassManager quiet(o);
  quiet.add_pass(kBreakGraph);
  auto h = small();
  EXPECT_NO_THROW(quiet.run(*h));
}

} // namespace
} // namespace kiln
