// kiln_fuzz: a seeded random-mutation fuzzer of the text IR path, in
// process: mutate a .kir file of the test corpus (tests/lit/**/*.kir), then
// parse -> verify -> passes (the default pipeline with or without autodiff
// first, or a random sequence of passes, each through the PassManager) ->
// print and parse again -> the reference interpreter on random inputs when
// the graph is small.
//
// Every outcome must be success or kiln::Error. A finding is any other
// exception, a pass that leaves a graph the verifier rejects, a printed
// graph that does not parse back, a crash (signal, sanitizer report) or a
// case running longer than --case-seconds. Findings print the mutated input;
// with --findings DIR they are also written there as .kir files. Exit status
// 1 when there was a finding. --differential also compares the
// interpreter's outputs before and after the passes (not in ctest: passes
// may legitimately round differently).
//
//   kiln_fuzz [--seed N] [--iterations N] [--seconds S] [--case-seconds S]
//             [--corpus DIR] [--findings DIR] [--verbose] [--differential]
//
// The same seed and corpus run the same cases in the same order; --seconds
// only cuts the run short (so ctest stays bounded under ASan). The
// environment variables KILN_FUZZ_SEED, KILN_FUZZ_ITERATIONS and
// KILN_FUZZ_SECONDS override the flags (a longer run from ctest).
#include "ir/error.h"
#include "ir/graph.h"
#include "ir/host_tensor.h"
#include "ir/interpreter.h"
#include "ir/op.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pass_manager.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef KILN_SOURCE_DIR
#define KILN_SOURCE_DIR "."
#endif

extern "C" void __sanitizer_set_death_callback(void (*)(void))
    __attribute__((weak));

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

// ---- the input under test, for the crash and hang reports ----
// A fixed buffer, so that a signal handler can write it out.
char g_current[1 << 16];
size_t g_current_len = 0;
char g_findings_path[4096] = {0};

void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0)
      return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void dump_current(const char *what) {
  write_all(2, "\nkiln_fuzz: FINDING: ", 21);
  write_all(2, what, std::strlen(what));
  write_all(2, " on this input:\n", 16);
  write_all(2, g_current, g_current_len);
  write_all(2, "\n", 1);
  if (g_findings_path[0]) {
    int fd = ::open(g_findings_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      write_all(fd, g_current, g_current_len);
      ::close(fd);
    }
  }
}

extern "C" void on_signal(int sig) {
  dump_current(sig == SIGSEGV   ? "crash (SIGSEGV)"
               : sig == SIGFPE  ? "crash (SIGFPE)"
               : sig == SIGBUS  ? "crash (SIGBUS)"
               : sig == SIGILL  ? "crash (SIGILL)"
               : sig == SIGABRT ? "crash (SIGABRT)"
                                : "crash (signal)");
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

extern "C" void on_sanitizer_death() { dump_current("sanitizer report"); }

void set_current(const std::string &text) {
  g_current_len = std::min(text.size(), sizeof g_current);
  std::memcpy(g_current, text.data(), g_current_len);
}

// ---- corpus and mutations ----
std::vector<std::string> load_corpus(const std::filesystem::path &dir) {
  std::vector<std::filesystem::path> files;
  for (const auto &e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".kir")
      files.push_back(e.path());
  std::sort(files.begin(), files.end()); // the same order everywhere
  std::vector<std::string> out;
  for (const auto &f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string text, line;
    // Comment lines (RUN/CHECK) are not IR: mutating them finds nothing.
    while (std::getline(in, line))
      if (line.rfind("//", 0) != 0)
        text += line + "\n";
    out.push_back(std::move(text));
  }
  return out;
}

struct Span {
  size_t begin, end;
};

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
         c == '%' || c == '@' || c == '-' || c == '+';
}

