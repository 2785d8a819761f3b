#include "ir/interpreter.h"

#include "ir/error.h"
#include "ir/op_impl.h"
#include "ir/philox.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cmath>
#include <limits>
#include <new>
#include <unordered_map>

namespace kiln {

int64_t saturate_to_i64(double x) {
  if (std::isnan(x))
    return 0;
  // 2^63 is exact in double; INT64_MAX is not.
  if (x >= 0x1p63)
    return std::numeric_limits<int64_t>::max();
  if (x <= -0x1p63)
    return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(x);
}

int32_t saturate_to_i32(double x) {
  if (std::isnan(x))
    return 0;
  if (x >= 0x1p31)
    return std::numeric_limits<int32_t>::max();
  if (x <= -0x1p31)
    return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(x);
}

double round_to(DType dtype, double x) {
  switch (dtype) {
  case DType::f32:
    return static_cast<double>(static_cast<float>(x));
  case DType::f64:
    return x;
  case DType::i32:
    return saturate_to_i32(x);
  case DType::i64:
    return static_cast<double>(saturate_to_i64(x));
  case DType::boolean:
    return x != 0 ? 1.0 : 0.0;
  }
  return x;
}

int64_t HostTensor::int_at(int64_t i) const {
  if (!i64.empty())
    return i64.at(static_cast<size_t>(i));
  return saturate_to_i64(data.at(static_cast<size_t>(i)));
}

void check_host_allocation(int64_t bytes, std::string_view what) {
  static const int64_t physical = [] {
    long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0)
      return std::numeric_limits<int64_t>::max();
    int64_t total = 0;
    if (__builtin_mul_overflow(int64_t{pages}, int64_t{size}, &total))
      return std::numeric_limits<int64_t>::max();
    return total;
  }();
  if (bytes > physical)
    fail("out of memory: {} needs {} bytes ({:.1f} GiB), more than this "
         "machine's {:.1f} GiB of memory",
         what, bytes, static_cast<double>(bytes) / (1 << 30),
         static_cast<double>(physical) / (1 << 30));
}

