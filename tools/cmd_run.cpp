// `kiln run FILE.kir --input NAME=FILE.npy ... [--out DIR] [--passes=...]
// [--device best|cpu|cuda|interpreter] [--check]`: runs a graph with inputs
// from .npy files, prints a short summary of each output and writes
// DIR/out<i>.npy.
//
// The device: the reference interpreter runs the graph as given (after
// --passes); cpu and cuda compile a copy after the default pipeline
// (passes/pass_manager.h), as the frontend does, and run it once. The default
// is the best backend (runtime/device.h), which honours KILN_DEVICE.
// i64 values stay exact through inputs, layout ops, `where` and outputs on
// every device (Arrays hold int64_t; HostTensor carries exact i64), and a
// compiled backend gets the files' bytes as they are (runtime/npy.h).
//
// `--check` also runs the interpreter on the same inputs and prints, per
// output, the largest absolute and relative difference of the device's
// result from it; an element fails when |dev - ref| > atol + rtol * |ref|
// (f32: rtol 1e-4, atol 1e-5; f64: rtol 1e-10, atol 1e-12; integers and bool
// exact; NaN only matches NaN, an infinity only itself), and any failure
// exits 1 after every output is printed.
#include "ir/error.h"
#include "ir/interpreter.h"
#include "ir/profile.h"
#include "passes/pass_manager.h"
#include "runtime/device.h"
#include "runtime/npy.h"
#include "tools/commands.h"
#include "tools/ir_file.h"
#include "tools/pipeline.h"
#include "tools/profile_report.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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
  std::string device = "best";
  bool device_given = false;
  bool check = false;
  bool profile = false;
  std::string trace; // --trace, else FILE's stem + ".trace.json"
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
std::vector<Array> read_inputs(const Graph &g,
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

  std::vector<Array> arrays;
  for (const GraphInput &in : g.inputs()) {
    const std::string &path = paths.at(in.value->name);
    Array a = read_npy(path);
    const Type &t = a.type();
    if (t != in.value->type)
      fail("input %{} is {} but '{}' holds {}{}", in.value->name,
           in.value->type.str(), path, t.str(),
           t.shape == in.value->type.shape
               ? fmt::format(" (convert it, e.g. numpy's astype('{}'))",
                             dtype_name(in.value->type.dtype))
               : "");
    arrays.push_back(std::move(a));
  }
  return arrays;
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

// How far a device's result may be from the interpreter's (see the top).
struct Tolerance {
  double rtol = 0, atol = 0;
};
Tolerance tolerance(DType d) {
  switch (d) {
  case DType::f32:
    return {1e-4, 1e-5};
  case DType::f64:
    return {1e-10, 1e-12};
  default:
    return {0, 0}; // integers and bool: exact
  }
}

// Compares one output with the interpreter's; prints the line and returns
// whether every element is within the tolerance.
bool check_output(const std::string &label, const HostTensor &dev,
                  const HostTensor &ref) {
  Tolerance tol = tolerance(ref.type.dtype);
  double max_abs = 0, max_rel = 0;
  int64_t bad = 0, first_bad = -1;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    double a = dev.data[i], b = ref.data[i], abs = 0, rel = 0;
    if (ref.type.dtype == DType::i64) {
      // exact beyond 2^53
      int64_t x = dev.int_at(i), y = ref.int_at(i);
      abs = x == y ? 0 : std::fabs(static_cast<double>(x) - y);
      if (x != y && abs == 0)
        abs = 1; // differ by less than a double resolves
    } else if (std::isnan(a) || std::isnan(b)) {
      abs = std::isnan(a) && std::isnan(b) ? 0 : INFINITY;
    } else if (a != b) {
      abs = std::fabs(a - b); // inf when one is infinite
    }
    if (abs > 0)
      rel = b != 0 && std::isfinite(b) ? abs / std::fabs(b) : INFINITY;
    max_abs = std::max(max_abs, abs);
    max_rel = std::max(max_rel, rel);
    bool ok = abs == 0 ||
              (std::isfinite(abs) && abs <= tol.atol + tol.rtol * std::fabs(b));
    if (!ok && bad++ == 0)
      first_bad = i;
  }
  fmt::print("check {}: max abs diff {:.3g}, max rel diff {:.3g} (rtol {:g}, "
             "atol {:g}): {}",
             label, max_abs, max_rel, tol.rtol, tol.atol, bad ? "FAIL" : "ok");
  if (bad && ref.type.dtype == DType::i64)
    fmt::print(", {} of {} elements differ (first: element {}, {} against {})",
               bad, ref.numel(), first_bad, dev.int_at(first_bad),
               ref.int_at(first_bad));
  else if (bad)
    fmt::print(", {} of {} elements differ (first: element {}, {:.9g} "
               "against {:.9g})",
               bad, ref.numel(), first_bad, dev.data[first_bad],
               ref.data[first_bad]);
  fmt::print("\n");
  return bad == 0;
}

// Runs `g` on a compiled backend: a copy after the default pipeline,
// compiled and run once on `inputs` (which it may update in place).
std::vector<Array> run_compiled(Backend &backend, const Graph &g,
                                std::vector<Array> inputs) {
  std::unique_ptr<Graph> optimized = g.clone();
  PassOptions popts;
  popts.read_env = false;
  PassManager pm(popts);
  pm.add_pipeline(default_pipeline());
  pm.run(*optimized);
  std::unique_ptr<Executable> exe;
  {
    profile::Scope scope(fmt::format("{} backend compile", backend.name()),
                         "compile");
    exe = backend.compile(*optimized);
  }
  std::vector<Array> out;
  {
    profile::Scope scope("step", "step");
    out = exe->run(inputs);
  }
  backend.sync_to_host(); // in-place updates kept on the device
  return out;
}

