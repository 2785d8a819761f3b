// The op table, built from ir/ops.def.
#include "ir/op_impl.h"

#include <array>

namespace kiln {

static const OpInfo kOpTable[] = {
#define KILN_OP(id, name, arity, traits, infer, vjp, eval, scalar)             \
  {Op::id, name, arity, traits, infer, vjp, eval, scalar},
#include "ir/ops.def"
#undef KILN_OP
};

static_assert(std::size(kOpTable) == kNumOps);

const OpInfo &op_info(Op op) { return kOpTable[static_cast<size_t>(op)]; }

std::optional<Op> op_by_name(std::string_view name) {
  for (const OpInfo &info : kOpTable)
    if (info.name == name)
      return info.op;
  return std::nullopt;
}

} // namespace kiln
