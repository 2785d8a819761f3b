#include "passes/memory_plan_pass.h"

#include "ir/printer.h"
#include "plan/memory_plan.h"

#include <fmt/format.h>

namespace kiln {

bool run_memory_plan(Graph &g) {
  (void)plan_memory(g);
  return false;
}

std::string print_memory_plan(const Graph &g) {
  MemoryPlan plan = plan_memory(g);
  return fmt::format("// {}\n{}", memory_plan_summary(plan),
                     print(g, memory_plan_print_options(plan, g)));
}

} // namespace kiln
