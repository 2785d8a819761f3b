#include "ir/interpreter.h"

#include "ir/error.h"
#include "ir/op_impl.h"
#include "ir/philox.h"

#include <cmath>
#include <unordered_map>

namespace kiln {

double round_to(DType dtype, double x) {
  switch (dtype) {
  case DType::f32:
    return static_cast<double>(static_cast<float>(x));
  case DType::f64:
    return x;
  case DType::i32:
    return std::isfinite(x) ? static_cast<double>(static_cast<int32_t>(x)) : 0;
  case DType::i64:
    return std::isfinite(x) ? static_cast<double>(static_cast<int64_t>(x)) : 0;
  case DType::boolean:
    return x != 0 ? 1.0 : 0.0;
  }
  return x;
}

std::vector<HostTensor> interpret(const Graph &g,
                                  const std::vector<HostTensor> &inputs) {
  if (inputs.size() != g.inputs().size())
    fail("graph @{} takes {} inputs, got {}", g.name, g.inputs().size(),
         inputs.size());
  std::unordered_map<const Value *, HostTensor> env;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value *v = g.inputs()[i].value;
    if (inputs[i].type != v->type)
      fail("input %{} of @{} must be {}, got {}", v->name, g.name,
           v->type.str(), inputs[i].type.str());
    if (inputs[i].numel() != v->type.numel())
      fail("input %{} of @{} holds {} values for {}", v->name, g.name,
           inputs[i].numel(), v->type.str());
    if (g.inputs()[i].range)
      for (int64_t k = 0; k < inputs[i].numel(); ++k)
        check_input_element(g, i, k, static_cast<int64_t>(inputs[i].data[k]));
    env[v] = inputs[i];
  }
  for (auto &np : g.nodes()) {
    const Node &n = *np;
    std::vector<const HostTensor *> in;
    for (const Value *v : n.operands)
      in.push_back(&env.at(v));
    std::vector<HostTensor> out;
    n.info().eval(n, in, out);
    for (size_t i = 0; i < n.results.size(); ++i) {
      HostTensor &t = out.at(i);
      t.type = n.results[i]->type;
      if (t.type.dtype != DType::f64)
        for (double &x : t.data)
          x = round_to(t.type.dtype, x);
      env[n.results[i]] = std::move(t);
    }
  }
  std::vector<HostTensor> result;
  for (const GraphOutput &o : g.outputs)
    result.push_back(env.at(o.value));
  return result;
}

void eval_fused(const Node &n, std::span<const HostTensor *const> in,
                std::vector<HostTensor> &out) {
  std::vector<HostTensor> args;
  for (const HostTensor *t : in)
    args.push_back(*t);
  out = interpret(*n.body, args);
}

void eval_constant(const Node &n, std::span<const HostTensor *const>,
                   std::vector<HostTensor> &out) {
  const Type &t = n.result()->type;
  out.emplace_back(t,
                   std::vector<double>(t.numel(), n.attrs.get_float("value")));
}

void eval_iota(const Node &n, std::span<const HostTensor *const>,
               std::vector<HostTensor> &out) {
  const Type &t = n.result()->type;
  int axis = static_cast<int>(n.attrs.get_int("axis", 0));
  int64_t inner = 1;
  for (int a = axis + 1; a < t.rank(); ++a)
    inner *= t.shape[a];
  HostTensor r(t);
  for (int64_t i = 0; i < r.numel(); ++i)
    r.data[i] = static_cast<double>((i / inner) % t.shape[axis]);
  out.push_back(std::move(r));
}

void eval_random_uniform(const Node &n, std::span<const HostTensor *const> in,
                         std::vector<HostTensor> &out) {
  const Type &t = n.result()->type;
  auto seed = static_cast<uint64_t>(static_cast<int64_t>(in[0]->item()));
  auto offset = static_cast<uint64_t>(static_cast<int64_t>(in[1]->item()));
  HostTensor r(t);
  for (int64_t i = 0; i < r.numel(); ++i)
    r.data[i] = philox_uniform(seed, offset, static_cast<uint64_t>(i));
  out.push_back(std::move(r));
}

} // namespace kiln
