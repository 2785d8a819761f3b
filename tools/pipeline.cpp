#include "tools/pipeline.h"

#include "ir/error.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pass_manager.h"

#include <fmt/format.h>

namespace kiln {

std::vector<std::string> split_pass_list(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (!item.empty())
      out.emplace_back(item);
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

void run_pipeline(Graph &g, const std::vector<std::string> &passes) {
  PassOptions opts;
  opts.verify_each = true;
  run_pipeline(g, passes, opts);
}

std::string run_pipeline(Graph &g, const std::vector<std::string> &passes,
                         PassOptions opts) {
  PassManager pm(std::move(opts));
  for (const std::string &name : passes)
    pm.add(name); // checks every name before anything runs
  pm.run(g);
  return pm.print(g);
}

} // namespace kiln