std::vector<Span> tokens(const std::string &s) {
  std::vector<Span> out;
  size_t i = 0;
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
    } else if (s[i] == '"') {
      size_t j = s.find('"', i + 1);
      j = j == std::string::npos ? s.size() : j + 1;
      out.push_back({i, j});
      i = j;
    } else if (word_char(s[i])) {
      size_t j = i;
      while (j < s.size() && word_char(s[j]))
        ++j;
      out.push_back({i, j});
      i = j;
    } else {
      out.push_back({i, i + 1});
      ++i;
    }
  }
  return out;
}

bool is_number(const std::string &s, Span t) {
  size_t i = t.begin;
  if (i < t.end && (s[i] == '-' || s[i] == '+'))
    ++i;
  return i < t.end && std::isdigit(static_cast<unsigned char>(s[i]));
}

const char *const kExtremes[] = {"0",
                                 "-1",
                                 "1",
                                 "2",
                                 "9223372036854775807",
                                 "-9223372036854775808",
                                 "nan",
                                 "inf",
                                 "-inf",
                                 "1e308",
                                 "-1e308",
                                 "4294967296",
                                 "2147483647",
                                 "2147483648",
                                 "65536",
                                 "1000000",
                                 "3",
                                 "1e-320",
                                 "0.5",
                                 "-0",
                                 "18446744073709551616",
                                 "99999999999999999999999",
                                 "268435456",
                                 "100000"};

const char *const kDtypes[] = {"f32", "f64", "i32", "i64", "bool", "f16", "u8"};

class Mutator {
public:
  explicit Mutator(std::mt19937_64 &rng, const std::vector<std::string> &corpus)
      : rng_(rng), corpus_(corpus) {}

  std::string mutate(std::string s) {
    // Mostly one mutation: the text must still parse to reach the passes.
    int r = pick(20), n = r < 12 ? 1 : r < 17 ? 2 : 3 + pick(2);
    for (int i = 0; i < n; ++i)
      s = once(std::move(s));
    return s;
  }

private:
  int pick(int n) {
    return n <= 1 ? 0 : std::uniform_int_distribution<int>(0, n - 1)(rng_);
  }
  size_t pick_size(size_t n) {
    return n <= 1 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }

