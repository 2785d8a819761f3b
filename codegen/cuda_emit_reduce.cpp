// Reduction kernels: a fused (or one-node) body with one sum/mean/amax over
// axes or softmax/log_softmax along an axis (R), after an elementwise
// prologue over the reduction input's space X (iotas included), and, after
// sum/mean/amax only, an elementwise epilogue on R's result (the contract
// is at the top of passes/fuse_elementwise.cpp).
//
// The prologue becomes a device function `<kernel>_x(i, in..., out1...)`
// that computes element i of the reduction input from the kernel's inputs
// and stores the extra outputs (prologue values of shape X) at i; the
// kernel reads the input only through it. Every layout below calls it
// exactly once per point of X (a warp lane, a block thread or a tile row
// owns each point), so each extra element is written once. The epilogue
// becomes `<kernel>_y(r)`, applied to the finished value (after the mean's
// division) before output 0 is stored. Kernel parameters: the inputs, out0,
// then the extra outputs, as the runtime passes a node's results. Layouts,
// viewing the input as [O, R, I] when the reduced axes are one contiguous
// block:
//   I == 1, R <= 1024:  a warp per row (8 rows per block), shuffle reduction
//   I == 1, R  > 1024:  a block per row, warp shuffles + shared memory
//   I  > 1:             column tiles: 32 columns x 8 partial rows per block
//   axes not contiguous: a warp per output element, offsets computed
// Softmax along an axis: a warp (or block) per row when the axis is last,
// else a thread per (outer, inner) column.
//
// Split reductions. A layout with few work units and a long reduced axis
// would leave most of the GPU idle (a bias gradient at batch 65536 is
// [65536, 10] -> [10]: one column tile, one block; a full reduction is one
// row, one block). Then the reduced axis is cut into S chunks of Rc rows,
// each reduced by its own block (column tiles, or a block per row chunk)
// into a scratch buffer [outputs, S], and a second kernel `<kernel>_fin`
// (a warp per output) combines the S partials in a fixed order, applies
// the mean's division and the epilogue, and stores output 0. The extra
// outputs are still written once per point, by the first kernel. S and Rc
// depend on the shapes only (never on the device's SM count), so results
// are the same on every GPU and every run.
#include "codegen/cuda_emit_common.h"

#include "ir/error.h"
#include "ir/infer.h"
#include "ir/reduction_body.h"

#include <fmt/format.h>

namespace kiln::cuda::detail {

namespace {

constexpr int kBlock = 256;
constexpr int64_t kWarpRowMax = 1024;
// Split plans: aim for this many blocks in the first kernel, with at least
// this many reduced rows (column tiles: 8 rows at a time) or elements (a
// block per row chunk: 256 at a time) per chunk.
constexpr int64_t kSplitBlocks = 1024;
constexpr int64_t kSplitMinRowsCols = 256;
constexpr int64_t kSplitMinRowElems = 4096;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string lowest(DType t) {
  switch (t) {
  case DType::i32:
    return "(-2147483647 - 1)";
  case DType::i64:
    return "(-9223372036854775807LL - 1)";
  default:
    return literal(t, -INFINITY);
  }
}

int64_t prod(const Shape &s, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e; ++i)
    p *= s[i];
  return p;
}

} // namespace

