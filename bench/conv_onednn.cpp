// kiln_conv_onednn: the oneDNN candidate for kiln's CPU convolution (issue
// 12), timed on the built-in CNN's two convolutions so that `kiln bench
// --cnn` can put it beside kiln's im2col + OpenBLAS GEMM and LibTorch.
// Built only when oneDNN (Debian's libdnnl-dev) is found; kiln itself never
// links it. Run by kiln_bench as a separate process, like kiln_torch_peer,
// and prints the same tab-separated lines:
//   name <TAB> median_ms <TAB> p90_ms <TAB> setting
//
// Per convolution (f32, stride 1, pad 1, no bias, batch 64):
//   conv1: x [64,1,28,28]  w [32,1,3,3]   (the CNN's input: no dx)
//   conv2: x [64,32,14,14] w [64,32,3,3]  (dx feeds conv1's block)
// it times the forward, the backward-data and the backward-weights
// primitives alone (conv{1,2}_fwd, _bwd_data, _bwd_weights) and the whole
// step a training step needs (conv{1,2}_fwdbwd: forward, then dx for conv2,
// then dw; dy is a materialized ones tensor, the gradient of a sum loss), in
// two layouts:
//   nchw:    plain nchw / oihw memory everywhere (what kiln's arrays are);
//   blocked: oneDNN's preferred layouts (format_tag::any), with the reorders
//            from and back to nchw / oihw counted in _fwdbwd (they are what
//            kiln would pay as long as its arrays stay nchw), not in the
//            single-primitive rows;
//   blocked-resident (_fwdbwd only): the same primitives without the
//            reorders, as if every array already lived in oneDNN's layout;
// on 1 and 2 OpenMP threads. The setting names the threads, the layout and
// oneDNN's implementation (e.g. jit:avx512_core).
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace dnnl;
using Clock = std::chrono::steady_clock;
using Tag = memory::format_tag;
using Args = std::unordered_map<int, memory>;

struct Stats {
  double median_ms, p90_ms;
};

Stats time_it(const std::function<void()> &f, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i)
    f();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    f();
    ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 9 / 10)]};
}

void print(const std::string &name, Stats s, const std::string &setting) {
  std::printf("%s\t%.6f\t%.6f\t%s\n", name.c_str(), s.median_ms, s.p90_ms,
              setting.c_str());
  std::fflush(stdout);
}

memory filled(const memory::desc &md, const engine &eng, float v0, float step) {
  memory m(md, eng);
  float *p = static_cast<float *>(m.get_data_handle());
  size_t n = md.get_size() / sizeof(float);
  for (size_t i = 0; i < n; ++i)
    p[i] = v0 + step * static_cast<float>(i % 97);
  return m;
}

// A step of the timed sequence: a primitive and its arguments.
struct Op {
  primitive p;
  Args args;
};

// `plain` in the layout `want`: the same memory when the layouts agree,
// else a new memory and (appended to `ops`) the reorder that fills it.
memory to_layout(const memory &plain, const memory::desc &want,
                 const engine &eng, std::vector<Op> &ops) {
  if (plain.get_desc() == want)
    return plain;
  memory m(want, eng);
  ops.push_back(
      {reorder(plain, m), {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, m}}});
  return m;
}

// A memory in layout `have` whose result the caller wants in `plain`: the
// same memory when they agree, else a new one and (appended to `after`) the
// reorder back.
memory from_layout(const memory &plain, const memory::desc &have,
                   const engine &eng, std::vector<Op> &after) {
  if (plain.get_desc() == have)
    return plain;
  memory m(have, eng);
  after.push_back(
      {reorder(m, plain), {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, plain}}});
  return m;
}

void run(stream &s, std::vector<Op> &ops) {
  for (Op &op : ops)
    op.p.execute(s, op.args);
  s.wait();
}