  std::string once(std::string s) {
    if (s.empty())
      return corpus_[pick_size(corpus_.size())];
    std::vector<Span> ts = tokens(s);
    auto replace = [&](Span t, const std::string &with) {
      return s.substr(0, t.begin) + with + s.substr(t.end);
    };
    // Weighted: the mutations that keep the text well-formed (and its
    // types consistent) come up most.
    static const int kWeights[] = {1, 1, 2, 2, 2, 2, 2, 1,
                                   1, 2, 2, 1, 5, 2, 2, 2};
    int total = 0;
    for (int w : kWeights)
      total += w;
    int roll = pick(total), kind = 0;
    while (roll >= kWeights[kind])
      roll -= kWeights[kind++];
    switch (kind) {
    case 12: { // one dimension value replaced everywhere in brackets
      std::vector<Span> dims;
      int depth = 0;
      for (Span t : ts) {
        char c = s[t.begin];
        depth += c == '[' ? 1 : c == ']' ? -1 : 0;
        if (depth > 0 && is_number(s, t))
          dims.push_back(t);
      }
      if (dims.empty())
        return s;
      Span d = dims[pick_size(dims.size())];
      std::string from = s.substr(d.begin, d.end - d.begin);
      const char *const to[] = {
          "0",          "1",     "9223372036854775807", "4611686018427387904",
          "1000000000", "65536", "3037000500",          "2147483648",
          "100000"};
      std::string with = to[pick_size(std::size(to))];
      std::string out;
      size_t at = 0;
      depth = 0;
      for (Span t : ts) {
        char c = s[t.begin];
        depth += c == '[' ? 1 : c == ']' ? -1 : 0;
        if (depth > 0 && s.compare(t.begin, t.end - t.begin, from) == 0) {
          out += s.substr(at, t.begin - at) + with;
          at = t.end;
        }
      }
      return out + s.substr(at);
    }
    case 13: { // one dtype replaced everywhere
      const char *from = kDtypes[pick_size(4)];
      std::string with = kDtypes[pick_size(std::size(kDtypes))];
      std::string out;
      size_t at = 0;
      for (Span t : ts)
        if (s.compare(t.begin, t.end - t.begin, from) == 0) {
          out += s.substr(at, t.begin - at) + with;
          at = t.end;
        }
      return out + s.substr(at);
    }
    case 14: { // an input of the top graph becomes a param (for autodiff)
      size_t eol = s.find('\n');
      std::vector<size_t> at;
      for (size_t p = s.find('%'); p < eol && p != std::string::npos;
           p = s.find('%', p + 1))
        at.push_back(p);
      if (at.empty())
        return s;
      size_t p = at[pick_size(at.size())];
      return s.substr(0, p) + (pick(3) ? "param " : "state ") + s.substr(p);
    }
    case 15: { // the first output becomes a scalar sum of one (autodiff's
               // loss); the type repair fixes its declared dtype
      size_t r = s.rfind("\n  return %");
      if (r == std::string::npos)
        return s;
      size_t b = r + 10, e = b;
      while (e < s.size() && word_char(s[e]))
        ++e;
      std::string v = s.substr(b, e - b);
      return s.substr(0, r) + "\n  %fuzz.loss = sum(" + v +
             ") : f32[]\n  return %fuzz.loss, " + s.substr(b);
    }
    case 0: { // byte flip
      size_t p = pick_size(s.size());
      s[p] = static_cast<char>(s[p] ^ (1 << pick(8)));
      return s;
    }
    case 1: { // random printable byte
      size_t p = pick_size(s.size());
      const char set[] = "[](){},:=%@\"-.0123456789e>x ";
      s[p] = set[pick_size(sizeof set - 1)];
      return s;
    }
    case 2: // token deletion
      return ts.empty() ? s : replace(ts[pick_size(ts.size())], "");
    case 3: { // token duplication
      if (ts.empty())
        return s;
      Span t = ts[pick_size(ts.size())];
      std::string tok = s.substr(t.begin, t.end - t.begin);
      return replace(t, tok + (pick(2) ? " " : "") + tok);
    }
    case 4:
    case 5:
    case 6: { // a number becomes an extreme value
      std::vector<Span> nums;
      for (Span t : ts)
        if (is_number(s, t))
          nums.push_back(t);
      if (nums.empty())
        return s;
      return replace(nums[pick_size(nums.size())],
                     kExtremes[pick_size(std::size(kExtremes))]);
    }
    case 7: { // a dimension becomes huge, zero, or an extra axis appears
      std::vector<Span> dims;
      for (size_t k = 0; k + 1 < ts.size(); ++k)
        if (s[ts[k].begin] == '[' && is_number(s, ts[k + 1]))
          dims.push_back(ts[k + 1]);
      if (dims.empty())
        return s;
      Span d = dims[pick_size(dims.size())];
      const char *const shapes[] = {"0",
                                    "1000000000",
                                    "9223372036854775807",
                                    "4611686018427387904",
                                    "0,0",
                                    "1,1,1,1,1,1,1,1",
                                    "2,3",
                                    "-1",
                                    "100000,100000"};
      return replace(d, shapes[pick_size(std::size(shapes))]);
    }
    case 8: { // dtype swap
      std::vector<Span> dts;
      for (Span t : ts)
        for (const char *d : kDtypes)
          if (s.substr(t.begin, t.end - t.begin) == d)
            dts.push_back(t);
      if (dts.empty())
        return s;
      return replace(dts[pick_size(dts.size())],
                     kDtypes[pick_size(std::size(kDtypes))]);
    }
    case 9: { // op swap: the word before '('
      std::vector<Span> ops;
      for (size_t k = 0; k + 1 < ts.size(); ++k)
        if (s[ts[k + 1].begin] == '(' && word_char(s[ts[k].begin]) &&
            op_by_name(s.substr(ts[k].begin, ts[k].end - ts[k].begin)))
          ops.push_back(ts[k]);
      if (ops.empty())
        return s;
      Op o = static_cast<Op>(pick(kNumOps));
      return replace(ops[pick_size(ops.size())], std::string(op_name(o)));
    }
    case 10: { // line deletion or duplication
      std::vector<size_t> starts = {0};
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == '\n')
          starts.push_back(i + 1);
      size_t l = pick_size(starts.size());
      size_t b = starts[l];
      size_t e = s.find('\n', b);
      e = e == std::string::npos ? s.size() : e + 1;
      std::string line = s.substr(b, e - b);
      return pick(2) ? s.substr(0, b) + s.substr(e)
                     : s.substr(0, e) + line + s.substr(e);
    }
    case 11: { // splice a line of another corpus file
      const std::string &o = corpus_[pick_size(corpus_.size())];
      std::vector<size_t> starts = {0};
      for (size_t i = 0; i + 1 < o.size(); ++i)
        if (o[i] == '\n')
          starts.push_back(i + 1);
      size_t b = starts[pick_size(starts.size())];
      size_t e = o.find('\n', b);
      e = e == std::string::npos ? o.size() : e + 1;
      size_t at = s.find('\n', pick_size(s.size()));
      at = at == std::string::npos ? s.size() : at + 1;
      return s.substr(0, at) + o.substr(b, e - b) + s.substr(at);
    }
    }
    return s;
  }

  std::mt19937_64 &rng_;
  const std::vector<std::string> &corpus_;
};

