// The CUDA kernels of the plan's standalone ops (trait kStandaloneKernel in
// ir/ops.def): transpose, slice, pad, concat, broadcast_to, one_hot,
// random_uniform, the window ops (im2col, col2im, max_pool2d and its
// gradient) and gather/scatter_add. Each is a grid-stride loop over its
// result, one element per thread, with the geometry written in as
// constants.
#include "codegen/cuda_emit_common.h"

#include "ir/error.h"
#include "ir/gather.h"
#include "ir/infer.h"
#include "ir/window.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace kiln::cuda::detail {
namespace {

constexpr int kBlock = 256;

// A grid-stride kernel over `n` elements with `stmt` computing element i.
CudaKernel simple_kernel(const Node &n, const std::string &name,
                         const std::string &summary, int64_t count,
                         const std::string &stmt) {
  CudaKernel k;
  k.name = name;
  k.summary = summary;
  k.kernel = fmt::format("// {}: {}\n", name, summary);
  k.kernel += fmt::format(
      "extern \"C\" __global__ void __launch_bounds__({}) {}({}) {{\n", kBlock,
      name, param_list(n));
  k.kernel += "  const long long first = (long long)blockIdx.x * blockDim.x + "
              "threadIdx.x;\n"
              "  const long long stride = (long long)gridDim.x * blockDim.x;\n";
  k.kernel += fmt::format(
      "  for (long long i = first; i < {}LL; i += stride) {{\n", count);
  k.kernel += "    " + stmt + "\n  }\n}\n";
  k.launch.units = std::max<int64_t>(1, count);
  k.launch.units_per_block = kBlock;
  return k;
}

} // namespace