namespace {

// Bytes the interpreter holds for a value of type t: one double per element
// (and one int64 more for i64).
int64_t host_bytes(const Type &t) {
  return t.numel() * (t.dtype == DType::i64 ? 16 : 8);
}

void check_value_allocation(const Value *v) {
  std::string name = !v->name.empty() ? "%" + v->name
                     : v->def
                         ? fmt::format("the result of {}", v->def->info().name)
                         : std::string("an input");
  try {
    check_host_allocation(
        host_bytes(v->type),
        fmt::format("{} ({}) in the interpreter", name, v->type.str()));
  } catch (const Error &e) {
    if (!v->def)
      throw;
    fail_at_node(*v->def, e.what()); // where the value is defined
  }
}

// Exact i64 results of an op that moves values (kMovesValues) with i64
// operands. Its result elements are copies of operand elements, so the op's
// own eval, run on element codes (element e of i64 operand k becomes
// base_k + e; other operands, such as where's condition, keep their
// values), says which element each result is; the exact values follow.
// Returns false when no operand is i64 (the doubles are exact then).
bool eval_moved_i64(const Node &n, std::span<const HostTensor *const> in,
                    HostTensor &r) {
  std::vector<HostTensor> coded;
  coded.reserve(in.size()); // args point into it
  std::vector<const HostTensor *> args(in.begin(), in.end());
  std::vector<int64_t> base(in.size(), -1);
  int64_t next = 0; // codes stay far below 2^53: each is an element index
  for (size_t k = 0; k < in.size(); ++k) {
    if (in[k]->type.dtype != DType::i64)
      continue;
    HostTensor &c = coded.emplace_back(in[k]->type);
    for (size_t e = 0; e < c.data.size(); ++e)
      c.data[e] = static_cast<double>(next + static_cast<int64_t>(e));
    base[k] = next;
    next += in[k]->numel();
    args[k] = &c;
  }
  if (next == 0)
    return false;
  std::vector<HostTensor> moved;
  n.info().eval(n, args, moved);
  const std::vector<double> &codes = moved.at(0).data;
  r.i64.resize(codes.size());
  for (size_t e = 0; e < codes.size(); ++e) {
    auto code = static_cast<int64_t>(codes[e]);
    size_t k = 0;
    while (base[k] < 0 || code >= base[k] + in[k]->numel())
      ++k;
    r.i64[e] = in[k]->int_at(code - base[k]);
  }
  return true;
}

} // namespace

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
    if (v->type.dtype == DType::i64 && !inputs[i].i64.empty() &&
        inputs[i].i64.size() != inputs[i].data.size())
      fail("input %{} of @{} holds {} exact i64 values for {}", v->name, g.name,
           inputs[i].i64.size(), v->type.str());
    if (g.inputs()[i].range)
      for (int64_t k = 0; k < inputs[i].numel(); ++k)
        check_input_element(g, i, k, inputs[i].int_at(k));
    HostTensor &t = env[v] = inputs[i];
    if (t.type.dtype == DType::i64 && t.i64.empty()) {
      check_value_allocation(v);
      t.i64.resize(t.data.size());
      for (size_t k = 0; k < t.data.size(); ++k)
        t.i64[k] = saturate_to_i64(t.data[k]);
    }
  }
  for (auto &np : g.nodes()) {
    const Node &n = *np;
    std::vector<const HostTensor *> in;
    for (const Value *v : n.operands)
      in.push_back(&env.at(v));
    // Huge results are refused up front, naming the value: a failed
    // allocation of many GiB says nothing useful (and aborts under ASan).
    for (const Value *r : n.results)
      check_value_allocation(r);
    std::vector<HostTensor> out;
    try {
      n.info().eval(n, in, out);
    } catch (const std::bad_alloc &) {
      std::vector<std::string> what;
      for (const Value *r : n.results)
        what.push_back(fmt::format("%{} ({}, {} bytes)", r->name, r->type.str(),
                                   host_bytes(r->type)));
      fail("out of memory: the interpreter cannot hold {} of {}",
           fmt::join(what, ", "), n.info().name);
    }
    for (size_t i = 0; i < n.results.size(); ++i) {
      HostTensor &t = out.at(i);
      t.type = n.results[i]->type;
      if (t.type.dtype != DType::f64)
        for (double &x : t.data)
          x = round_to(t.type.dtype, x);
      if (t.type.dtype == DType::i64) {
        // Exact from the op's own eval (constants, fused bodies), or moved
        // exactly; else computed in double.
        bool exact = t.i64.size() == t.data.size() ||
                     (n.info().has(kMovesValues) && eval_moved_i64(n, in, t));
        if (exact) {
          for (size_t k = 0; k < t.data.size(); ++k)
            t.data[k] = static_cast<double>(t.i64[k]);
        } else {
          t.i64.resize(t.data.size());
          for (size_t k = 0; k < t.data.size(); ++k)
            t.i64[k] = saturate_to_i64(t.data[k]);
        }
      } else {
        t.i64.clear();
      }
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
  HostTensor &r = out.emplace_back(
      t, std::vector<double>(t.numel(), n.attrs.get_float("value")));
  // An integer value is exact for i64 beyond 2^53.
  const AttrValue *v = n.attrs.find("value");
  if (const int64_t *i = v ? std::get_if<int64_t>(v) : nullptr;
      i && t.dtype == DType::i64)
    r.i64.assign(r.data.size(), *i);
}

void eval_iota(const Node &n, std::span<const HostTensor *const>,
               std::vector<HostTensor> &out) {
  const Type &t = n.result()->type;
  int axis = static_cast<int>(attr_int(n, "axis"));
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
  auto seed = static_cast<uint64_t>(in[0]->int_at(0));
  auto offset = static_cast<uint64_t>(in[1]->int_at(0));
  HostTensor r(t);
  for (int64_t i = 0; i < r.numel(); ++i)
    r.data[i] = philox_uniform(seed, offset, static_cast<uint64_t>(i));
  out.push_back(std::move(r));
}

} // namespace kiln