// ---- running one case ----
// Elements of a type, saturating at `cap` + 1 (no overflow on huge shapes).
int64_t capped_numel(const Type &t, int64_t cap) {
  int64_t n = 1;
  for (int64_t d : t.shape) {
    if (d <= 0)
      return 0;
    if (n > cap / d)
      return cap + 1;
    n *= d;
  }
  return n;
}

int64_t graph_elements(const Graph &g, int64_t cap) {
  int64_t total = 0;
  auto add = [&](const Type &t) {
    total = std::min(cap + 1, total + capped_numel(t, cap));
  };
  for (const auto &in : g.inputs())
    add(in.value->type);
  for (const auto &n : g.nodes()) {
    for (const Value *r : n->results)
      add(r->type);
    if (n->body)
      total = std::min(cap + 1, total + graph_elements(*n->body, cap));
  }
  return total;
}

std::vector<HostTensor> random_host_inputs(const Graph &g,
                                           std::mt19937_64 &rng) {
  std::vector<HostTensor> in;
  std::uniform_real_distribution<double> u(-3, 3);
  for (const auto &i : g.inputs()) {
    HostTensor t(i.value->type);
    for (double &v : t.data) {
      v = u(rng);
      if (i.value->type.dtype == DType::boolean)
        v = v > 0;
      else if (is_int(i.value->type.dtype))
        v = std::round(v * 3);
      else
        v = round_to(i.value->type.dtype, v);
    }
    in.push_back(std::move(t));
  }
  return in;
}

struct Stats {
  int64_t cases = 0, parsed = 0, passes_ok = 0, interpreted = 0;
  int64_t repaired = 0;
  std::map<std::string, int64_t> findings; // kind: count
};

constexpr int64_t kMaxInterpretElements = 1000000;

class Runner {
public:
  Runner(Stats &st, std::mt19937_64 &rng, bool verbose, bool differential,
         const std::string &findings_dir)
      : st_(st), rng_(rng), verbose_(verbose), differential_(differential),
        findings_dir_(findings_dir) {}

