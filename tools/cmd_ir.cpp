// `kiln ir --model mlp --stage STAGE [--batch 64] [--target cuda] [-o OUT]`:
// prints the IR of a built-in model's training step at one stage of the
// flow (DESIGN.md): as traced (forward + loss), after autodiff (+ the
// gradient of every parameter), as the step graph (+ the optimizer update
// of every parameter and buffer, in place), optimized (canonicalize, cse,
// dce), fused (the default pipeline, annotated with the memory plan and
// followed by the kernel summary) and the fused graph's generated kernels
// (`--target cuda`: one translation unit `nvcc -arch=sm_90 -cubin`
// compiles). Every graph printed is verified.
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "passes/pass_manager.h"
#include "tools/commands.h"
#include "tools/ir_file.h"
#include "tools/ir_stages.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <memory>

namespace kiln {

namespace {

struct IrArgs {
  std::string model = "mlp";
  std::string stage = "step";
  int64_t batch = 64;
  std::string target = "cuda";
  std::string output;
};

// What happens to the traced graph before it is printed.
enum class Lower {
  none,      // print it as traced
  optimized, // canonicalize, cse, dce
  fused,     // the default pipeline; memory plan and kernel summary
  kernels,   // the default pipeline; the generated kernels' source
};

struct Stage {
  std::string_view name;
  std::string_view summary;
  TraceStage trace; // how far to record
  Lower lower = Lower::none;
};

constexpr Stage kStages[] = {
    {"traced", "forward pass and loss, as traced", TraceStage::traced},
    {"autodiff", "+ d(loss)/d(param) for every parameter",
     TraceStage::autodiff},
    {"step", "+ the optimizer update, in place (the training step)",
     TraceStage::step},
    {"optimized", "the step after canonicalize, cse, dce", TraceStage::step,
     Lower::optimized},
    {"fused",
     "the step after the default pipeline, with its memory plan and "
     "kernel summary",
     TraceStage::step, Lower::fused},
    {"kernels", "the fused step's generated kernels (--target cuda)",
     TraceStage::step, Lower::kernels},
};

const Stage &find_stage(const std::string &name) {
  std::vector<std::string_view> names;
  for (const Stage &s : kStages) {
    if (s.name == name)
      return s;
    names.push_back(s.name);
  }
  fail("unknown stage '{}' (stages: {})", name, fmt::join(names, ", "));
}

// The built-in models: each gives its module and the example input types.
struct BuiltinModel {
  std::shared_ptr<nn::Module> module;
  Type x, y;
};

BuiltinModel make_builtin(const std::string &name, int64_t batch) {
  if (batch < 1)
    fail("--batch must be >= 1, got {}", batch);
  if (name == "mlp") {
    MlpOptions o; // 784-256-128-10, ReLU
    return {make_mlp(o),
            {DType::f32, {batch, o.in_features}},
            {DType::i32, {batch}}};
  }
  fail("unknown model '{}' (models: mlp)", name);
}

// The text of `g` after the stage's passes.
std::string lower(const Graph &traced, const Stage &stage,
                  const std::string &target) {
  if (stage.lower == Lower::none)
    return print(traced);
  if (stage.lower == Lower::kernels && target != "cuda")
    fail("unknown --target '{}' (targets: cuda)", target);
  if (stage.lower == Lower::kernels && !have_cuda_codegen())
    cuda_translation_unit(traced); // throws: built without CUDA codegen
  std::unique_ptr<Graph> g = traced.clone();
  PassOptions opts;
  opts.verify_each = true;
  opts.read_env = false;
  PassManager pm(opts);
  pm.add_pipeline(stage.lower == Lower::optimized ? "canonicalize,cse,dce"
                                                  : default_pipeline());
  pm.run(*g);
  switch (stage.lower) {
  case Lower::optimized:
    return pm.print(*g);
  case Lower::fused:
    return pm.print(*g) + kernel_report(*g);
  case Lower::kernels:
    return cuda_translation_unit(*g);
  case Lower::none:
    break;
  }
  return print(*g);
}

void run_ir(const IrArgs &a) {
  const Stage &stage = find_stage(a.stage);
  BuiltinModel m = make_builtin(a.model, a.batch);
  DefaultRecipe r; // SGD, momentum 0.9, weight decay 5e-4
  optim::SGDOptions o;
  o.lr = r.lr;
  o.momentum = r.momentum;
  o.weight_decay = r.weight_decay;
  optim::SGD opt(m.module->parameters(), o);
  Program p = trace_train_step(*m.module, nn::cross_entropy, &opt, m.x, m.y,
                               stage.trace);
  write_output(a.output, lower(p.graph(), stage, a.target));
}

} // namespace

void add_ir_command(CLI::App &app) {
  auto args = std::make_shared<IrArgs>();
  std::string stages;
  for (const Stage &s : kStages)
    stages += fmt::format("\n  {:<10} {}", s.name, s.summary);
  CLI::App *cmd = app.add_subcommand(
      "ir", "print the IR of a built-in model's training step");
  cmd->add_option("--model", args->model, "built-in model: mlp")
      ->capture_default_str();
  cmd->add_option("--stage", args->stage, "how far to go:" + stages)
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "batch size")->capture_default_str();
  cmd->add_option("--target", args->target,
                  "code generator of --stage kernels: cuda")
      ->capture_default_str();
  cmd->add_option("-o,--output", args->output, "write here, not to stdout");
  cmd->callback([args] { run_ir(*args); });
}

} // namespace kiln
