#include "tools/pipeline.h"

#include "ir/error.h"
#include "ir/verifier.h"
#include "passes/pass.h"

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
  std::vector<const PassInfo *> infos;
  for (const std::string &name : passes) {
    const PassInfo *p = find_pass(name);
    if (!p) {
      std::vector<std::string_view> known;
      for (const PassInfo &k : all_passes())
        known.push_back(k.name);
      fail("unknown pass '{}' (known passes: {})", name,
           fmt::join(known, ", "));
    }
    infos.push_back(p);
  }
  for (const PassInfo *p : infos) {
    try {
      p->run(g);
      verify(g);
    } catch (const Error &e) {
      fail("pass '{}': {}", p->name, e.what());
    }
  }
}

} // namespace kiln
