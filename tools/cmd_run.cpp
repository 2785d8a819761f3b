// `kiln run FILE.kir --input NAME=FILE.npy ... [--out DIR] [--passes=...]`:
// runs a graph on the reference interpreter with inputs from .npy files,
// prints a short summary of each output and writes DIR/out<i>.npy.
#include "ir/error.h"
#include "ir/interpreter.h"
#include "tools/commands.h"
#include "tools/ir_file.h"
#include "tools/npy.h"
#include "tools/pipeline.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>

namespace kiln {

namespace {

struct RunArgs {
  std::string input;
  std::vector<std::string> feeds; // NAME=FILE.npy
  std::string out_dir;
  std::string passes;
};

std::string input_list(const Graph &g) {
  std::vector<std::string> names;
  for (const GraphInput &in : g.inputs())
    names.push_back(
        fmt::format("%{}: {}", in.value->name, in.value->type.str()));
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

// The graph's inputs in order, each read from the file the command line
// names for it, checked against the input's dtype and shape.
std::vector<HostTensor> read_inputs(const Graph &g,
                                    const std::vector<std::string> &feeds) {
  std::map<std::string, std::string> paths;
  for (const std::string &f : feeds) {
    size_t eq = f.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == f.size())
      fail("--input expects NAME=FILE.npy, got '{}'", f);
    std::string name = f.substr(0, eq);
    if (name[0] == '%')
      name.erase(0, 1);
    if (!g.find_input(name))
      fail("graph @{} has no input %{} (its inputs: {})", g.name, name,
           input_list(g));
    if (!paths.emplace(name, f.substr(eq + 1)).second)
      fail("input %{} is given twice", name);
  }
  std::vector<std::string> missing;
  for (const GraphInput &in : g.inputs())
    if (!paths.count(in.value->name))
      missing.push_back(
          fmt::format("%{}: {}", in.value->name, in.value->type.str()));
  if (!missing.empty())
    fail("missing --input for {}", fmt::join(missing, ", "));

  std::vector<HostTensor> tensors;
  for (const GraphInput &in : g.inputs()) {
    const std::string &path = paths.at(in.value->name);
    NpyArray a = read_npy(path);
    auto dtype = parse_dtype(a.dtype);
    if (!dtype)
      fail("'{}': unsupported dtype {}", path, a.dtype);
    Type t{*dtype, a.shape};
    if (t != in.value->type)
      fail("input %{} is {} but '{}' holds {}{}", in.value->name,
           in.value->type.str(), path, t.str(),
           t.shape == in.value->type.shape
               ? fmt::format(" (convert it, e.g. numpy's astype('{}'))",
                             dtype_name(in.value->type.dtype))
               : "");
    tensors.emplace_back(t, std::move(a.data));
    tensors.back().i64 = std::move(a.i64); // exact beyond 2^53
  }
  return tensors;
}

std::string summary(const HostTensor &t) {
  std::string s = t.type.str();
  if (t.data.empty())
    return s + " (empty)";
  if (t.numel() == 1)
    return fmt::format("{} = {:.6g}", s, t.data[0]);
  auto [lo, hi] = std::minmax_element(t.data.begin(), t.data.end());
  double sum = 0;
  for (double x : t.data)
    sum += x;
  std::vector<std::string> first;
  for (int64_t i = 0; i < std::min<int64_t>(t.numel(), 6); ++i)
    first.push_back(fmt::format("{:.6g}", t.data[i]));
  return fmt::format("{} min {:.6g} max {:.6g} mean {:.6g} [{}{}]", s, *lo, *hi,
                     sum / static_cast<double>(t.numel()),
                     fmt::join(first, ", "), t.numel() > 6 ? ", ..." : "");
}

void run_run(const RunArgs &a) {
  auto g = load_graph(a.input);
  run_pipeline(*g, split_pass_list(a.passes));
  std::vector<HostTensor> outputs = interpret(*g, read_inputs(*g, a.feeds));
  if (!a.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.out_dir, ec);
    if (ec)
      fail("cannot create '{}': {}", a.out_dir, ec.message());
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const HostTensor &t = outputs[i];
    const Value *v = g->outputs[i].value;
    bool named = !v->name.empty() &&
                 v->name.find_first_not_of("0123456789") != std::string::npos;
    fmt::print("out{}{}: {}\n", i, named ? " %" + v->name : "", summary(t));
    if (!a.out_dir.empty()) {
      NpyArray arr{std::string(dtype_name(t.type.dtype)), t.type.shape, t.data,
                   t.i64};
      write_npy((std::filesystem::path(a.out_dir) / fmt::format("out{}.npy", i))
                    .string(),
                arr);
    }
  }
}

} // namespace

void add_run_command(CLI::App &app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App *cmd = app.add_subcommand(
      "run", "run a .kir graph on the reference interpreter with .npy inputs");
  cmd->add_option("file", args->input, "the .kir file, '-' for stdin")
      ->required();
  cmd->add_option("-i,--input", args->feeds,
                  "NAME=FILE.npy for each graph input (repeat the option)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--out", args->out_dir,
                  "write each output i to DIR/out<i>.npy");
  cmd->add_option("--passes", args->passes,
                  "comma-separated passes to run before interpreting");
  cmd->callback([args] { run_run(*args); });
}

} // namespace kiln
