// PassManager: runs named passes in order on a graph, as parsed from a
// pipeline text such as "canonicalize,cse,dce,fuse-elementwise". Between
// passes it can verify the graph (on in debug builds and tests), print it
// (--print-after-all, --print-after=NAME, MLIR's semantics: printed after
// every run of a selected pass, with "(no change)" in the header when the
// pass left the graph as it was), dump it to numbered files (KILN_DUMP=DIR:
// DIR/00-input.kir, DIR/01-canonicalize.kir, ...) and time each pass (a table
// on stderr).
#pragma once

#include "ir/graph.h"
#include "ir/printer.h"
#include "passes/pass.h"

#include <chrono>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct PassOptions {
  // Verify the graph before the first pass and after every pass; a failure
  // names the pass. Off by default in release builds only to keep the
  // frontend's compiles lean; `kiln opt` and the tests turn it on.
#ifdef NDEBUG
  bool verify_each = false;
#else
  bool verify_each = true;
#endif
  bool print_after_all = false;
  std::vector<std::string> print_after; // pass names
  bool print_after_change = false;      // print only when a pass changed it
  bool pass_timing = false;
  // Writes DIR/GGG-graph/NN-stage.kir after every stage: one folder per
  // run (per compiled graph), numbered in the order the process ran them,
  // so a program that compiles several graphs keeps them all. Empty:
  // KILN_DUMP when read_env is set, else nothing.
  std::string dump_dir;
  bool read_env = true;
  // Where printing and the timing table go; nullptr means std::cerr.
  std::ostream *out = nullptr;
};

// One run of one pass.
struct PassRecord {
  std::string name;
  bool changed = false;
  double seconds = 0;
};

// The pipeline `kiln` uses for a training step, after autodiff and the
// optimizer have been traced in.
std::string_view default_pipeline();

// "a, b,c" -> {"a", "b", "c"} with every name checked against the pass
// table; an unknown name throws kiln::Error listing the known passes.
std::vector<const PassInfo *> parse_pipeline(std::string_view text);

class PassManager {
public:
  explicit PassManager(PassOptions opts = {});

  // Appends passes by name, or a whole pipeline text; throws kiln::Error
  // for an unknown name before anything runs.
  PassManager &add(std::string_view name);
  PassManager &add_pipeline(std::string_view text);
  // Appends a pass that is not in the table (tests: a pass that breaks the
  // graph); `p` must outlive the manager.
  PassManager &add_pass(const PassInfo &p) {
    passes_.push_back(&p);
    return *this;
  }

  // Runs the passes in order; returns true when some pass changed the
  // graph. A pass that throws, or a graph that fails verification, throws
  // kiln::Error naming the pass.
  bool run(Graph &g);

  // The graph as text, annotated by the last analysis that ran (after
  // memory-plan: the buffer of each result and the peak in a header).
  std::string print(const Graph &g) const;

  const std::vector<PassRecord> &records() const { return records_; }
  const std::vector<const PassInfo *> &passes() const { return passes_; }
  PassOptions &options() { return opts_; }

private:
  std::ostream &out() const;
  bool selected_for_print(std::string_view name) const;
  void dump(const Graph &g, int stage, std::string_view name) const;
  void print_timing() const;

  PassOptions opts_;
  std::vector<const PassInfo *> passes_;
  std::vector<PassRecord> records_;
  const PassInfo *annotate_with_ = nullptr; // the analysis to print with
  std::string dump_folder_;                 // this run's folder under dump_dir
};

} // namespace kiln
