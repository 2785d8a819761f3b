// The kind of a fused node, typed: the `kind` attribute ("elementwise",
// "reduction", "multi_tensor") is read and checked here once, so no other
// code compares the string. The contracts of the three kinds are written at
// the top of passes/fuse_elementwise.cpp and passes/fuse_optimizer.cpp and
// checked by the verifier.
#pragma once

#include "ir/graph.h"

#include <optional>
#include <string_view>

namespace kiln {

enum class FusedKind : uint8_t { elementwise, reduction, multi_tensor };

// "elementwise", "reduction", "multi_tensor".
std::string_view fused_kind_name(FusedKind k);
// The kind a name spells; nullopt for any other string.
std::optional<FusedKind> parse_fused_kind(std::string_view name);
// The kind of fused node `n`, or nullopt when `n` is not a fused node or
// its `kind` attribute is missing, not a string or unknown (the verifier
// reports those).
std::optional<FusedKind> fused_kind_of(const Node &n);
// True when `n` is a fused node of kind `k`.
inline bool is_fused(const Node &n, FusedKind k) {
  auto got = fused_kind_of(n);
  return got && *got == k;
}
// The attribute value to give a new fused node of kind `k`.
AttrValue fused_kind_attr(FusedKind k);

} // namespace kiln
