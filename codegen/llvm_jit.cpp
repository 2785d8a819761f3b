// The LLVM JIT session: one process-wide ORC LLJIT for the host CPU, the O3
// pipeline (with glibc's libmvec for vectorized exp/log when it loads), and
// the process-wide kernel cache keyed by a kernel's structural key.
//
// Debian's LLVM is built without exceptions: nothing here throws from code
// that LLVM calls back into; errors become kiln::Error only in our frames.
#include "codegen/llvm_emit.h"
#include "codegen/llvm_kernel.h"
#include "ir/error.h"
#include "plan/kernel_plan.h"

#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/DynamicLibrary.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <mutex>
#include <unordered_map>

namespace kiln {

namespace {

template <typename T> T take(llvm::Expected<T> e, const char *what) {
  if (!e)
    fail("LLVM JIT: {}: {}", what, llvm::toString(e.takeError()));
  return std::move(*e);
}

struct Session {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> tm;
  bool veclib = false;
  std::mutex mu;
  std::unordered_map<std::string, KernelFn> cache;
  int next_name = 0;
};

// The process-wide session, created on first use and never destroyed (the
// JIT-compiled code must outlive every executable, static ones included).
Session &session() {
  static Session *s = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    auto *s = new Session;
    auto jtmb =
        take(llvm::orc::JITTargetMachineBuilder::detectHost(), "detect host");
    jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
    s->tm = take(jtmb.createTargetMachine(), "create target machine");
    s->jit = take(
        llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(jtmb).create(),
        "create LLJIT");
    // glibc's vector math library gives vectorized exp/log/pow; the JIT
    // finds its symbols in the process once it is loaded globally.
    std::string err;
    s->veclib = !llvm::sys::DynamicLibrary::LoadLibraryPermanently(
        "libmvec.so.1", &err);
    return s;
  }();
  return *s;
}

void set_target_attrs(llvm::Module &m, llvm::TargetMachine &tm) {
  for (llvm::Function &f : m)
    if (!f.isDeclaration()) {
      f.addFnAttr("target-cpu", tm.getTargetCPU());
      f.addFnAttr("target-features", tm.getTargetFeatureString());
    }
}

void optimize(llvm::Module &m, llvm::TargetMachine &tm, bool veclib) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions pto;
  pto.LoopVectorization = true;
  pto.SLPVectorization = true;
  llvm::PassBuilder pb(&tm, pto);
  llvm::Triple triple(m.getTargetTriple());
  llvm::TargetLibraryInfoImpl tlii(triple);
  if (veclib)
    tlii.addVectorizableFunctionsFromVecLib(
        llvm::TargetLibraryInfoImpl::LIBMVEC_X86, triple);
  fam.registerPass([&] { return llvm::TargetLibraryAnalysis(tlii); });
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3).run(m, mam);
}

void verify(llvm::Module &m) {
  std::string msg;
  llvm::raw_string_ostream os(msg);
  if (llvm::verifyModule(m, &os))
    fail("LLVM emitter produced invalid IR: {}", os.str());
}

std::unique_ptr<llvm::Module> new_module(llvm::LLVMContext &ctx, Session &s) {
  auto m = std::make_unique<llvm::Module>("kiln", ctx);
  m->setDataLayout(s.jit->getDataLayout());
  m->setTargetTriple(s.tm->getTargetTriple().str());
  return m;
}

} // namespace

LlvmCompiler::LlvmCompiler() = default;
LlvmCompiler::~LlvmCompiler() = default;

int LlvmCompiler::add(const Node &fused) {
  return add(fused, std::make_shared<const KernelPlan>(plan_kernel(fused)));
}

int LlvmCompiler::add(const Node &fused,
                      std::shared_ptr<const KernelPlan> plan) {
  LlvmKernelInfo info = describe_kernel(fused, *plan);
  entries_.push_back({&fused, std::move(plan), std::move(info)});
  return static_cast<int>(entries_.size()) - 1;
}

void LlvmCompiler::compile() {
  Session &s = session();
  std::lock_guard<std::mutex> lock(s.mu);
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto m = new_module(*ctx, s);
  std::unordered_map<std::string, std::string> pending; // key -> symbol
  for (Entry &e : entries_) {
    if (auto it = s.cache.find(e.info.key); it != s.cache.end()) {
      e.fn = it->second;
      continue;
    }
    if (pending.count(e.info.key))
      continue;
    std::string name = fmt::format("kiln_kernel_{}", s.next_name++);
    emit_kernel(*m, *e.node, *e.plan, name);
    pending[e.info.key] = name;
  }
  compiled_ = static_cast<int>(pending.size());
  if (pending.empty())
    return;
  verify(*m);
  set_target_attrs(*m, *s.tm);
  optimize(*m, *s.tm, s.veclib);
  llvm::orc::ThreadSafeModule tsm(std::move(m), std::move(ctx));
  if (llvm::Error err = s.jit->addIRModule(std::move(tsm)))
    fail("LLVM JIT: add module: {}", llvm::toString(std::move(err)));
  for (auto &[key, name] : pending) {
    auto addr = take(s.jit->lookup(name), "look up kernel");
    s.cache[key] = addr.toPtr<KernelFn>();
  }
  for (Entry &e : entries_)
    e.fn = s.cache.at(e.info.key);
}

KernelFn LlvmCompiler::kernel(int i) const { return entries_.at(i).fn; }
const LlvmKernelInfo &LlvmCompiler::info(int i) const {
  return entries_.at(i).info;
}

std::string llvm_kernel_ir(const Node &fused, bool optimized) {
  Session &s = session();
  std::lock_guard<std::mutex> lock(s.mu); // the TargetMachine is shared
  llvm::LLVMContext ctx;
  auto m = new_module(ctx, s);
  emit_kernel(*m, fused, plan_kernel(fused), "kernel");
  verify(*m);
  if (optimized) {
    set_target_attrs(*m, *s.tm);
    optimize(*m, *s.tm, s.veclib);
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  m->print(os, nullptr);
  return os.str();
}

size_t llvm_kernel_cache_size() {
  Session &s = session();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.cache.size();
}

bool is_llvm_kernel_op(const Node &n) {
  return n.op == Op::Fused || n.op == Op::Iota || n.info().has(kElementwise) ||
         n.info().has(kReduction);
}

LlvmKernelInfo describe_kernel(const Node &n) {
  return describe_kernel(n, plan_kernel(n));
}

LlvmKernelInfo describe_kernel(const Node &n, const KernelPlan &p) {
  LlvmKernelInfo info;
  info.key = kernel_key(n);
  info.work = p.work;
  info.bytes_per_item = p.bytes_per_item;
  info.num_args = static_cast<int>(n.operands.size() + n.results.size());
  return info;
}

} // namespace kiln