// --device NAME, else KILN_DEVICE, else the best backend; errors name the
// option (backend_by_name's say KILN_DEVICE=).
std::unique_ptr<Backend> pick_backend(const RunArgs &a) {
  if (!a.device_given)
    return best_backend();
  try {
    return backend_by_name(a.device);
  } catch (const Error &e) {
    std::string_view msg = e.what();
    std::string env = fmt::format("KILN_DEVICE={}: ", a.device);
    if (msg.starts_with(env))
      msg.remove_prefix(env.size());
    fail("--device {}: {}", a.device, msg);
  }
}

// --profile: the per-launch table of the run, the time of each compile
// phase apart from it, and the Chrome trace.
void report_profile(const RunArgs &a, std::string_view device) {
  std::vector<profile::Event> events = profile::take();
  std::string path = a.trace;
  if (path.empty())
    path = (a.input == "-" ? std::string("kiln-run")
                           : std::filesystem::path(a.input).stem().string()) +
           ".trace.json";
  kiln::report_profile(
      events, last_step_launches(events),
      fmt::format("\nprofile ({}, one run; compile phases apart from the "
                  "step):",
                  device),
      "", device, path);
}

void run_run(const RunArgs &a) {
  // The device first: an unknown or unavailable one is the first error.
  std::unique_ptr<Backend> backend = pick_backend(a);
  bool interpreter = backend->name() == "interpreter";
  if (!a.trace.empty() && !a.profile)
    fail("--trace needs --profile");
  if (a.profile) {
    profile::take();
    profile::set_enabled(true);
  }
  std::unique_ptr<Graph> g;
  {
    profile::Scope scope("parse and verify", "compile");
    g = load_graph(a.input);
  }
  run_pipeline(*g, split_pass_list(a.passes));
  std::vector<Array> input_arrays = read_inputs(*g, a.feeds);
  // The interpreter works on HostTensors (exact i64 included); a compiled
  // backend's outputs are written from its Arrays, bytes as they are.
  std::vector<HostTensor> inputs;
  for (const Array &x : input_arrays)
    inputs.push_back(x.to_host());
  std::vector<HostTensor> outputs;
  std::vector<Array> output_arrays;
  if (interpreter) {
    profile::Scope scope("step", "step");
    outputs = interpret(*g, inputs);
    for (const HostTensor &t : outputs)
      output_arrays.push_back(Array::from_host(t));
  } else {
    output_arrays = run_compiled(*backend, *g, std::move(input_arrays));
    for (const Array &x : output_arrays)
      outputs.push_back(x.to_host());
  }
  if (a.profile)
    profile::set_enabled(false);
  std::vector<HostTensor> reference;
  if (a.check)
    reference = interpreter ? outputs : interpret(*g, inputs);
  if (!a.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.out_dir, ec);
    if (ec)
      fail("cannot create '{}': {}", a.out_dir, ec.message());
  }
  std::vector<std::string> labels;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const HostTensor &t = outputs[i];
    const Value *v = g->outputs[i].value;
    bool named = !v->name.empty() &&
                 v->name.find_first_not_of("0123456789") != std::string::npos;
    labels.push_back(fmt::format("out{}{}", i, named ? " %" + v->name : ""));
    fmt::print("{}: {}\n", labels.back(), summary(t));
    if (!a.out_dir.empty())
      write_npy((std::filesystem::path(a.out_dir) / fmt::format("out{}.npy", i))
                    .string(),
                output_arrays[i]);
  }
  if (a.profile)
    report_profile(a, backend->name());
  if (a.check) {
    fmt::print("check: {} against the reference interpreter\n",
               backend->name());
    bool ok = true;
    for (size_t i = 0; i < outputs.size(); ++i)
      ok &= check_output(labels[i], outputs[i], reference[i]);
    std::fflush(stdout); // the lines above come before the error
    if (!ok)
      fail("--check: {} differs from the interpreter beyond the tolerance",
           backend->name());
  }
}

} // namespace

void add_run_command(CLI::App &app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App *cmd = app.add_subcommand(
      "run", "run a .kir graph on a backend with .npy inputs");
  cmd->add_option("file", args->input, "the .kir file, '-' for stdin")
      ->required();
  cmd->add_option("-i,--input", args->feeds,
                  "NAME=FILE.npy for each graph input (repeat the option)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--out", args->out_dir,
                  "write each output i to DIR/out<i>.npy");
  cmd->add_option("--passes", args->passes,
                  "comma-separated passes to run first (on every device)");
  CLI::Option *device = cmd->add_option(
      "--device", args->device,
      "best (default: CUDA, else the CPU; KILN_DEVICE overrides), cpu, cuda "
      "or interpreter");
  cmd->add_flag("--check", args->check,
                "compare every output with the reference interpreter's: "
                "largest abs/rel difference, exit 1 beyond rtol 1e-4 (f32), "
                "1e-10 (f64), exact for integers");
  cmd->add_flag("--profile", args->profile,
                "print a per-launch table of the run (time, share, GB/s, "
                "GFLOP/s against this machine's copy bandwidth), compile "
                "phases apart, and write a Chrome trace");
  cmd->add_option("--trace", args->trace,
                  "with --profile: the trace file (default: FILE's name "
                  "with .trace.json, in this folder)");
  cmd->callback([args, device] {
    args->device_given = device->count() > 0;
    run_run(*args);
  });
}

} // namespace kiln