void bench_conv(const std::string &name, memory::dim n, memory::dim c,
                memory::dim hw, memory::dim o, bool need_dx, bool blocked,
                int iters) {
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const auto f32 = memory::data_type::f32;
  memory::dims src_d{n, c, hw, hw}, w_d{o, c, 3, 3}, dst_d{n, o, hw, hw};
  memory::dims strides{1, 1}, pad{1, 1};
  memory::desc src_plain(src_d, f32, Tag::nchw), w_plain(w_d, f32, Tag::oihw),
      dst_plain(dst_d, f32, Tag::nchw);
  memory::desc src_md = src_plain, w_md = w_plain, dst_md = dst_plain;
  if (blocked) {
    src_md = memory::desc(src_d, f32, Tag::any);
    w_md = memory::desc(w_d, f32, Tag::any);
    dst_md = memory::desc(dst_d, f32, Tag::any);
  }
  convolution_forward::primitive_desc fpd(
      convolution_forward::desc(prop_kind::forward_training,
                                algorithm::convolution_direct, src_md, w_md,
                                dst_md, strides, pad, pad),
      eng);
  convolution_backward_data::primitive_desc dpd(
      convolution_backward_data::desc(algorithm::convolution_direct, src_md,
                                      w_md, dst_md, strides, pad, pad),
      eng, fpd);
  convolution_backward_weights::primitive_desc wpd(
      convolution_backward_weights::desc(algorithm::convolution_direct, src_md,
                                         w_md, dst_md, strides, pad, pad),
      eng, fpd);

  // The arrays as kiln holds them (nchw / oihw).
  memory x = filled(src_plain, eng, -0.5f, 0.01f);
  memory w = filled(w_plain, eng, -0.2f, 0.004f);
  memory y(dst_plain, eng), dx(src_plain, eng), dw(w_plain, eng);
  memory dy = filled(dst_plain, eng, 1.0f, 0.0f);

  // The whole sequence, reorders included; single-primitive sequences on
  // memories already in the primitive's layout.
  std::vector<Op> all, fwd, bwd_data, bwd_weights, tail, kernels;
  memory xf = to_layout(x, fpd.src_desc(), eng, all);
  memory wf = to_layout(w, fpd.weights_desc(), eng, all);
  memory yf = from_layout(y, fpd.dst_desc(), eng, tail);
  Op f{convolution_forward(fpd),
       {{DNNL_ARG_SRC, xf}, {DNNL_ARG_WEIGHTS, wf}, {DNNL_ARG_DST, yf}}};
  all.push_back(f);
  fwd.push_back(f);
  kernels.push_back(f);
  all.insert(all.end(), tail.begin(), tail.end());
  tail.clear();
  if (need_dx) {
    memory dyd = to_layout(dy, dpd.diff_dst_desc(), eng, all);
    memory wd = dpd.weights_desc() == fpd.weights_desc()
                    ? wf
                    : to_layout(w, dpd.weights_desc(), eng, all);
    memory dxd = from_layout(dx, dpd.diff_src_desc(), eng, tail);
    Op d{convolution_backward_data(dpd),
         {{DNNL_ARG_DIFF_DST, dyd},
          {DNNL_ARG_WEIGHTS, wd},
          {DNNL_ARG_DIFF_SRC, dxd}}};
    all.push_back(d);
    bwd_data.push_back(d);
    kernels.push_back(d);
    all.insert(all.end(), tail.begin(), tail.end());
    tail.clear();
  }
  {
    memory dyw = to_layout(dy, wpd.diff_dst_desc(), eng, all);
    memory xw = wpd.src_desc() == fpd.src_desc()
                    ? xf
                    : to_layout(x, wpd.src_desc(), eng, all);
    memory dww = from_layout(dw, wpd.diff_weights_desc(), eng, tail);
    Op bw{convolution_backward_weights(wpd),
          {{DNNL_ARG_SRC, xw},
           {DNNL_ARG_DIFF_DST, dyw},
           {DNNL_ARG_DIFF_WEIGHTS, dww}}};
    all.push_back(bw);
    bwd_weights.push_back(bw);
    kernels.push_back(bw);
    all.insert(all.end(), tail.begin(), tail.end());
  }

  std::string setting =
      "onednn_threads=" + std::to_string(omp_get_max_threads()) +
      ",layout=" + (blocked ? "blocked" : "nchw") +
      ",impl=" + fpd.impl_info_str() + "/" +
      (need_dx ? std::string(dpd.impl_info_str()) + "/" : std::string()) +
      wpd.impl_info_str();
  int warm = 10;
  print(name + "_fwdbwd", time_it([&] { run(s, all); }, warm, iters), setting);
  if (blocked) {
    // The arrays already in (and left in) oneDNN's layouts: what kiln would
    // get if its plan kept activations blocked between convolutions.
    std::string resident = setting;
    resident.replace(resident.find("layout=blocked"), 14,
                     "layout=blocked-resident");
    print(name + "_fwdbwd", time_it([&] { run(s, kernels); }, warm, iters),
          resident);
  }
  print(name + "_fwd", time_it([&] { run(s, fwd); }, warm, iters), setting);
  if (need_dx)
    print(name + "_bwd_data", time_it([&] { run(s, bwd_data); }, warm, iters),
          setting);
  print(name + "_bwd_weights",
        time_it([&] { run(s, bwd_weights); }, warm, iters), setting);
}

} // namespace

int main(int argc, char **argv) {
  int iters = argc > 1 ? std::atoi(argv[1]) : 100;
  if (iters < 1)
    iters = 1;
  try {
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      for (bool blocked : {false, true}) {
        bench_conv("conv1", 64, 1, 28, 32, /*need_dx=*/false, blocked, iters);
        bench_conv("conv2", 64, 32, 14, 64, /*need_dx=*/true, blocked, iters);
      }
    }
  } catch (const dnnl::error &e) {
    std::fprintf(stderr, "kiln_conv_onednn: oneDNN error %d: %s\n",
                 static_cast<int>(e.status), e.what());
    return 1;
  }
  return 0;
}
