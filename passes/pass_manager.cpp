// The pass manager. The algorithm is a loop over the passes: run, time,
// verify (when asked), then print and dump as the options say. Stage files
// are numbered from 00 (the input) so that `ls` lists them in order.
#include "passes/pass_manager.h"

#include "ir/error.h"
#include "ir/profile.h"
#include "ir/verifier.h"

#include <fmt/format.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace kiln {

std::string_view default_pipeline() {
  return "decompose-windows,canonicalize,cse,dce,fuse-elementwise,fuse-"
         "optimizer,dce,"
         "memory-plan";
}

std::vector<const PassInfo *> parse_pipeline(std::string_view text) {
  std::vector<const PassInfo *> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
      item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
      item.remove_suffix(1);
    if (!item.empty()) {
      const PassInfo *p = find_pass(item);
      if (!p) {
        std::vector<std::string_view> known;
        for (const PassInfo &k : all_passes())
          known.push_back(k.name);
        fail("unknown pass '{}' (known passes: {})", item,
             fmt::join(known, ", "));
      }
      out.push_back(p);
    }
    if (comma == std::string_view::npos)
      break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

PassManager::PassManager(PassOptions opts) : opts_(std::move(opts)) {
  if (opts_.dump_dir.empty() && opts_.read_env)
    if (const char *d = std::getenv("KILN_DUMP"); d && *d)
      opts_.dump_dir = d;
  // A misspelled --print-after would otherwise print nothing, silently.
  for (const std::string &n : opts_.print_after)
    if (!find_pass(n)) {
      try {
        parse_pipeline(n);
      } catch (const Error &e) {
        fail("--print-after: {}", e.what());
      }
    }
}

PassManager &PassManager::add(std::string_view name) {
  const PassInfo *p = find_pass(name);
  if (!p)
    parse_pipeline(name); // throws the message listing the known passes
  passes_.push_back(p);
  return *this;
}

PassManager &PassManager::add_pipeline(std::string_view text) {
  for (const PassInfo *p : parse_pipeline(text))
    passes_.push_back(p);
  return *this;
}

std::ostream &PassManager::out() const {
  return opts_.out ? *opts_.out : std::cerr;
}

bool PassManager::selected_for_print(std::string_view name) const {
  if (opts_.print_after_all)
    return true;
  for (const std::string &n : opts_.print_after)
    if (n == name)
      return true;
  return false;
}

std::string PassManager::print(const Graph &g) const {
  if (annotate_with_)
    return annotate_with_->print(g);
  return kiln::print(g);
}

void PassManager::dump(const Graph &g, int stage, std::string_view name) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::path(opts_.dump_dir) / dump_folder_;
  fs::create_directories(dir, ec);
  fs::path path = dir / fmt::format("{:02}-{}.kir", stage, name);
  std::ofstream f(path, std::ios::binary);
  f << print(g);
  if (!f)
    fail("KILN_DUMP: cannot write '{}'", path.string());
}

namespace {

// "CONTEXT: MSG", keeping a located message's "FILE:LINE:COL: error: " in
// front so that the `kiln` command shows the node's position first.
std::string in_context(const std::string &context, std::string_view msg) {
  constexpr std::string_view tag = ": error: ";
  size_t at = msg.find(tag);
  if (at == std::string_view::npos)
    return fmt::format("{}: {}", context, msg);
  size_t split = at + tag.size();
  return fmt::format("{}{}: {}", msg.substr(0, split), context,
                     msg.substr(split));
}

} // namespace

bool PassManager::run(Graph &g) {
  records_.clear();
  annotate_with_ = nullptr;
  if (opts_.verify_each) {
    try {
      verify(g);
    } catch (const Error &e) {
      throw Error(in_context("before the first pass", e.what()));
    }
  }
  if (!opts_.dump_dir.empty()) {
    static std::atomic<int> runs{0};
    std::string name = g.name;
    for (char &c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' &&
          c != '-' && c != '.')
        c = '_';
    dump_folder_ = fmt::format("{:03}-{}", runs++, name);
    dump(g, 0, "input");
  }
  bool any = false;
  int stage = 1;
  for (const PassInfo *p : passes_) {
    auto t0 = std::chrono::steady_clock::now();
    bool changed;
    try {
      profile::Scope scope(fmt::format("pass {}", p->name), "pass");
      changed = p->run(g);
    } catch (const Error &e) {
      throw Error(in_context(fmt::format("pass '{}'", p->name), e.what()));
    }
    auto t1 = std::chrono::steady_clock::now();
    records_.push_back({std::string(p->name), changed,
                        std::chrono::duration<double>(t1 - t0).count()});
    any = any || changed;
    // An analysis's notes stay valid until a pass changes the graph.
    if (p->print)
      annotate_with_ = p;
    else if (changed)
      annotate_with_ = nullptr;
    if (opts_.verify_each) {
      try {
        verify(g);
      } catch (const Error &e) {
        throw Error(
            in_context(fmt::format("after pass '{}'", p->name), e.what()));
      }
    }
    if (selected_for_print(p->name) && (changed || !opts_.print_after_change))
      out() << fmt::format("// -----// IR after {}{} //----- //\n", p->name,
                           changed ? "" : " (no change)")
            << print(g) << std::flush;
    if (!opts_.dump_dir.empty())
      dump(g, stage, p->name);
    ++stage;
  }
  if (opts_.pass_timing)
    print_timing();
  return any;
}

void PassManager::print_timing() const {
  double total = 0;
  for (const PassRecord &r : records_)
    total += r.seconds;
  std::string s = "===-------------------------------------------===\n"
                  "  pass timing\n"
                  "===-------------------------------------------===\n";
  s += fmt::format("  {:>10}  {:>6}  {:<8}  {}\n", "wall (ms)", "%", "changed",
                   "pass");
  for (const PassRecord &r : records_)
    s += fmt::format("  {:>10.3f}  {:>5.1f}%  {:<8}  {}\n", r.seconds * 1e3,
                     total > 0 ? 100.0 * r.seconds / total : 0.0,
                     r.changed ? "yes" : "no", r.name);
  s += fmt::format("  {:>10.3f}  {:>5.1f}%  {:<8}  total\n", total * 1e3, 100.0,
                   "");
  out() << s << std::flush;
}

} // namespace kiln
