// `kiln ir --model mlp --stage STAGE [--batch 64] [--target cuda|llvm]
// [--dot] [-o OUT]`: prints the IR of a built-in model's training step at
// one stage of the flow (DESIGN.md): as traced (forward + loss), after
// autodiff (+ the gradient of every parameter), as the step graph (+ the
// optimizer update of every parameter and buffer, in place), optimized
// (canonicalize, cse, dce), fused (the default pipeline, annotated with the
// memory plan and followed by the kernel summary) and the fused graph's
// generated kernels (`--target cuda`: one translation unit
// `nvcc -arch=sm_90 -cubin` compiles; `--target llvm`: the CPU backend's
// LLVM IR, one module per kernel). Every graph printed is verified.
//
// `kiln ir FILE.kir --stage STAGE` does the same for any graph: parsed (as
// read), autodiff (the autodiff pass: the file needs params and a scalar
// float first output), optimized, fused, kernels (the last three on the
// graph as read; `kiln opt --passes=autodiff F | kiln ir - --stage fused`
// differentiates first). `--dot` prints any graph stage as Graphviz DOT
// (tools/dot.h) instead of text.
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "passes/pass_manager.h"
#include "tools/commands.h"
#include "tools/dot.h"
#include "tools/ir_file.h"
#include "tools/ir_stages.h"
#include "tools/pipeline.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <memory>

