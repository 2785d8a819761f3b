// The later stages of `kiln ir` (tools/cmd_ir.cpp): what the step graph
// becomes after the pass pipeline, as text a person reads. Kept apart from
// the command so that the command stays a table of stages.
#pragma once

#include "ir/graph.h"

#include <string>

namespace kiln {

// The kernels a fused graph launches (plan/kernel_summary.h), one comment
// line per kernel: its kind (gemm, fused elementwise, reduction,
// multi-tensor update, or the op of a standalone kernel), bytes read and
// written and the ops it holds; then totals: the kernel count per kind,
// bytes moved, and the memory plan's arena peak against the peak without
// buffer reuse. Every line starts with "// " so the output stays valid .kir
// after the printed graph.
std::string kernel_report(const Graph &g);

// The execution plan of a fused graph (plan/plan.h) as text: the launch
// list with buffers, FLOPs and bytes, each kernel's loop plan, and under
// each kernel what the target ("cpu" or "cuda") launches for it.
std::string plan_report(const Graph &g, const std::string &target);

// Whether this `kiln` was built with the CUDA code generator.
bool have_cuda_codegen();

// Every kernel of `g` as ONE CUDA C translation unit that
// `nvcc -arch=sm_90 -cubin` compiles as is (codegen/cuda_emitter.h). Throws
// kiln::Error when `kiln` was built without the CUDA code generator.
std::string cuda_translation_unit(const Graph &g);

// Whether this `kiln` was built with the LLVM (CPU) code generator.
bool have_llvm_codegen();

// The CPU backend's kernels of `g` as LLVM IR, in launch order, each after
// the O3 pipeline as the backend JIT-compiles it (codegen/llvm_kernel.h:
// one module per kernel, each defining `@kernel`; standalone elementwise ops
// and reductions wrapped as one-node fused kernels). Launches that are not
// LLVM kernels (GEMMs through OpenBLAS, host loops) are named in `;`
// comments. Throws kiln::Error when `kiln` was built without LLVM.
std::string llvm_kernels_ir(const Graph &g);

} // namespace kiln
