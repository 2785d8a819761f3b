// The CUDA backend: runs the execution plan of a graph (plan/plan.h): its
// kernel launches as generated kernels (codegen/cuda_emitter.h) compiled by
// NVRTC for the present GPU, its GEMMs through cuBLAS (folded transposes as
// CUBLAS_OP_T), its buffers in one device arena and a few fixed buffers, on
// one stream, the whole step captured once as a CUDA graph and replayed.
//
// Host Arrays and device copies. Data inputs (InputKind::data) are copied
// to the device on every run, all in one host-to-device copy from a pinned
// staging buffer. Param and state inputs stay on the device: the first run
// that sees a given host Array (identified by its storage) copies it in, and
// from then on the device copy is the true value; steps update it in place
// and the host storage goes stale. The backend keeps a registry shared by
// all its executables, so a train step and an eval graph over the same
// parameters use the same device copy. To read the values on the host call
// Backend::sync_to_host() (runtime/backend.h; the frontend does it for
// Parameter::value() and checkpoint saves, or set
// CudaOptions::write_back_every_step); after writing to such a host Array,
// call Backend::mark_host_modified(a) (checkpoint loads do) so the next run
// copies it in again. cuda_sync_to_host / cuda_mark_host_modified are the
// same calls. Before a step, data inputs are checked against their ranges,
// and a one_hot of a data input gives it the range [0, num_classes), so an
// out-of-range label is the interpreter's error, not a zero row; a matmul
// dimension beyond cuBLAS's int is an error at compile time. Destroying the
// backend writes every device copy back to its host Array first; so does
// releasing an Array that no executable binds any more (replaced, or its
// executables destroyed), which frees its device copy. Non-aliased outputs are
// returned as fresh host Arrays on every run.
#pragma once

#include "runtime/backend.h"

#include <memory>
#include <string>

namespace kiln {

struct CudaOptions {
  int device = 0;
  bool allow_tf32 = false; // cuBLAS TF32 tensor cores for f32 matmul
  bool fast_math = false;  // NVRTC --use_fast_math
  bool use_graphs =
      true; // capture the step once, replay it (KILN_CUDA_GRAPHS=0)
  bool write_back_every_step = false; // copy params/state back after each run
  // cuBLAS with CUBLAS_PEDANTIC_MATH (bit-reproducible GEMMs, slower);
  // otherwise cuBLAS's default math (KILN_CUDA_DETERMINISTIC=1).
  bool deterministic = false;
  // Synchronise after every kernel launch and GEMM, so that a failing
  // kernel is named in the error instead of surfacing at the end of the
  // step; implies use_graphs = false (KILN_CUDA_SYNC=1). For debugging.
  bool sync_launches = false;
};

// The CUDA backend when a driver and a device are present; otherwise
// nullptr, with a one-line reason in `reason` ("no CUDA driver (...)").
std::unique_ptr<Backend>
make_cuda_backend_if_available(std::string *reason = nullptr,
                               const CudaOptions &options = {});

// Copies every device-resident param/state back into its host Array.
// `backend` must come from make_cuda_backend_if_available.
void cuda_sync_to_host(Backend &backend);
// The host Array was changed: the next run copies it to the device again.
void cuda_mark_host_modified(Backend &backend, const Array &a);
// Releases every CUDA backend's device resources now (device copies
// written back first, cuBLAS handle, memory, stream, context); later runs
// of its executables fail with an error, and destroying them afterwards
// makes no CUDA call. Runs by itself at exit, before the exit handlers of
// the CUDA libraries (a backend held by a static would otherwise tear down
// cuBLAS after them); a program may call it earlier.
void cuda_shutdown();

// The cublasMath_t of the backend's cuBLAS handle (created if needed); for
// tests.
int cuda_cublas_math_mode(Backend &backend);

// How many host Arrays have a device copy (each is released, written back
// first, when no executable binds it any more); for tests.
size_t cuda_resident_count(Backend &backend);

struct ExecutionPlan;
// The execution plan a CUDA executable runs (its launches, in order: each
// kernel launch one generated kernel, each GEMM launch one or more cuBLAS
// calls, each copy one device copy); nullptr for another backend's.
const ExecutionPlan *cuda_executable_plan(const Executable &e);

} // namespace kiln