CudaKernel emit_reduction_kernel(const Graph &body, const std::string &name,
                                 const std::string &what) {
  ReductionBody rb;
  try {
    rb = split_reduction_body(body);
  } catch (const Error &e) {
    fail("cuda emitter: {}: {}", name, e.what());
  }
  const Node &red = *body.nodes()[rb.reduce];
  const Value *x = red.operands[0];
  const Shape &xs = x->type.shape;
  const DType dt = x->type.dtype;
  const std::string T(reg_type(dt));
  const Type &rt = red.result()->type;
  const Value *out0 = body.outputs[0].value;
  const Type &ot = out0->type;
  std::vector<const Value *> extras;
  for (int o : rb.extras)
    extras.push_back(body.outputs[o].value);

  CudaKernel k;
  k.name = name;
  std::vector<std::string> out_types;
  for (const GraphOutput &o : body.outputs)
    out_types.push_back(o.value->type.str());
  k.summary = fmt::format("{} [{}] {} -> {}", what, op_list(body),
                          x->type.str(), fmt::join(out_types, ", "));
  if (!extras.empty())
    k.summary += fmt::format(" ({} written as the reduction visits each point)",
                             extras.size() == 1
                                 ? std::string("output 1")
                                 : fmt::format("outputs 1..{}", extras.size()));

  // Parameters (inputs, out0, the extra outputs) and the prologue function,
  // which also stores the extra outputs at i: every layout below evaluates
  // each point of the input exactly once.
  std::vector<std::string> params, x_params, args;
  for (size_t i = 0; i < body.inputs().size(); ++i) {
    const Value *v = body.inputs()[i].value;
    std::string p = pointer_param(v->type.dtype, fmt::format("in{}", i), true);
    params.push_back(p);
    x_params.push_back(p);
    args.push_back(fmt::format("in{}", i));
  }
  params.push_back(pointer_param(ot.dtype, "out0", false));
  for (size_t e = 0; e < extras.size(); ++e) {
    std::string p = pointer_param(extras[e]->type.dtype,
                                  fmt::format("out{}", e + 1), false);
    params.push_back(p);
    x_params.push_back(p);
    args.push_back(fmt::format("out{}", e + 1));
  }
  std::string fn = name + "_x";
  std::string src =
      fmt::format("// {}_x: element i of the reduction input "
                  "{}{}\n",
                  name, x->type.str(),
                  extras.empty() ? "" : "; stores the extra outputs at i");
  src +=
      fmt::format("__device__ __forceinline__ {} {}(long long i{}{}) {{\n", T,
                  fn, x_params.empty() ? "" : ", ", fmt::join(x_params, ", "));
  {
    BodyWriter w(body, "v");
    w.set_space(xs, "i");
    std::vector<const Value *> targets = {x};
    targets.insert(targets.end(), extras.begin(), extras.end());
    auto need = needed_values(body, targets);
    for (size_t i = 0; i < body.inputs().size(); ++i) {
      const Value *v = body.inputs()[i].value;
      if (!need.count(v))
        continue;
      if (!broadcasts_to(v->type.shape, xs))
        fail("cuda emitter: {}: body input {} does not broadcast to the "
             "reduction input {}",
             name, v->type.str(), x->type.str());
      std::string n = fmt::format("vi{}", v->id);
      line(src, "  ",
           fmt::format("const {} {} = {};", reg_type(v->type.dtype), n,
                       load(v->type.dtype, fmt::format("in{}", i),
                            bcast_offset(v->type.shape, xs, "i"))));
      w.bind(v, n);
    }
    if (const Node *bad = w.emit(src, targets, "  "))
      fail("cuda emitter: {}: {} cannot be part of a reduction prologue", name,
           op_name(bad->op));
    for (size_t e = 0; e < extras.size(); ++e)
      line(src, "  ",
           fmt::format("out{}[i] = {};", e + 1,
                       store_value(extras[e]->type.dtype, w.name(extras[e]))));
    line(src, "  ", fmt::format("(void)i;"));
    line(src, "  ", fmt::format("return {};", w.name(x)));
  }
  src += "}\n";
  // The epilogue function: output 0 from the finished reduction value.
  std::string epi_fn;
  if (out0 != red.result()) {
    epi_fn = name + "_y";
    src += fmt::format("// {}: the epilogue, output 0 {} from the reduced "
                       "value\n",
                       epi_fn, ot.str());
    src += fmt::format("__device__ __forceinline__ {} {}({} r) {{\n",
                       reg_type(ot.dtype), epi_fn, reg_type(rt.dtype));
    BodyWriter w(body, "e");
    w.bind(red.result(), "r");
    if (const Node *bad = w.emit(src, {out0}, "  "))
      fail("cuda emitter: {}: {} cannot be part of a reduction epilogue", name,
           op_name(bad->op));
    line(src, "  ", fmt::format("return {};", w.name(out0)));
    src += "}\n";
  }
  std::string call_args =
      args.empty() ? "" : fmt::format(", {}", fmt::join(args, ", "));
  auto X = [&](const std::string &idx) {
    return fmt::format("{}({}{})", fn, idx, call_args);
  };
  // The stored form of output 0 from the reduced value `v`.
  auto store = [&](const std::string &v) {
    return store_value(ot.dtype,
                       epi_fn.empty() ? v : fmt::format("{}({})", epi_fn, v));
  };
  std::string head = kernel_head(name, k.summary, params, kBlock);
  head += "  (void)first;\n  (void)stride;\n";

  if (red.op == Op::Softmax || red.op == Op::LogSoftmax) {
    int axis = normalize_axis(attr_int(red, "axis"), x->type.rank());
    int64_t O = prod(xs, 0, axis), L = xs[axis],
            I = prod(xs, axis + 1, xs.size());
    // z = x - max; softmax = exp(z) / s, log_softmax = z - log(s).
    std::string fin =
        red.op == Op::Softmax ? "kiln_exp(z) / s" : "z - kiln_log(s)";
    std::string body_src;
    if (I == 1) {
      bool warp = L <= kWarpRowMax;
      std::string lane = warp ? "lane" : "threadIdx.x";
      std::string step = warp ? "32" : "blockDim.x";
      std::string rmax = warp ? "m = kiln_warp_reduce(m, kiln_red_max());"
                              : fmt::format("m = kiln_block_reduce(m, "
                                            "kiln_red_max(), {});",
                                            lowest(dt));
      std::string rsum = warp ? "s = kiln_warp_reduce(s, kiln_red_sum());"
                              : fmt::format("s = kiln_block_reduce(s, "
                                            "kiln_red_sum(), {});",
                                            literal(dt, 0));
      if (warp)
        body_src += "  const int lane = threadIdx.x & 31;\n"
                    "  for (long long row = first >> 5; row < {O}LL; row += "
                    "stride >> 5) {{\n";
      else
        body_src += "  for (long long row = blockIdx.x; row < {O}LL; row += "
                    "gridDim.x) {{\n";
      body_src += "    const long long base = row * {L}LL;\n"
                  "    {T} m = {low};\n"
                  "    for (long long r = {lane}; r < {L}LL; r += {step})\n"
                  "      m = kiln_maximum(m, {xr});\n"
                  "    {rmax}\n"
                  "    {T} s = {zero};\n"
                  "    for (long long r = {lane}; r < {L}LL; r += {step})\n"
                  "      s += kiln_exp({xr} - m);\n"
                  "    {rsum}\n"
                  "    for (long long r = {lane}; r < {L}LL; r += {step}) {{\n"
                  "      const {T} z = {xr} - m;\n"
                  "      out0[base + r] = {fin};\n"
                  "    }}\n"
                  "  }}\n";
      src += head;
      src += fmt::format(
          fmt::runtime(body_src), fmt::arg("O", O), fmt::arg("L", L),
          fmt::arg("T", T), fmt::arg("low", lowest(dt)), fmt::arg("lane", lane),
          fmt::arg("step", step), fmt::arg("xr", X("base + r")),
          fmt::arg("rmax", rmax), fmt::arg("rsum", rsum),
          fmt::arg("zero", literal(dt, 0)), fmt::arg("fin", store(fin)));
      k.launch.units = O;
      k.launch.units_per_block = warp ? kBlock / 32 : 1;
    } else {
      src += head;
      src += fmt::format(
          fmt::runtime(
              "  for (long long t = first; t < {OI}LL; t += stride) {{\n"
              "    const long long base = (t / {I}LL) * {L}LL * {I}LL + t % "
              "{I}LL;\n"
              "    {T} m = {low};\n"
              "    for (long long j = 0; j < {L}LL; ++j)\n"
              "      m = kiln_maximum(m, {xj});\n"
              "    {T} s = {zero};\n"
              "    for (long long j = 0; j < {L}LL; ++j)\n"
              "      s += kiln_exp({xj} - m);\n"
              "    for (long long j = 0; j < {L}LL; ++j) {{\n"
              "      const {T} z = {xj} - m;\n"
              "      out0[base + j * {I}LL] = {fin};\n"
              "    }}\n"
              "  }}\n"),
          fmt::arg("OI", O * I), fmt::arg("I", I), fmt::arg("L", L),
          fmt::arg("T", T), fmt::arg("low", lowest(dt)),
          fmt::arg("xj", X(fmt::format("base + j * {}LL", I))),
          fmt::arg("zero", literal(dt, 0)), fmt::arg("fin", store(fin)));
      k.launch.units = O * I;
      k.launch.units_per_block = kBlock;
    }
    src += "}\n";
    k.kernel = src;
    k.launch.units = std::max<int64_t>(k.launch.units, 1);
    return k;
  }

  // What the reduction starts from, combines with and finishes with comes
  // from the op table (kCombineAdd / kCombineMax / kDividesByCount in
  // ir/ops.def), as the interpreter and the LLVM emitter take it; only the
  // prelude's functor names are this emitter's.
  const OpInfo &ri = red.info();
  if (ri.combiner() == Combiner::none)
    fail("cuda emitter: {}: no reduction kernel for {}", name, op_name(red.op));
  bool is_max = ri.combiner() == Combiner::max;
  std::vector<int> axes = reduction_axes(red.attrs, x->type.rank());
  int64_t count = 1;
  for (int a : axes)
    count *= xs[a];
  // The max identity is the dtype's lowest value (-inf for floats).
  std::string init = is_max ? lowest(dt) : literal(dt, ri.reduce_identity());
  std::string F = is_max ? "kiln_red_max()" : "kiln_red_sum()";
  std::string fin =
      ri.has(kDividesByCount)
          ? fmt::format("acc / {}", literal(dt, static_cast<double>(count)))
          : "acc";
  bool contiguous = true;
  for (size_t j = 1; j < axes.size(); ++j)
    contiguous = contiguous && axes[j] == axes[j - 1] + 1;
  int64_t O, R, I;
  if (axes.empty()) {
    O = numel(xs), R = 1, I = 1;
  } else {
    O = prod(xs, 0, axes.front());
    R = count;
    I = prod(xs, axes.back() + 1, xs.size());
  }
  // The split plan (see the top of the file): S chunks of Rc rows.
  int64_t S = 1;
  if (contiguous && !axes.empty() && R > 1) {
    if (I > 1)
      S = std::min(ceil_div(kSplitBlocks, O * ceil_div(I, 32)),
                   R / kSplitMinRowsCols);
    else if (R > kWarpRowMax)
      S = std::min(ceil_div(kSplitBlocks, O), R / kSplitMinRowElems);
  }
  const int64_t Rc = S >= 2 ? ceil_div(R, S) : R;
  if (S >= 2)
    S = ceil_div(R, Rc); // every chunk non-empty
  if (S >= 2) {
    const int64_t NQ = rt.numel();
    std::vector<std::string> sparams = params;
    sparams.push_back(fmt::format("{} *__restrict__ scratch", T));
    std::string split_head = kernel_head(name, k.summary, sparams, kBlock) +
                             "  (void)first;\n  (void)stride;\n";
    auto sfmt = [&](const char *text) {
      return fmt::format(
          fmt::runtime(text), fmt::arg("O", O), fmt::arg("R", R),
          fmt::arg("I", I), fmt::arg("S", S), fmt::arg("Rc", Rc),
          fmt::arg("T", T), fmt::arg("init", init), fmt::arg("F", F),
          fmt::arg("fin", store(fin)),
          fmt::arg("xr", X("row * " + std::to_string(R) + "LL + r")),
          fmt::arg("xc", X(fmt::format("(o * {}LL + r) * {}LL + c", R, I))),
          fmt::arg("NQ", NQ));
    };
    src += split_head;
    if (I > 1) {
      src +=
          sfmt("  // split: partials of {S} chunks of {Rc} rows\n"
               "  __shared__ {T} part[8][33];\n"
               "  const long long ntile = ({I}LL + 31) / 32;\n"
               "  for (long long t = blockIdx.x; t < {O}LL * ntile * {S}LL; "
               "t += gridDim.x) {{\n"
               "    const long long s = t % {S}LL, ot = t / {S}LL;\n"
               "    const long long o = ot / ntile;\n"
               "    const long long c = (ot % ntile) * 32 + threadIdx.x;\n"
               "    const long long r_end = (s + 1) * {Rc}LL < {R}LL ? "
               "(s + 1) * {Rc}LL : {R}LL;\n"
               "    {T} acc = {init};\n"
               "    if (c < {I}LL)\n"
               "      for (long long r = s * {Rc}LL + threadIdx.y; r < r_end; "
               "r += 8)\n"
               "        acc = {F}(acc, {xc});\n"
               "    part[threadIdx.y][threadIdx.x] = acc;\n"
               "    __syncthreads();\n"
               "    if (threadIdx.y == 0 && c < {I}LL) {{\n"
               "      for (int y = 1; y < 8; ++y)\n"
               "        acc = {F}(acc, part[y][threadIdx.x]);\n"
               "      scratch[(o * {I}LL + c) * {S}LL + s] = acc;\n"
               "    }}\n"
               "    __syncthreads();\n"
               "  }}\n");
      k.launch.block_x = 32;
      k.launch.block_y = 8;
      k.launch.units = O * ceil_div(I, 32) * S;
    } else {
      src += sfmt("  // split: partials of {S} chunks of {Rc} elements\n"
                  "  for (long long t = blockIdx.x; t < {O}LL * {S}LL; "
                  "t += gridDim.x) {{\n"
                  "    const long long row = t / {S}LL, s = t % {S}LL;\n"
                  "    const long long r_end = (s + 1) * {Rc}LL < {R}LL ? "
                  "(s + 1) * {Rc}LL : {R}LL;\n"
                  "    {T} acc = {init};\n"
                  "    for (long long r = s * {Rc}LL + threadIdx.x; r < r_end; "
                  "r += blockDim.x)\n"
                  "      acc = {F}(acc, {xr});\n"
                  "    acc = kiln_block_reduce(acc, {F}, {init});\n"
                  "    if (threadIdx.x == 0)\n"
                  "      scratch[t] = acc;\n"
                  "  }}\n");
      k.launch.units = O * S;
    }
    k.launch.units_per_block = 1;
    src += "}\n";
    k.finish_name = name + "_fin";
    src += kernel_head(
        k.finish_name,
        fmt::format("the {} partials of each output of {}", S, name), sparams,
        kBlock);
    src += "  (void)first;\n  (void)stride;\n";
    src += sfmt("  const int lane = threadIdx.x & 31;\n"
                "  for (long long q = first >> 5; q < {NQ}LL; q += stride >> "
                "5) {{\n"
                "    {T} acc = {init};\n"
                "    for (long long s = lane; s < {S}LL; s += 32)\n"
                "      acc = {F}(acc, scratch[q * {S}LL + s]);\n"
                "    acc = kiln_warp_reduce(acc, {F});\n"
                "    if (lane == 0)\n"
                "      out0[q] = {fin};\n"
                "  }}\n");
    src += "}\n";
    k.finish_launch.units = std::max<int64_t>(NQ, 1);
    k.finish_launch.units_per_block = kBlock / 32;
    k.scratch_bytes = NQ * S * 8; // room for the widest accumulator
    k.kernel = src;
    return k;
  }
  src += head;
  auto args_fmt = [&](const char *text) {
    return fmt::format(
        fmt::runtime(text), fmt::arg("O", O), fmt::arg("R", R),
        fmt::arg("I", I), fmt::arg("T", T), fmt::arg("init", init),
        fmt::arg("F", F), fmt::arg("fin", store(fin)),
        fmt::arg("xr", X("row * " + std::to_string(R) + "LL + r")),
        fmt::arg("xc", X(fmt::format("(o * {}LL + r) * {}LL + c", R, I))),
        fmt::arg("NOUT", rt.numel()));
  };
  if (contiguous && I == 1 && R <= kWarpRowMax) {
    src += args_fmt("  const int lane = threadIdx.x & 31;\n"
                    "  for (long long row = first >> 5; row < {O}LL; row += "
                    "stride >> 5) {{\n"
                    "    {T} acc = {init};\n"
                    "    for (long long r = lane; r < {R}LL; r += 32)\n"
                    "      acc = {F}(acc, {xr});\n"
                    "    acc = kiln_warp_reduce(acc, {F});\n"
                    "    if (lane == 0)\n"
                    "      out0[row] = {fin};\n"
                    "  }}\n");
    k.launch.units = O;
    k.launch.units_per_block = kBlock / 32;
  } else if (contiguous && I == 1) {
    src += args_fmt("  for (long long row = blockIdx.x; row < {O}LL; row += "
                    "gridDim.x) {{\n"
                    "    {T} acc = {init};\n"
                    "    for (long long r = threadIdx.x; r < {R}LL; r += "
                    "blockDim.x)\n"
                    "      acc = {F}(acc, {xr});\n"
                    "    acc = kiln_block_reduce(acc, {F}, {init});\n"
                    "    if (threadIdx.x == 0)\n"
                    "      out0[row] = {fin};\n"
                    "  }}\n");
    k.launch.units = O;
    k.launch.units_per_block = 1;
  } else if (contiguous) {
    src += args_fmt(
        "  __shared__ {T} part[8][33];\n"
        "  const long long ntile = ({I}LL + 31) / 32;\n"
        "  for (long long t = blockIdx.x; t < {O}LL * ntile; t += gridDim.x) "
        "{{\n"
        "    const long long o = t / ntile;\n"
        "    const long long c = (t % ntile) * 32 + threadIdx.x;\n"
        "    {T} acc = {init};\n"
        "    if (c < {I}LL)\n"
        "      for (long long r = threadIdx.y; r < {R}LL; r += 8)\n"
        "        acc = {F}(acc, {xc});\n"
        "    part[threadIdx.y][threadIdx.x] = acc;\n"
        "    __syncthreads();\n"
        "    if (threadIdx.y == 0 && c < {I}LL) {{\n"
        "      for (int y = 1; y < 8; ++y)\n"
        "        acc = {F}(acc, part[y][threadIdx.x]);\n"
        "      out0[o * {I}LL + c] = {fin};\n"
        "    }}\n"
        "    __syncthreads();\n"
        "  }}\n");
    k.launch.block_x = 32;
    k.launch.block_y = 8;
    k.launch.units = O * ((I + 31) / 32);
    k.launch.units_per_block = 1;
  } else {
    // Kept and reduced axes, each with the input's strides.
    Shape kept, reduced;
    std::vector<int64_t> kst, rst;
    auto st = contiguous_strides(xs);
    for (int a = 0; a < x->type.rank(); ++a) {
      bool r = std::find(axes.begin(), axes.end(), a) != axes.end();
      (r ? reduced : kept).push_back(xs[a]);
      (r ? rst : kst).push_back(st[a]);
    }
    src += fmt::format(
        fmt::runtime("  const int lane = threadIdx.x & 31;\n"
                     "  for (long long o = first >> 5; o < {NOUT}LL; o += "
                     "stride >> 5) {{\n"
                     "    const long long base = {kofs};\n"
                     "    {T} acc = {init};\n"
                     "    for (long long r = lane; r < {R}LL; r += 32)\n"
                     "      acc = {F}(acc, {xg});\n"
                     "    acc = kiln_warp_reduce(acc, {F});\n"
                     "    if (lane == 0)\n"
                     "      out0[o] = {fin};\n"
                     "  }}\n"),
        fmt::arg("NOUT", rt.numel()),
        fmt::arg("kofs", strided_offset(kept, kst, "o")), fmt::arg("T", T),
        fmt::arg("init", init), fmt::arg("R", R), fmt::arg("F", F),
        fmt::arg("xg", X("base + " + strided_offset(reduced, rst, "r"))),
        fmt::arg("fin", store(fin)));
    k.launch.units = rt.numel();
    k.launch.units_per_block = kBlock / 32;
  }
  src += "}\n";
  k.kernel = src;
  k.launch.units = std::max<int64_t>(k.launch.units, 1);
  return k;
}

} // namespace kiln::cuda::detail
