#include "codegen/cuda_emit_common.h"

#include "ir/error.h"
#include "ir/host_tensor.h"
#include "ir/scalar_expr.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace kiln::cuda {

namespace {

// Device helpers shared by every kernel. Math functions are overloaded per
// register type so that an expression emitted from the op table's scalar
// expression compiles the same way for f32, f64 and integers; f32 maps to
// the single-precision functions (expf, not exp).
constexpr std::string_view kPrelude = R"(// kiln CUDA prelude
typedef unsigned char kiln_bool_t;

template <typename T> struct alignas(sizeof(T) * 4) kiln_vec4 { T v[4]; };

template <typename T>
__device__ __forceinline__ bool kiln_aligned4(const T *p) {
  return (reinterpret_cast<unsigned long long>(p) & (sizeof(T) * 4 - 1)) == 0;
}

#define KILN_MATH1(NAME, F, D)                                                 \
  __device__ __forceinline__ float kiln_##NAME(float x) { return F(x); }       \
  __device__ __forceinline__ double kiln_##NAME(double x) { return D(x); }
KILN_MATH1(exp, expf, exp)
KILN_MATH1(log, logf, log)
KILN_MATH1(sqrt, sqrtf, sqrt)
KILN_MATH1(tanh, tanhf, tanh)
KILN_MATH1(erf, erff, erf)
KILN_MATH1(fabs, fabsf, fabs)
#undef KILN_MATH1
__device__ __forceinline__ int kiln_fabs(int x) { return x < 0 ? -x : x; }
__device__ __forceinline__ long long kiln_fabs(long long x) { return x < 0 ? -x : x; }
// maximum/minimum: IEEE 754-2019, a NaN operand gives NaN (a + b is NaN).
__device__ __forceinline__ float kiln_maximum(float a, float b) { return a != a || b != b ? a + b : fmaxf(a, b); }
__device__ __forceinline__ double kiln_maximum(double a, double b) { return a != a || b != b ? a + b : fmax(a, b); }
__device__ __forceinline__ int kiln_maximum(int a, int b) { return a > b ? a : b; }
__device__ __forceinline__ long long kiln_maximum(long long a, long long b) { return a > b ? a : b; }
__device__ __forceinline__ float kiln_minimum(float a, float b) { return a != a || b != b ? a + b : fminf(a, b); }
__device__ __forceinline__ double kiln_minimum(double a, double b) { return a != a || b != b ? a + b : fmin(a, b); }
__device__ __forceinline__ int kiln_minimum(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ long long kiln_minimum(long long a, long long b) { return a < b ? a : b; }
__device__ __forceinline__ float kiln_pow(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double kiln_pow(double a, double b) { return pow(a, b); }

// Conversions with the reference interpreter's rules (round_to): float to
// integer truncates toward zero, saturates to the integer's range and maps
// NaN to 0 (cvt.rzi's rule, written out so that no C++ conversion is out of
// range); anything to bool is != 0.
template <typename T> struct kiln_is_int { static constexpr bool value = false; };
template <> struct kiln_is_int<int> { static constexpr bool value = true; };
template <> struct kiln_is_int<long long> { static constexpr bool value = true; };
template <typename T> struct kiln_is_flt { static constexpr bool value = false; };
template <> struct kiln_is_flt<float> { static constexpr bool value = true; };
template <> struct kiln_is_flt<double> { static constexpr bool value = true; };
template <typename To, typename From>
__device__ __forceinline__ To kiln_cvt(From x) {
  if constexpr (sizeof(To) == 1) {
    return x != From(0);
  } else if constexpr (kiln_is_int<To>::value && kiln_is_flt<From>::value) {
    if (x != x)
      return To(0);
    if constexpr (sizeof(To) == 4) {
      if (x >= From(2147483648.0))
        return 2147483647;
      if (x <= From(-2147483648.0))
        return -2147483647 - 1;
    } else {
      if (x >= From(9223372036854775808.0))
        return 9223372036854775807LL;
      if (x <= From(-9223372036854775808.0))
        return -9223372036854775807LL - 1;
    }
    return static_cast<To>(x);
  } else {
    return static_cast<To>(x);
  }
}

// Reductions: warp shuffles, then shared memory across the warps of a block.
struct kiln_red_sum {
  template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct kiln_red_max {
  template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return kiln_maximum(a, b); }
};
template <typename T, typename F>
__device__ __forceinline__ T kiln_warp_reduce(T v, F f) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    v = f(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Every thread of the block must call it; all get the result.
template <typename T, typename F>
__device__ __forceinline__ T kiln_block_reduce(T v, F f, T init) {
  __shared__ T part[32];
  __shared__ T total;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = kiln_warp_reduce(v, f);
  if (lane == 0)
    part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < ((blockDim.x + 31) >> 5) ? part[lane] : init;
    w = kiln_warp_reduce(w, f);
    if (lane == 0)
      total = w;
  }
  __syncthreads();
  T r = total;
  __syncthreads();
  return r;
}

// Philox4x32-10, exactly as ir/philox.h: element i of a draw with (seed,
// offset) is the first word of philox(seed, (i_lo, i_hi, off_lo, off_hi)).
__device__ __forceinline__ float kiln_philox_uniform(unsigned long long seed,
                                                     unsigned long long offset,
                                                     unsigned long long index) {
  unsigned int c0 = (unsigned int)index, c1 = (unsigned int)(index >> 32),
               c2 = (unsigned int)offset, c3 = (unsigned int)(offset >> 32);
  unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    unsigned long long p0 = 0xD2511F53ull * c0;
    unsigned long long p1 = 0xCD9E8D57ull * c2;
    unsigned int n0 = (unsigned int)(p1 >> 32) ^ c1 ^ k0;
    unsigned int n1 = (unsigned int)p1;
    unsigned int n2 = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
    unsigned int n3 = (unsigned int)p0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return (float)(c0 >> 8) * (1.0f / 16777216.0f);
}

// One chain of a multi-tensor kernel (codegen/cuda_emitter.h MtEntry).
struct kiln_mt_entry {
  long long numel;
  long long block_begin;
  int variant;
  int ptr_offset;
};
)";

} // namespace

std::string_view cuda_prelude() { return kPrelude; }

std::string_view cuda_storage_type(DType t) {
  switch (t) {
  case DType::f32:
    return "float";
  case DType::f64:
    return "double";
  case DType::i32:
    return "int";
  case DType::i64:
    return "long long";
  case DType::boolean:
    return "kiln_bool_t";
  }
  return "float";
}

namespace detail {

std::string_view reg_type(DType t) {
  return t == DType::boolean ? "bool" : cuda_storage_type(t);
}

std::string literal(DType t, double v) {
  switch (t) {
  case DType::f32:
  case DType::f64: {
    std::string suffix = t == DType::f32 ? "f" : "";
    std::string_view type = reg_type(t);
    if (std::isnan(v))
      return fmt::format("{}(__int_as_float(0x7fffffff))", type);
    if (std::isinf(v))
      return fmt::format("({}{}(__int_as_float(0x7f800000)))", v < 0 ? "-" : "",
                         type);
    std::string s = t == DType::f32
                        ? fmt::format("{:.9g}", static_cast<float>(v))
                        : fmt::format("{:.17g}", v);
    if (s.find_first_of(".e") == std::string::npos)
      s += ".0";
    return s + suffix;
  }
  case DType::i32:
    // INT32_MIN and INT64_MIN are not literals in C (the minus applies to
    // a positive literal that does not fit): spelled as an expression.
    if (saturate_to_i32(v) == std::numeric_limits<int32_t>::min())
      return "(-2147483647 - 1)";
    return fmt::format("{}", saturate_to_i32(v));
  case DType::i64:
    if (saturate_to_i64(v) == std::numeric_limits<int64_t>::min())
      return "(-9223372036854775807LL - 1)";
    return fmt::format("{}LL", saturate_to_i64(v));
  case DType::boolean:
    return v != 0 ? "true" : "false";
  }
  return "0";
}

std::string load(DType t, std::string_view ptr, std::string_view off) {
  if (t == DType::boolean)
    return fmt::format("({}[{}] != 0)", ptr, off);
  return fmt::format("{}[{}]", ptr, off);
}

std::string store_value(DType t, std::string_view v) {
  if (t == DType::boolean)
    return fmt::format("(kiln_bool_t)({})", v);
  return std::string(v);
}

std::string pointer_param(DType t, std::string_view name, bool is_const) {
  return fmt::format("{}{} *__restrict__ {}", is_const ? "const " : "",
                     cuda_storage_type(t), name);
}

std::string dims(const Shape &s) {
  if (s.empty())
    return "scalar";
  return fmt::format("{}", fmt::join(s, "x"));
}

std::string strided_offset(const Shape &to, const std::vector<int64_t> &st,
                           std::string_view i) {
  std::vector<std::string> terms;
  int64_t inner = 1; // elements of `to` after axis a
  for (size_t a = to.size(); a-- > 0;) {
    if (st[a] != 0 && to[a] != 1) {
      std::string idx =
          inner == 1 ? std::string(i) : fmt::format("({} / {}LL)", i, inner);
      if (a != 0)
        idx = fmt::format("({} % {}LL)", idx, to[a]);
      terms.push_back(st[a] == 1 ? idx : fmt::format("{} * {}LL", idx, st[a]));
    }
    inner *= to[a];
  }
  if (terms.empty())
    return "0";
  return fmt::format("({})", fmt::join(terms, " + "));
}

std::string bcast_offset(const Shape &from, const Shape &to,
                         std::string_view i) {
  if (numel(from) == 1)
    return "0";
  if (from == to)
    return std::string(i);
  return strided_offset(to, broadcast_strides(from, to), i);
}

std::string iota_value(const Node &n, const Shape &space, std::string_view i) {
  const Type &t = n.result()->type;
  const Shape &s = t.shape;
  if (!broadcasts_to(s, space))
    fail("cuda emitter: iota {} does not broadcast to the iteration space {}",
         t.str(), shape_str(space));
  int axis = normalize_axis(attr_int(n, "axis"), t.rank());
  // The space axis that the iota's axis lines up with (trailing alignment).
  size_t a = space.size() - s.size() + static_cast<size_t>(axis);
  std::string coord = "0";
  if (s[axis] != 1) {
    std::vector<int64_t> st(space.size(), 0);
    st[a] = 1;
    coord = strided_offset(space, st, i);
  }
  return fmt::format("kiln_cvt<{}>((long long){})", reg_type(t.dtype), coord);
}

std::unordered_set<const Value *>
needed_values(const Graph &body, const std::vector<const Value *> &targets) {
  std::unordered_set<const Value *> need(targets.begin(), targets.end());
  for (size_t k = body.nodes().size(); k-- > 0;) {
    const Node &n = *body.nodes()[k];
    bool used = false;
    for (const Value *r : n.results)
      used = used || need.count(r);
    if (used)
      for (const Value *o : n.operands)
        need.insert(o);
  }
  return need;
}

const std::string &BodyWriter::name(const Value *v) const {
  auto it = names_.find(v);
  if (it == names_.end())
    fail("cuda emitter: value %{} of the body is not available here",
         v->name.empty() ? std::to_string(v->id) : v->name);
  return it->second;
}

void line(std::string &out, std::string_view indent, std::string_view text) {
  out += indent;
  out += text;
  out += '\n';
}

namespace {

// The C expression of a scalar expression tree; `dt` is the dtype the
// operation computes in (its operands' dtype), used for literals.
std::string c_expr(const ScalarExpr &e, const std::vector<std::string> &args,
                   DType dt) {
  using K = ScalarExpr::Kind;
  auto k = [&](int i) { return c_expr(e.kids[i], args, dt); };
  auto bin = [&](const char *op) {
    return fmt::format("({} {} {})", k(0), op, k(1));
  };
  switch (e.kind) {
  case K::Arg:
    if (e.arg >= static_cast<int>(args.size()))
      fail("cuda emitter: scalar expression uses ${} of {} operands", e.arg,
           args.size());
    return args[e.arg];
  case K::Const:
    return literal(dt, e.value);
  case K::Neg:
    return fmt::format("(-{})", k(0));
  case K::Add:
    return bin("+");
  case K::Sub:
    return bin("-");
  case K::Mul:
    return bin("*");
  case K::Div:
    return bin("/");
  case K::Eq:
    return bin("==");
  case K::Ne:
    return bin("!=");
  case K::Lt:
    return bin("<");
  case K::Le:
    return bin("<=");
  case K::Gt:
    return bin(">");
  case K::Ge:
    return bin(">=");
  case K::Select:
    return fmt::format("({} ? {} : {})", k(0), k(1), k(2));
  case K::Call: {
    std::vector<std::string> kids;
    for (size_t i = 0; i < e.kids.size(); ++i)
      kids.push_back(k(static_cast<int>(i)));
    return fmt::format("kiln_{}({})", e.fn, fmt::join(kids, ", "));
  }
  case K::Attr:
    fail("cuda emitter: unbound attribute '{}' in a scalar expression", e.fn);
  }
  fail("cuda emitter: bad scalar expression node");
}

} // namespace

std::string BodyWriter::expr(const Node &n) const {
  std::vector<std::string> args;
  for (const Value *o : n.operands)
    args.push_back(name(o));
  DType dt = n.operands.empty() ? n.result()->type.dtype
                                : n.operands.back()->type.dtype;
  std::string e = c_expr(scalar_expr(n), args, dt);
  // The expression's natural type is the operands' (or bool for a
  // comparison); a different result dtype (cast) converts like the
  // interpreter's round_to.
  const ScalarExpr &se = scalar_expr(n.op);
  DType natural = se.is_compare() ? DType::boolean : dt;
  DType rt = n.result()->type.dtype;
  if (natural != rt)
    e = fmt::format("kiln_cvt<{}>({})", reg_type(rt), e);
  return e;
}

const Node *BodyWriter::emit(std::string &out,
                             const std::vector<const Value *> &targets,
                             std::string_view indent) {
  // What the targets need, not looking through values already bound.
  std::unordered_set<const Value *> need(targets.begin(), targets.end());
  for (size_t k = body_.nodes().size(); k-- > 0;) {
    const Node &n = *body_.nodes()[k];
    bool used = false;
    for (const Value *r : n.results)
      used = used || (need.count(r) && !bound(r));
    if (used)
      for (const Value *o : n.operands)
        need.insert(o);
  }
  for (auto &np : body_.nodes()) {
    const Node &n = *np;
    bool wanted = false, done = true;
    for (const Value *r : n.results) {
      wanted = wanted || need.count(r);
      done = done && bound(r);
    }
    if (!wanted || done)
      continue;
    const Value *r = n.result();
    std::string v = prefix_ + std::to_string(r->id);
    if (n.op == Op::Constant) {
      line(out, indent,
           fmt::format("const {} {} = {};", reg_type(r->type.dtype), v,
                       literal(r->type.dtype, n.attrs.get_float("value"))));
    } else if (n.op == Op::Iota && has_space_) {
      line(out, indent,
           fmt::format("const {} {} = {};", reg_type(r->type.dtype), v,
                       iota_value(n, space_, index_)));
    } else if (n.info().has(kElementwise)) {
      line(out, indent,
           fmt::format("const {} {} = {};", reg_type(r->type.dtype), v,
                       expr(n)));
    } else {
      return &n;
    }
    bind(r, v);
  }
  return nullptr;
}

std::string op_list(const Graph &body) {
  std::vector<std::string_view> ops;
  for (auto &n : body.nodes())
    ops.push_back(op_name(n->op));
  return fmt::format("{}", fmt::join(ops, ", "));
}

std::string emit_elementwise_loop(const LoopSpec &s) {
  const std::string &ind = s.indent;
  std::string out;
  // Classify the inputs that the outputs need.
  std::vector<const Value *> targets;
  for (auto &[v, p] : s.outputs)
    targets.push_back(v);
  auto need = needed_values(*s.body, targets);
  struct In {
    const Value *v;
    std::string ptr;
    enum { full, scalar, bcast } how;
  };
  std::vector<In> ins;
  for (auto &[v, p] : s.inputs) {
    if (!need.count(v))
      continue;
    if (!broadcasts_to(v->type.shape, s.space))
      fail("cuda emitter: body input {} does not broadcast to the iteration "
           "space {}",
           v->type.str(), shape_str(s.space));
    auto how = v->type.numel() == 1       ? In::scalar
               : v->type.shape == s.space ? In::full
                                          : In::bcast;
    ins.push_back({v, p, how});
  }
  // An output may be a body input (a copy kernel), stored broadcast.
  for (auto &[v, p] : s.outputs)
    if (v->type.shape != s.space &&
        !(s.body->input_index(v) >= 0 && broadcasts_to(v->type.shape, s.space)))
      fail("cuda emitter: output {} is not of the iteration space {}",
           v->type.str(), shape_str(s.space));
  // Scalars: loaded once.
  std::vector<std::pair<const Value *, std::string>> hoisted;
  for (const In &in : ins)
    if (in.how == In::scalar) {
      std::string n = fmt::format("{}s{}", s.prefix, in.v->id);
      line(out, ind,
           fmt::format("const {} {} = {};", reg_type(in.v->type.dtype), n,
                       load(in.v->type.dtype, in.ptr, "0")));
      hoisted.emplace_back(in.v, n);
    }
  line(out, ind, fmt::format("const long long {}n = {};", s.prefix, s.numel));

  // The body at index `i`, with full inputs read through `full_name`.
  auto element = [&](std::string_view in2, auto full_name, auto store) {
    BodyWriter w(*s.body, s.prefix);
    w.set_space(s.space, "i");
    for (auto &[v, n] : hoisted)
      w.bind(v, n);
    std::string code;
    for (const In &in : ins) {
      std::string n = fmt::format("{}i{}", s.prefix, in.v->id);
      if (in.how == In::full)
        line(code, in2,
             fmt::format("const {} {} = {};", reg_type(in.v->type.dtype), n,
                         full_name(in)));
      else if (in.how == In::bcast)
        line(code, in2,
             fmt::format("const {} {} = {};", reg_type(in.v->type.dtype), n,
                         load(in.v->type.dtype, in.ptr,
                              bcast_offset(in.v->type.shape, s.space, "i"))));
      else
        continue;
      w.bind(in.v, n);
    }
    if (const Node *bad = w.emit(code, targets, in2))
      fail("cuda emitter: {} cannot be part of an elementwise body",
           op_name(bad->op));
    for (size_t k = 0; k < s.outputs.size(); ++k)
      line(code, in2, store(k, w.name(s.outputs[k].first)));
    return code;
  };
  auto scalar_loop = [&](std::string_view li, std::string_view start) {
    std::string in2 = std::string(li) + "  ";
    line(out, li,
         fmt::format("for (long long i = {}; i < {}n; i += {}) {{", start,
                     s.prefix, s.stride));
    out += element(
        in2, [&](const In &in) { return load(in.v->type.dtype, in.ptr, "i"); },
        [&](size_t k, const std::string &v) {
          auto &[val, p] = s.outputs[k];
          return fmt::format("{}[i] = {};", p, store_value(val->type.dtype, v));
        });
    line(out, li, "}");
  };

  // The vector path: 4 consecutive elements per thread and iteration, full
  // inputs and outputs through 16-byte (for 4-byte types) accesses.
  std::vector<std::string> aligned;
  for (const In &in : ins)
    if (in.how == In::full)
      aligned.push_back(fmt::format("kiln_aligned4({})", in.ptr));
  for (auto &[v, p] : s.outputs)
    aligned.push_back(fmt::format("kiln_aligned4({})", p));
  line(out, ind,
       fmt::format("if ({}) {{",
                   aligned.empty()
                       ? std::string("true")
                       : fmt::format("{}", fmt::join(aligned, " && "))));
  {
    std::string i2 = ind + "  ", i3 = ind + "    ", i4 = ind + "      ";
    line(out, i2, fmt::format("const long long nv = {}n / 4;", s.prefix));
    line(out, i2,
         fmt::format("for (long long q = {}; q < nv; q += {}) {{", s.first,
                     s.stride));
    line(out, i3, "const long long i0 = q * 4;");
    for (const In &in : ins)
      if (in.how == In::full)
        line(out, i3,
             fmt::format("const kiln_vec4<{0}> {1}a{2} = *reinterpret_cast<"
                         "const kiln_vec4<{0}> *>({3} + i0);",
                         cuda_storage_type(in.v->type.dtype), s.prefix,
                         in.v->id, in.ptr));
    for (size_t k = 0; k < s.outputs.size(); ++k)
      line(out, i3,
           fmt::format("kiln_vec4<{}> {}o{};",
                       cuda_storage_type(s.outputs[k].first->type.dtype),
                       s.prefix, k));
    line(out, i3, "#pragma unroll");
    line(out, i3, "for (int j = 0; j < 4; ++j) {");
    line(out, i4, "const long long i = i0 + j;");
    out += element(
        i4,
        [&](const In &in) {
          std::string e = fmt::format("{}a{}.v[j]", s.prefix, in.v->id);
          return in.v->type.dtype == DType::boolean ? "(" + e + " != 0)" : e;
        },
        [&](size_t k, const std::string &v) {
          return fmt::format("{}o{}.v[j] = {};", s.prefix, k,
                             store_value(s.outputs[k].first->type.dtype, v));
        });
    line(out, i4, "(void)i;");
    line(out, i3, "}");
    for (size_t k = 0; k < s.outputs.size(); ++k)
      line(out, i3,
           fmt::format("*reinterpret_cast<kiln_vec4<{}> *>({} + i0) = {}o{};",
                       cuda_storage_type(s.outputs[k].first->type.dtype),
                       s.outputs[k].second, s.prefix, k));
    line(out, i2, "}");
    scalar_loop(i2, fmt::format("nv * 4 + {}", s.first));
  }
  line(out, ind, "} else {");
  scalar_loop(ind + "  ", s.first);
  line(out, ind, "}");
  return out;
}

} // namespace detail
} // namespace kiln::cuda