  void run(const std::string &text) {
    set_current(text);
    ++st_.cases;
    std::string stage = "parse";
    try {
      std::unique_ptr<Graph> g;
      std::string cur = text;
      for (int attempt = 0;; ++attempt) {
        try {
          g = parse(cur, "fuzz.kir");
          break;
        } catch (const Error &e) {
          // Malformed text is the expected outcome; but a declared type
          // that differs from the inferred one is rewritten and the text
          // parsed again, so that a changed shape or dtype flows through
          // the graph instead of stopping at its first use.
          if (attempt >= 32 || !repair_type(cur, e.what()))
            return;
          ++st_.repaired;
          set_current(cur);
        }
      }
      ++st_.parsed;
      stage = "verify";
      verify(*g); // parse verifies; a second look must agree
      stage = "interpret (parsed graph)";
      std::vector<HostTensor> inputs, before;
      interpret_if_small(*g, inputs, before);
      for (const std::string &pass : pick_pipeline()) {
        stage = "pass " + pass;
        PassOptions o;
        o.read_env = false;
        o.verify_each = false; // verified here, to tell the pass's own
                               // errors from a broken result
        PassManager pm(o);
        pm.add(pass);
        try {
          pm.run(*g);
        } catch (const Error &) {
          return; // the pass rejected the graph: fine, and it may be
                  // half-rewritten, so stop here
        }
        stage = "verify after pass " + pass;
        try {
          verify(*g);
        } catch (const Error &e) {
          finding("pass " + pass + " produced a graph the verifier rejects",
                  e.what());
          return;
        }
      }
      ++st_.passes_ok;
      stage = "print";
      std::string printed = print(*g);
      stage = "parse printed";
      try {
        parse(printed, "printed.kir");
      } catch (const Error &e) {
        finding("a printed graph does not parse back", e.what(), printed);
        return;
      }
      stage = "interpret (after passes)";
      std::vector<HostTensor> after;
      interpret_if_small(*g, inputs, after);
      if (differential_ && !before.empty() && !after.empty())
        compare(before, after);
    } catch (const Error &) {
      if (stage.rfind("verify", 0) == 0 || stage.rfind("print", 0) == 0)
        finding(stage + " threw on a graph that parsed", "");
      // kiln::Error elsewhere is the expected outcome.
    } catch (const std::exception &e) {
      finding("non-kiln exception in " + stage, e.what());
    } catch (...) {
      finding("unknown exception in " + stage, "");
    }
  }

private:
  // Applies "fuzz.kir:L:C: error: type mismatch: OP declared X but infers Y"
  // to `text`; false when the message is not that.
  static bool repair_type(std::string &text, const std::string &msg) {
    const std::string tag = "fuzz.kir:";
    size_t mm = msg.find(": error: type mismatch: ");
    if (mm == std::string::npos)
      return false;
    size_t at = msg.rfind(tag, mm);
    size_t d = msg.find(" declared ", mm), i = msg.find(" but infers ", mm);
    if (at == std::string::npos || d == std::string::npos ||
        i == std::string::npos || i < d)
      return false;
    long line = 0, col = 0;
    if (std::sscanf(msg.c_str() + at + tag.size(), "%ld:%ld", &line, &col) != 2)
      return false;
    std::string from = msg.substr(d + 10, i - d - 10);
    std::string to = msg.substr(i + 12);
    to = to.substr(0, to.find_first_of(" \n"));
    size_t off = 0;
    for (long l = 1; l < line; ++l) {
      off = text.find('\n', off);
      if (off == std::string::npos)
        return false;
      ++off;
    }
    off += static_cast<size_t>(col - 1);
    if (col < 1 || off > text.size() || text.compare(off, from.size(), from))
      return false;
    text.replace(off, from.size(), to);
    return true;
  }

