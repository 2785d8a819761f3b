#include "passes/pass.h"

#include "passes/autodiff.h"
#include "passes/canonicalize.h"
#include "passes/cse.h"
#include "passes/dce.h"
#include "passes/decompose_windows.h"
#include "passes/fuse_elementwise.h"
#include "passes/fuse_optimizer.h"
#include "passes/memory_plan_pass.h"

namespace kiln {

const std::vector<PassInfo> &all_passes() {
  static const std::vector<PassInfo> passes = {
#define KILN_PASS(name, fn, print, summary) {name, fn, print, summary},
#include "passes/passes.def"
#undef KILN_PASS
  };
  return passes;
}

const PassInfo *find_pass(std::string_view name) {
  for (const PassInfo &p : all_passes())
    if (p.name == name)
      return &p;
  return nullptr;
}

} // namespace kiln