namespace kiln {

namespace {

struct IrArgs {
  std::string file; // a .kir file instead of the built-in model
  std::string model = "mlp";
  bool model_given = false, batch_given = false;
  std::string stage; // default: step (model), parsed (file)
  int64_t batch = 64;
  std::string target = "cuda";
  std::string output;
  bool dot = false;
};

// What happens to the traced graph before it is printed.
enum class Lower {
  none,      // print it as traced
  optimized, // canonicalize, cse, dce
  fused,     // the default pipeline; memory plan and kernel summary
  kernels,   // the default pipeline; the generated kernels' source
  plan,      // the default pipeline, lowered: the execution plan
};

struct Stage {
  std::string_view name;
  std::string_view summary;
  TraceStage trace; // how far to record (the built-in model)
  Lower lower = Lower::none;
  bool autodiff = false; // a file: run the autodiff pass first
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
    {"kernels",
     "the fused step's generated kernels (--target cuda: CUDA C, llvm: the "
     "CPU backend's LLVM IR)",
     TraceStage::step, Lower::kernels},
    {"plan",
     "the fused step lowered to its execution plan: launches, buffers, "
     "FLOPs and bytes (--target cpu or cuda)",
     TraceStage::step, Lower::plan},
};

// The stages of a .kir file (TraceStage unused).
constexpr Stage kFileStages[] = {
    {"parsed", "the file as read", TraceStage::traced},
    {"autodiff", "+ the gradient of the first output w.r.t. every param",
     TraceStage::traced, Lower::none, true},
    {"optimized", "after canonicalize, cse, dce", TraceStage::traced,
     Lower::optimized},
    {"fused", "after the default pipeline, with the kernel summary",
     TraceStage::traced, Lower::fused},
    {"kernels", "the fused graph's generated kernels", TraceStage::traced,
     Lower::kernels},
    {"plan", "the fused graph's execution plan", TraceStage::traced,
     Lower::plan},
};

template <size_t N>
const Stage &find_stage(const Stage (&stages)[N], const std::string &name,
                        const char *what) {
  std::vector<std::string_view> names;
  for (const Stage &s : stages) {
    if (s.name == name)
      return s;
    names.push_back(s.name);
  }
  fail("unknown stage '{}'{} (stages: {})", name, what, fmt::join(names, ", "));
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
  if (name == "cnn")
    return {make_cnn(), {DType::f32, {batch, 784}}, {DType::i32, {batch}}};
  fail("unknown model '{}' (models: mlp, cnn)", name);
}

// The text of `g` after the stage's passes (DOT with `dot`).
std::string lower(const Graph &traced, const Stage &stage,
                  const std::string &target, bool dot) {
  if ((stage.lower == Lower::kernels || stage.lower == Lower::plan) && dot)
    fail("--dot draws a graph; --stage {} prints {} (try --stage fused --dot)",
         stage.name, stage.lower == Lower::plan ? "a launch list" : "source");
  if (stage.lower == Lower::plan && target != "cuda" && target != "cpu" &&
      target != "llvm")
    fail("unknown --target '{}' for --stage plan (targets: cpu, cuda)", target);
  if (stage.lower == Lower::none)
    return dot ? graph_to_dot(traced) : print(traced);
  if (stage.lower == Lower::kernels && target != "cuda" && target != "llvm")
    fail("unknown --target '{}' (targets: cuda, llvm)", target);
  if (stage.lower == Lower::kernels && target == "cuda" && !have_cuda_codegen())
    cuda_translation_unit(traced); // throws: built without CUDA codegen
  if (stage.lower == Lower::kernels && target == "llvm" && !have_llvm_codegen())
    llvm_kernels_ir(traced); // throws: built without LLVM
  std::unique_ptr<Graph> g = traced.clone();
  PassOptions opts;
  opts.verify_each = true;
  opts.read_env = false;
  PassManager pm(opts);
  pm.add_pipeline(stage.lower == Lower::optimized
                      ? "decompose-windows,canonicalize,cse,dce"
                      : default_pipeline());
  pm.run(*g);
  if (dot)
    return graph_to_dot(*g);
  switch (stage.lower) {
  case Lower::optimized:
    return pm.print(*g);
  case Lower::fused:
    return pm.print(*g) + kernel_report(*g);
  case Lower::kernels:
    return target == "llvm" ? llvm_kernels_ir(*g) : cuda_translation_unit(*g);
  case Lower::plan:
    return plan_report(*g, target == "cuda" ? "cuda" : "cpu");
  case Lower::none:
    break;
  }
  return print(*g);
}

// A graph read from a file at one of kFileStages.
void run_ir_file(const IrArgs &a) {
  if (a.model_given || a.batch_given)
    fail("give either a .kir file or --model{}, not both",
         a.batch_given ? "/--batch" : "");
  const Stage &stage = find_stage(
      kFileStages, a.stage.empty() ? "parsed" : a.stage, " for a .kir file");
  std::unique_ptr<Graph> g = load_graph(a.file);
  if (stage.autodiff) {
    bool params = false;
    for (const GraphInput &in : g->inputs())
      params |= in.kind == InputKind::param;
    if (!params)
      fail("--stage autodiff: graph @{} has no param input to differentiate "
           "with respect to",
           g->name);
    run_pipeline(*g, {"autodiff"});
  }
  write_output(a.output, lower(*g, stage, a.target, a.dot));
}

void run_ir(const IrArgs &a) {
  if (!a.file.empty())
    return run_ir_file(a);
  const Stage &stage =
      find_stage(kStages, a.stage.empty() ? "step" : a.stage, "");
  BuiltinModel m = make_builtin(a.model, a.batch);
  DefaultRecipe r; // SGD, momentum 0.9, weight decay 5e-4
  optim::SGDOptions o;
  o.lr = r.lr;
  o.momentum = r.momentum;
  o.weight_decay = r.weight_decay;
  optim::SGD opt(m.module->parameters(), o);
  Program p = trace_train_step(*m.module, nn::cross_entropy, &opt, m.x, m.y,
                               stage.trace);
  write_output(a.output, lower(p.graph(), stage, a.target, a.dot));
}

} // namespace

void add_ir_command(CLI::App &app) {
  auto args = std::make_shared<IrArgs>();
  std::string stages = "\n built-in model (default step):";
  for (const Stage &s : kStages)
    stages += fmt::format("\n  {:<10} {}", s.name, s.summary);
  stages += "\n a .kir file (default parsed):";
  for (const Stage &s : kFileStages)
    stages += fmt::format("\n  {:<10} {}", s.name, s.summary);
  CLI::App *cmd = app.add_subcommand(
      "ir", "print the IR of a built-in model's training step, or of a .kir "
            "file, at a stage of the compiler");
  cmd->add_option("file", args->file,
                  "a .kir file ('-' for stdin) instead of the built-in model");
  CLI::Option *model =
      cmd->add_option("--model", args->model, "built-in model: mlp or cnn")
          ->capture_default_str();
  cmd->add_option("--stage", args->stage, "how far to go:" + stages);
  CLI::Option *batch =
      cmd->add_option("--batch", args->batch, "batch size of the model")
          ->capture_default_str();
  cmd->add_option("--target", args->target,
                  "code generator of --stage kernels: cuda (CUDA C) or llvm "
                  "(the CPU backend's LLVM IR); of --stage plan: cuda or cpu")
      ->capture_default_str();
  cmd->add_flag("--dot", args->dot,
                "print the graph as Graphviz DOT (pipe to `dot -Tsvg`)");
  cmd->add_option("-o,--output", args->output, "write here, not to stdout");
  cmd->callback([args, model, batch] {
    args->model_given = model->count() > 0;
    args->batch_given = batch->count() > 0;
    run_ir(*args);
  });
}

} // namespace kiln
