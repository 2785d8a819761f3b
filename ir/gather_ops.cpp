// gather and scatter_add: shape inference, gradients and the reference
// interpreter. (Being written: placeholders that refuse.)
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/graph.h"
#include "ir/host_tensor.h"
#include "ir/op_impl.h"

namespace kiln {

std::vector<Type> infer_gather(std::string_view op, std::span<const Type>,
                               const Attrs &, std::span<const Type>) {
  fail("{}: not implemented yet", op);
}
std::vector<Type> infer_scatter_add(std::string_view op, std::span<const Type>,
                                    const Attrs &, std::span<const Type>) {
  fail("{}: not implemented yet", op);
}
std::vector<Value *> vjp_gather(Builder &, const Node &,
                                std::span<Value *const>) {
  fail("gather: not implemented yet");
}
std::vector<Value *> vjp_scatter_add(Builder &, const Node &,
                                     std::span<Value *const>) {
  fail("scatter_add: not implemented yet");
}
void eval_gather(const Node &, std::span<const HostTensor *const>,
                 std::vector<HostTensor> &) {
  fail("gather: not implemented yet");
}
void eval_scatter_add(const Node &, std::span<const HostTensor *const>,
                      std::vector<HostTensor> &) {
  fail("scatter_add: not implemented yet");
}

} // namespace kiln