  std::vector<std::string> pick_pipeline() {
    std::vector<std::string> names;
    std::string_view def = default_pipeline();
    auto split = [&](std::string_view text) {
      for (const PassInfo *p : parse_pipeline(text))
        names.emplace_back(p->name);
    };
    switch (std::uniform_int_distribution<int>(0, 2)(rng_)) {
    case 0:
      names.push_back("autodiff");
      split(def);
      break;
    case 1:
      split(def);
      break;
    default: {
      std::vector<std::string> all;
      for (const PassInfo &p : all_passes())
        all.emplace_back(p.name);
      int n = std::uniform_int_distribution<int>(1, 6)(rng_);
      for (int i = 0; i < n; ++i)
        names.push_back(all[std::uniform_int_distribution<size_t>(
            0, all.size() - 1)(rng_)]);
    }
    }
    return names;
  }

  // Runs the interpreter on `in` (drawn at random when empty) when the
  // graph is small; `out` is left empty when it did not run or threw.
  void interpret_if_small(const Graph &g, std::vector<HostTensor> &in,
                          std::vector<HostTensor> &out) {
    out.clear();
    if (graph_elements(g, kMaxInterpretElements) > kMaxInterpretElements)
      return;
    if (in.empty())
      in = random_host_inputs(g, rng_);
    try {
      out = interpret(g, in);
      ++st_.interpreted;
    } catch (const Error &) {
      // e.g. a label out of range for one_hot: a located error is fine
    }
  }

  // --differential: the graph's outputs before and after the passes (which
  // may append outputs, never change the first ones) agree, NaN with NaN
  // and infinities exactly, finite values loosely (passes reassociate).
  void compare(const std::vector<HostTensor> &before,
               const std::vector<HostTensor> &after) {
    if (after.size() < before.size()) {
      finding("differential: outputs lost", "");
      return;
    }
    for (size_t i = 0; i < before.size(); ++i) {
      const HostTensor &a = before[i], &b = after[i];
      if (a.type != b.type) {
        finding("differential: output type changed",
                a.type.str() + " -> " + b.type.str());
        return;
      }
      bool f64 = a.type.dtype == DType::f64;
      double rtol = is_int(a.type.dtype) ? 0 : f64 ? 1e-9 : 1e-3;
      double atol = is_int(a.type.dtype) ? 1 : f64 ? 1e-9 : 1e-4;
      for (int64_t e = 0; e < a.numel(); ++e) {
        double x = a.data[e], y = b.data[e];
        bool same = (std::isnan(x) && std::isnan(y)) || x == y ||
                    (std::isfinite(x) && std::isfinite(y) &&
                     std::fabs(x - y) <=
                         atol + rtol * std::max(std::fabs(x), std::fabs(y)));
        if (!same) {
          finding("differential: output changed by the passes",
                  fmt::format("output {} element {}: {} before, {} after", i, e,
                              x, y));
          return;
        }
      }
    }
  }

  void finding(const std::string &kind, const std::string &msg,
               const std::string &extra = "") {
    int64_t n = ++st_.findings[kind];
    if (n > 3 && !verbose_)
      return; // counted; the first few are printed
    std::fprintf(stderr, "\nkiln_fuzz: FINDING: %s: %s\ninput:\n%.*s\n",
                 kind.c_str(), msg.c_str(), static_cast<int>(g_current_len),
                 g_current);
    if (!extra.empty())
      std::fprintf(stderr, "printed graph:\n%s\n", extra.c_str());
    if (!findings_dir_.empty()) {
      std::string name = kind;
      for (char &c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)))
          c = '-';
      std::ofstream(findings_dir_ + "/" + name + "-" + std::to_string(n) +
                    ".kir")
          << "// " << kind << ": " << msg << "\n"
          << std::string(g_current, g_current_len);
    }
  }

  Stats &st_;
  std::mt19937_64 &rng_;
  bool verbose_, differential_;
  std::string findings_dir_;
};

int64_t env_or(const char *name, int64_t v) {
  const char *e = std::getenv(name);
  return e && *e ? std::strtoll(e, nullptr, 10) : v;
}