CudaKernel emit_layout_kernel(const Node &n, const std::string &name) {
  const Type &rt = n.result()->type;
  const DType od = rt.dtype;
  std::string what = fmt::format("{} -> {}", op_name(n.op), rt.str());
  switch (n.op) {
  case Op::Transpose: {
    const auto &perm = n.attrs.get_ints("perm");
    auto in_st = contiguous_strides(n.operands[0]->type.shape);
    std::vector<int64_t> st;
    for (int64_t p : perm)
      st.push_back(in_st[p]);
    return simple_kernel(
        n, name, fmt::format("transpose [{}] {}", fmt::join(perm, ","), what),
        rt.numel(),
        fmt::format("out0[i] = in0[{}];", strided_offset(rt.shape, st, "i")));
  }
  case Op::Slice: {
    // Element i reads the operand at the first selected element plus i's
    // index scaled by the steps.
    const Shape &is = n.operands[0]->type.shape;
    SliceBounds sb = slice_bounds(is, n.attrs);
    auto in_st = contiguous_strides(is);
    std::vector<int64_t> st;
    int64_t base = 0;
    for (size_t d = 0; d < is.size(); ++d) {
      st.push_back(in_st[d] * sb.step[d]);
      base += sb.start[d] * in_st[d];
    }
    return simple_kernel(n, name,
                         fmt::format("slice start [{}] step [{}] {}",
                                     fmt::join(sb.start, ","),
                                     fmt::join(sb.step, ","), what),
                         rt.numel(),
                         fmt::format("out0[i] = in0[{}LL + {}];", base,
                                     strided_offset(rt.shape, st, "i")));
  }
  case Op::Pad: {
    // Per axis, from the last: the index in the result less `before`, kept
    // when it lands on an operand element (a multiple of interior + 1,
    // within the operand), else the element is the value.
    const Shape &is = n.operands[0]->type.shape;
    PadBounds pb = pad_bounds(is, n.attrs);
    auto in_st = contiguous_strides(is);
    std::string stmt = "long long r = i, off = 0; bool inside = true;";
    for (size_t a = is.size(); a-- > 0;) {
      int64_t q = pb.interior[a] + 1;
      stmt += fmt::format(
          "\n    {{ const long long t = r % {}LL - {}LL; r /= {}LL; if (t < 0 "
          "{}|| t{} >= {}LL) inside = false; else off += t{} * {}LL; }}",
          pb.out[a], pb.before[a], pb.out[a],
          q > 1 ? fmt::format("|| t % {}LL != 0 ", q) : "",
          q > 1 ? fmt::format(" / {}LL", q) : "", is[a],
          q > 1 ? fmt::format(" / {}LL", q) : "", in_st[a]);
    }
    stmt += fmt::format("\n    out0[i] = inside ? in0[off] : ({})({});",
                        cuda_storage_type(od), literal(od, pb.value));
    return simple_kernel(n, name,
                         fmt::format("pad [{}] interior [{}] {}",
                                     fmt::join(pb.before, ","),
                                     fmt::join(pb.interior, ","), what),
                         rt.numel(), stmt);
  }
  case Op::Concat: {
    // Element i is (outer, j, inner) with j along the axis; j picks the
    // operand, whose own (outer, j - start, inner) element it copies.
    int axis = normalize_axis(attr_int(n, "axis"), rt.rank());
    int64_t inner = 1;
    for (int d = axis + 1; d < rt.rank(); ++d)
      inner *= rt.shape[d];
    int64_t len = rt.shape[axis];
    std::string stmt = fmt::format(
        "const long long o = i / {}LL, j = (i / {}LL) % {}LL, k = i % {}LL;",
        len * inner, inner, len, inner);
    int64_t at = 0;
    for (size_t k = 0; k < n.operands.size(); ++k) {
      int64_t nk = n.operands[k]->type.shape[axis];
      stmt += fmt::format("\n    {}if (j < {}LL) out0[i] = in{}[(o * {}LL + "
                          "(j - {}LL)) * {}LL + k];",
                          k ? "else " : "", at + nk, k, nk, at, inner);
      at += nk;
    }
    return simple_kernel(n, name, fmt::format("concat axis {} {}", axis, what),
                         rt.numel(), stmt);
  }
  case Op::Im2col:
  case Op::Col2im:
  case Op::MaxPool2d:
  case Op::MaxPool2dGrad: {
    // The 2-D window ops (ir/window.h; semantics: ir/window_ops.cpp), one
    // thread per result element, each a gather: no atomics, so every
    // element is written once and sums run in the interpreter's order.
    Window2d g = window_of(n);
    const std::string T(cuda_storage_type(od));
    const std::string geo = fmt::format(
        "kernel {}x{} stride {}x{} padding {}x{} dilation {}x{} groups {}",
        g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups);
    // The arg-max of window (oy, ox) of plane `p`: the first maximum, or
    // the last NaN (found < 0: a window of padding only).
    auto argmax = [&](const std::string &p) {
      return fmt::format(
          "long long found = -1; {T} bv = ({T})0;\n"
          "    for (long long ki = 0; ki < {kh}LL; ++ki) {{\n"
          "      const long long yy = oy * {sh}LL - {ph}LL + ki * {dh}LL;\n"
          "      if (yy < 0 || yy >= {h}LL) continue;\n"
          "      for (long long kj = 0; kj < {kw}LL; ++kj) {{\n"
          "        const long long xx = ox * {sw}LL - {pw}LL + kj * {dw}LL;\n"
          "        if (xx < 0 || xx >= {w}LL) continue;\n"
          "        const {T} v = {p}[yy * {w}LL + xx];\n"
          "        if (found < 0 || v > bv || v != v) {{ found = yy * {w}LL + "
          "xx; bv = v; }}\n"
          "      }}\n"
          "    }}",
          fmt::arg("T", T), fmt::arg("kh", g.kh), fmt::arg("kw", g.kw),
          fmt::arg("sh", g.sh), fmt::arg("sw", g.sw), fmt::arg("ph", g.ph),
          fmt::arg("pw", g.pw), fmt::arg("dh", g.dh), fmt::arg("dw", g.dw),
          fmt::arg("h", g.h), fmt::arg("w", g.w), fmt::arg("p", p));
    };
    const int64_t hw = g.h * g.w, L = g.cols(), K = g.rows();
    std::string stmt;
    if (n.op == Op::Im2col) {
      // Element (image, group, row (c, ki, kj), window (oy, ox)) copies the
      // input element it reads, or 0 in the padding.
      stmt = fmt::format(
          "const long long l = i % {L}LL, r = (i / {L}LL) % {K}LL, ng = i / "
          "{KL}LL;\n"
          "    const long long oy = l / {wo}LL, ox = l % {wo}LL;\n"
          "    const long long ki = (r % {taps}LL) / {kw}LL, kj = r % {kw}LL;\n"
          "    const long long yy = oy * {sh}LL - {ph}LL + ki * {dh}LL;\n"
          "    const long long xx = ox * {sw}LL - {pw}LL + kj * {dw}LL;\n"
          "    const long long ch = (ng % {G}LL) * {cg}LL + r / {taps}LL;\n"
          "    out0[i] = yy >= 0 && yy < {h}LL && xx >= 0 && xx < {w}LL ? "
          "in0[((ng / {G}LL) * {C}LL + ch) * {hw}LL + yy * {w}LL + xx] : "
          "({T})0;",
          fmt::arg("L", L), fmt::arg("K", K), fmt::arg("KL", K * L),
          fmt::arg("wo", g.wo), fmt::arg("taps", g.taps()),
          fmt::arg("kw", g.kw), fmt::arg("sh", g.sh), fmt::arg("sw", g.sw),
          fmt::arg("ph", g.ph), fmt::arg("pw", g.pw), fmt::arg("dh", g.dh),
          fmt::arg("dw", g.dw), fmt::arg("G", g.groups), fmt::arg("cg", g.cg()),
          fmt::arg("C", g.c), fmt::arg("h", g.h), fmt::arg("w", g.w),
          fmt::arg("hw", hw), fmt::arg("T", T));
    } else if (n.op == Op::Col2im) {
      // Image element (image, channel, y, x): the sum over the taps
      // (ki, kj) of the window that tap reads it from, if any: row
      // oy = (y + ph - ki*dh) / sh when that divides and is in range.
      stmt = fmt::format(
          "const long long xx = i % {w}LL, yy = (i / {w}LL) % {h}LL, ch = (i "
          "/ {hw}LL) % {C}LL, img = i / ({hw}LL * {C}LL);\n"
          "    const {T} *src = in0 + ((img * {G}LL + ch / {cg}LL) * {K}LL + "
          "(ch % {cg}LL) * {taps}LL) * {L}LL;\n"
          "    {T} acc = ({T})0;\n"
          "    for (long long ki = 0; ki < {kh}LL; ++ki) {{\n"
          "      const long long ty = yy + {ph}LL - ki * {dh}LL;\n"
          "      if (ty < 0 || ty % {sh}LL != 0 || ty / {sh}LL >= {ho}LL) "
          "continue;\n"
          "      for (long long kj = 0; kj < {kw}LL; ++kj) {{\n"
          "        const long long tx = xx + {pw}LL - kj * {dw}LL;\n"
          "        if (tx < 0 || tx % {sw}LL != 0 || tx / {sw}LL >= {wo}LL) "
          "continue;\n"
          "        acc += src[(ki * {kw}LL + kj) * {L}LL + (ty / {sh}LL) * "
          "{wo}LL + tx / {sw}LL];\n"
          "      }}\n"
          "    }}\n"
          "    out0[i] = acc;",
          fmt::arg("w", g.w), fmt::arg("h", g.h), fmt::arg("hw", hw),
          fmt::arg("C", g.c), fmt::arg("T", T), fmt::arg("G", g.groups),
          fmt::arg("cg", g.cg()), fmt::arg("K", K), fmt::arg("taps", g.taps()),
          fmt::arg("L", L), fmt::arg("kh", g.kh), fmt::arg("kw", g.kw),
          fmt::arg("ph", g.ph), fmt::arg("pw", g.pw), fmt::arg("dh", g.dh),
          fmt::arg("dw", g.dw), fmt::arg("sh", g.sh), fmt::arg("sw", g.sw),
          fmt::arg("ho", g.ho), fmt::arg("wo", g.wo));
    } else if (n.op == Op::MaxPool2d) {
      stmt = fmt::format(
          "const long long ox = i % {wo}LL, oy = (i / {wo}LL) % {ho}LL;\n"
          "    const {T} *p = in0 + (i / {howo}LL) * {hw}LL;\n"
          "    {argmax}\n"
          "    out0[i] = found < 0 ? {ninf} : bv;",
          fmt::arg("wo", g.wo), fmt::arg("ho", g.ho),
          fmt::arg("howo", g.ho * g.wo), fmt::arg("hw", hw), fmt::arg("T", T),
          fmt::arg("argmax", argmax("p")),
          fmt::arg("ninf",
                   literal(od, -std::numeric_limits<double>::infinity())));
    } else {
      // Input element (image, channel, y, x): the sum of dy over the
      // windows that contain it and whose arg-max (recomputed, as above)
      // it is, in window order.
      stmt = fmt::format(
          "const long long xx0 = i % {w}LL, yy0 = (i / {w}LL) % {h}LL, plane "
          "= i / {hw}LL;\n"
          "    const {T} *p = in0 + plane * {hw}LL;\n"
          "    const {T} *d = in1 + plane * {howo}LL;\n"
          "    const long long me = yy0 * {w}LL + xx0;\n"
          "    {T} acc = ({T})0;\n"
          // Windows oy with oy*sh - ph <= y0 <= oy*sh - ph + span.
          "    const long long ay = yy0 + {ph}LL - {spanh}LL, ax = xx0 + "
          "{pw}LL - {spanw}LL;\n"
          "    const long long oy0 = ay <= 0 ? 0 : (ay + {sh}LL - 1) / {sh}LL, "
          "ox0 = ax <= 0 ? 0 : (ax + {sw}LL - 1) / {sw}LL;\n"
          "    long long oy1 = (yy0 + {ph}LL) / {sh}LL, ox1 = (xx0 + {pw}LL) / "
          "{sw}LL;\n"
          "    if (oy1 >= {ho}LL) oy1 = {ho}LL - 1;\n"
          "    if (ox1 >= {wo}LL) ox1 = {wo}LL - 1;\n"
          "    for (long long oy = oy0; oy <= oy1; ++oy) {{\n"
          "      for (long long ox = ox0; ox <= ox1; ++ox) {{\n"
          "    {argmax}\n"
          "        if (found == me) acc += d[oy * {wo}LL + ox];\n"
          "      }}\n"
          "    }}\n"
          "    out0[i] = acc;",
          fmt::arg("w", g.w), fmt::arg("h", g.h), fmt::arg("hw", hw),
          fmt::arg("T", T), fmt::arg("howo", g.ho * g.wo), fmt::arg("ho", g.ho),
          fmt::arg("wo", g.wo), fmt::arg("sh", g.sh), fmt::arg("sw", g.sw),
          fmt::arg("ph", g.ph), fmt::arg("pw", g.pw),
          fmt::arg("spanh", (g.kh - 1) * g.dh),
          fmt::arg("spanw", (g.kw - 1) * g.dw),
          fmt::arg("argmax", argmax("p")));
    }
    return simple_kernel(n, name, fmt::format("{} {}", geo, what), rt.numel(),
                         stmt);
  }
  case Op::BroadcastTo:
    return simple_kernel(
        n, name, what, rt.numel(),
        fmt::format("out0[i] = in0[{}];",
                    bcast_offset(n.operands[0]->type.shape, rt.shape, "i")));
  case Op::Gather:
  case Op::ScatterAdd: {
    // ir/gather.h's [outer, len, inner] view. gather: one thread per result
    // element [outer, count, inner] copies its row's element. scatter_add
    // without atomics, in gather form: one thread per result element
    // [outer, len, inner] sums, in index order, the updates whose index
    // names its row: O(size * indices) work, fine for embedding-sized
    // tables (a sort or atomics would be the path for big ones).
    // An index outside [0, len) reads 0 (gather) or adds nowhere
    // (scatter_add); when the indices are a data input of the graph,
    // add_label_ranges (plan/lower.cpp) gives it that range and
    // check_inputs rejects a bad index before the step runs.
    GatherGeometry g = gather_geometry(n);
    const std::string idx =
        n.op == Op::Gather ? "(long long)in1[j]" : "(long long)in0[j]";
    std::string stmt;
    if (n.op == Op::Gather) {
      stmt = fmt::format(
          "const long long k = i % {inner}LL, j = (i / {inner}LL) % "
          "{count}LL, o = i / {ci}LL;\n"
          "    const long long r = {idx};\n"
          "    out0[i] = r >= 0 && r < {len}LL ? in0[(o * {len}LL + r) * "
          "{inner}LL + k] : ({T})0;",
          fmt::arg("inner", g.inner), fmt::arg("count", g.count),
          fmt::arg("ci", g.count * g.inner), fmt::arg("idx", idx),
          fmt::arg("len", g.len), fmt::arg("T", cuda_storage_type(od)));
    } else {
      stmt = fmt::format(
          "const long long k = i % {inner}LL, r = (i / {inner}LL) % {len}LL, "
          "o = i / {li}LL;\n"
          "    {R} acc = ({R})0;\n"
          "    for (long long j = 0; j < {count}LL; ++j)\n"
          "      if ({idx} == r) acc += in1[(o * {count}LL + j) * {inner}LL + "
          "k];\n"
          "    out0[i] = acc;",
          fmt::arg("inner", g.inner), fmt::arg("len", g.len),
          fmt::arg("li", g.len * g.inner), fmt::arg("R", reg_type(od)),
          fmt::arg("count", g.count), fmt::arg("idx", idx));
    }
    return simple_kernel(
        n, name, fmt::format("{} axis {} {}", op_name(n.op), g.axis, what),
        rt.numel(), stmt);
  }
  case Op::OneHot: {
    int64_t c = n.attrs.get_int("num_classes");
    // Out-of-range labels (the interpreter throws) give an all-zero row.
    return simple_kernel(
        n, name, what, rt.numel(),
        fmt::format(
            "out0[i] = {};",
            store_value(od, fmt::format("kiln_cvt<{}>((long long)in0[i / "
                                        "{}LL] == i % {}LL ? 1 : 0)",
                                        reg_type(od), c, c))));
  }
  case Op::Constant:
    return simple_kernel(
        n, name, fmt::format("fill {} {}", n.attrs.get_float("value"), what),
        rt.numel(),
        fmt::format("out0[i] = {};",
                    store_value(od, literal(od, n.attrs.get_float("value")))));
  case Op::Iota:
    return simple_kernel(
        n, name, fmt::format("iota axis {} {}", attr_int(n, "axis"), what),
        rt.numel(),
        fmt::format("out0[i] = {};",
                    store_value(od, iota_value(n, rt.shape, "i"))));
  case Op::RandomUniform:
    return simple_kernel(
        n, name, fmt::format("philox4x32-10 uniform {}", what), rt.numel(),
        fmt::format("out0[i] = ({})kiln_philox_uniform((unsigned long "
                    "long)in0[0], (unsigned long long)in1[0], (unsigned long "
                    "long)i);",
                    cuda_storage_type(od)));
  default:
    break;
  }
  fail("cuda emitter: no kernel for op {}", op_name(n.op));
}

} // namespace kiln::cuda::detail
