#include "ir/fused_kind.h"

#include <string>

namespace kiln {

std::string_view fused_kind_name(FusedKind k) {
  switch (k) {
  case FusedKind::elementwise:
    return "elementwise";
  case FusedKind::reduction:
    return "reduction";
  case FusedKind::multi_tensor:
    return "multi_tensor";
  }
  return "?";
}

std::optional<FusedKind> parse_fused_kind(std::string_view name) {
  for (FusedKind k :
       {FusedKind::elementwise, FusedKind::reduction, FusedKind::multi_tensor})
    if (name == fused_kind_name(k))
      return k;
  return std::nullopt;
}

std::optional<FusedKind> fused_kind_of(const Node &n) {
  if (n.op != Op::Fused)
    return std::nullopt;
  const AttrValue *a = n.attrs.find("kind");
  const std::string *s = a ? std::get_if<std::string>(a) : nullptr;
  return s ? parse_fused_kind(*s) : std::nullopt;
}

AttrValue fused_kind_attr(FusedKind k) {
  return std::string(fused_kind_name(k));
}

} // namespace kiln
