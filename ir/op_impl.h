// Declarations of the functions the op table (ir/ops.def) refers to. Only
// ir/ops.cpp and the files that define them include this.
#pragma once

#include "ir/op.h"

namespace kiln {

#define KILN_INFER(name)                                                       \
  std::vector<Type> name(std::string_view op, std::span<const Type> in,        \
                         const Attrs &attrs, std::span<const Type> declared);
#define KILN_VJP(name)                                                         \
  std::vector<Value *> name(Builder &b, const Node &n,                         \
                            std::span<Value *const> grads);
#define KILN_EVAL(name)                                                        \
  void name(const Node &n, std::span<const HostTensor *const> in,              \
            std::vector<HostTensor> &out);

KILN_INFER(infer_explicit)
KILN_INFER(infer_random)
KILN_INFER(infer_iota)
KILN_INFER(infer_cast)
KILN_INFER(infer_unary)
KILN_INFER(infer_unary_float)
KILN_INFER(infer_binary)
KILN_INFER(infer_gelu)
KILN_INFER(infer_clamp)
KILN_INFER(infer_binary_float)
KILN_INFER(infer_compare)
KILN_INFER(infer_where)
KILN_INFER(infer_reduce)
KILN_INFER(infer_softmax)
KILN_INFER(infer_matmul)
KILN_INFER(infer_transpose)
KILN_INFER(infer_reshape)
KILN_INFER(infer_broadcast_to)
KILN_INFER(infer_concat)
KILN_INFER(infer_slice)
KILN_INFER(infer_pad)
KILN_INFER(infer_one_hot)
KILN_INFER(infer_conv2d)
KILN_INFER(infer_im2col)
KILN_INFER(infer_col2im)
KILN_INFER(infer_pool2d)
KILN_INFER(infer_max_pool2d_grad)
KILN_INFER(infer_gather)
KILN_INFER(infer_scatter_add)

KILN_VJP(vjp_cast)
KILN_VJP(vjp_neg)
KILN_VJP(vjp_abs)
KILN_VJP(vjp_exp)
KILN_VJP(vjp_log)
KILN_VJP(vjp_sqrt)
KILN_VJP(vjp_rsqrt)
KILN_VJP(vjp_tanh)
KILN_VJP(vjp_sigmoid)
KILN_VJP(vjp_relu)
KILN_VJP(vjp_erf)
KILN_VJP(vjp_gelu)
KILN_VJP(vjp_clamp)
KILN_VJP(vjp_add)
KILN_VJP(vjp_sub)
KILN_VJP(vjp_mul)
KILN_VJP(vjp_div)
KILN_VJP(vjp_pow)
KILN_VJP(vjp_max)
KILN_VJP(vjp_min)
KILN_VJP(vjp_where)
KILN_VJP(vjp_sum)
KILN_VJP(vjp_mean)
KILN_VJP(vjp_amax)
KILN_VJP(vjp_log_softmax)
KILN_VJP(vjp_softmax)
KILN_VJP(vjp_matmul)
KILN_VJP(vjp_transpose)
KILN_VJP(vjp_reshape)
KILN_VJP(vjp_broadcast_to)
KILN_VJP(vjp_concat)
KILN_VJP(vjp_slice)
KILN_VJP(vjp_pad)
KILN_VJP(vjp_conv2d)
KILN_VJP(vjp_im2col)
KILN_VJP(vjp_col2im)
KILN_VJP(vjp_max_pool2d)
KILN_VJP(vjp_avg_pool2d)
KILN_VJP(vjp_gather)
KILN_VJP(vjp_scatter_add)

KILN_EVAL(eval_constant)
KILN_EVAL(eval_random_uniform)
KILN_EVAL(eval_iota)
KILN_EVAL(eval_elementwise)
KILN_EVAL(eval_reduce)
KILN_EVAL(eval_softmax)
KILN_EVAL(eval_matmul)
KILN_EVAL(eval_transpose)
KILN_EVAL(eval_reshape)
KILN_EVAL(eval_broadcast_to)
KILN_EVAL(eval_concat)
KILN_EVAL(eval_slice)
KILN_EVAL(eval_pad)
KILN_EVAL(eval_one_hot)
KILN_EVAL(eval_conv2d)
KILN_EVAL(eval_im2col)
KILN_EVAL(eval_col2im)
KILN_EVAL(eval_max_pool2d)
KILN_EVAL(eval_max_pool2d_grad)
KILN_EVAL(eval_avg_pool2d)
KILN_EVAL(eval_gather)
KILN_EVAL(eval_scatter_add)
KILN_EVAL(eval_fused)

#undef KILN_INFER
#undef KILN_VJP
#undef KILN_EVAL

} // namespace kiln
