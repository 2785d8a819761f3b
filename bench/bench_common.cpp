#include "bench/bench_common.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <unistd.h>

namespace kiln {

Timing time_ms(const std::function<void()> &f, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i)
    f();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - t0)
                    .count());
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[std::min(t.size() - 1, t.size() * 9 / 10)]};
}

const PeerResult *PeerResults::best(const std::string &name) const {
  const PeerResult *b = nullptr;
  for (const PeerResult &r : rows)
    if (r.name == name && (!b || r.median < b->median))
      b = &r;
  return b;
}

PeerResults run_torch_peer(int iters, const std::string &section) {
  return run_peer("kiln_torch_peer", fmt::format("{} {}", iters, section),
                  "kiln_torch_peer was not built (install libtorch-dev: bash "
                  "tools/install-deps.sh --with-torch, then rebuild)");
}

PeerResults run_peer(const std::string &binary, const std::string &args,
                     const std::string &missing) {
  PeerResults out;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  auto peer = self.parent_path() / binary;
  if (ec || !std::filesystem::exists(peer)) {
    out.why_missing = missing;
    return out;
  }
  std::string cmd = fmt::format("'{}' {}", peer.string(), args);
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) {
    out.why_missing = "could not start " + peer.string();
    return out;
  }
  char line[512];
  while (std::fgets(line, sizeof line, p)) {
    std::istringstream in(line);
    PeerResult r;
    if (std::getline(in, r.name, '\t') && (in >> r.median >> r.p90)) {
      in.ignore(1);
      std::getline(in, r.setting);
      out.rows.push_back(r);
    }
  }
  if (pclose(p) != 0 && out.rows.empty())
    out.why_missing = peer.string() + " failed";
  return out;
}

} // namespace kiln