int main_impl(int argc, char **argv) {
  int64_t seed = 1, iterations = 20000;
  double seconds = 45, case_seconds = 30;
  std::string corpus_dir = std::string(KILN_SOURCE_DIR) + "/tests/lit";
  std::string findings_dir;
  bool verbose = false, differential = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        fail("kiln_fuzz: {} needs a value", a);
      return argv[++i];
    };
    if (a == "--seed")
      seed = std::stoll(value());
    else if (a == "--iterations")
      iterations = std::stoll(value());
    else if (a == "--seconds")
      seconds = std::stod(value());
    else if (a == "--case-seconds")
      case_seconds = std::stod(value());
    else if (a == "--corpus")
      corpus_dir = value();
    else if (a == "--findings")
      findings_dir = value();
    else if (a == "--verbose")
      verbose = true;
    else if (a == "--differential")
      differential = true;
    else
      fail("kiln_fuzz: unknown argument '{}'", a);
  }
  seed = env_or("KILN_FUZZ_SEED", seed);
  iterations = env_or("KILN_FUZZ_ITERATIONS", iterations);
  seconds = static_cast<double>(
      env_or("KILN_FUZZ_SECONDS", static_cast<int64_t>(seconds)));
  if (!findings_dir.empty()) {
    std::filesystem::create_directories(findings_dir);
    std::snprintf(g_findings_path, sizeof g_findings_path, "%s/crash.kir",
                  findings_dir.c_str());
  }

  std::vector<std::string> corpus = load_corpus(corpus_dir);
  if (corpus.empty())
    fail("kiln_fuzz: no .kir files under {}", corpus_dir);

  for (int sig : {SIGSEGV, SIGFPE, SIGBUS, SIGILL, SIGABRT})
    std::signal(sig, on_signal);
  if (__sanitizer_set_death_callback)
    __sanitizer_set_death_callback(on_sanitizer_death);

  // A watchdog for hangs: one case running past --case-seconds.
  std::atomic<int64_t> case_start{0}; // ms since t0; -1 when idle
  std::atomic<bool> done{false};
  auto t0 = Clock::now();
  auto now_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                 t0)
        .count();
  };
  std::thread watchdog([&] {
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      int64_t s = case_start.load();
      if (s >= 0 && now_ms() - s > static_cast<int64_t>(case_seconds * 1000)) {
        dump_current("hang (one case ran past --case-seconds)");
        std::_Exit(1);
      }
    }
  });

  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  Mutator mutator(rng, corpus);
  Stats st;
  Runner runner(st, rng, verbose, differential, findings_dir);
  int64_t i = 0;
  for (; i < iterations; ++i) {
    if (now_ms() > static_cast<int64_t>(seconds * 1000))
      break;
    const std::string &base = corpus[i % static_cast<int64_t>(corpus.size())];
    // Every corpus file runs unmutated once, then mutated.
    std::string text =
        i < static_cast<int64_t>(corpus.size()) ? base : mutator.mutate(base);
    case_start = now_ms();
    runner.run(text);
    case_start = -1;
  }
  done = true;
  watchdog.join();

  int64_t total = 0;
  for (auto &[k, n] : st.findings)
    total += n;
  std::printf(
      "kiln_fuzz: seed %lld, %lld cases in %.1f s (%s): %lld parsed, "
      "%lld type repairs, %lld through the passes, %lld interpreted; "
      "%lld findings\n",
      static_cast<long long>(seed), static_cast<long long>(st.cases),
      static_cast<double>(now_ms()) / 1000,
      i < iterations ? "time cap" : "all iterations",
      static_cast<long long>(st.parsed), static_cast<long long>(st.repaired),
      static_cast<long long>(st.passes_ok),
      static_cast<long long>(st.interpreted), static_cast<long long>(total));
  for (auto &[k, n] : st.findings)
    std::printf("  %lld x %s\n", static_cast<long long>(n), k.c_str());
  return total ? 1 : 0;
}

} // namespace
} // namespace kiln

int main(int argc, char **argv) {
  try {
    return kiln::main_impl(argc, argv);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
