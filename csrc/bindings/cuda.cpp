// tapegrad.cuda: device queries, the caching allocator's statistics, and its OOM error type.
// Without a GPU (or without CUDA in the build) the statistics are 0 and empty_cache does nothing.
#include "bindings/convert.h"
#include "kernels/backend.h"
#include "kernels/cuda/runtime.h"

namespace py = pybind11;

namespace tg {

namespace {

// The GPU runtime, or what a build without CUDA answers: no devices, zero statistics, and a
// RuntimeError for what would need a GPU.
GpuRuntime& runtime(const char* what) {
  GpuRuntime* rt = gpu_runtime();
  TG_CHECK(rt != nullptr, RuntimeError, what, ": tapegrad was built without CUDA (rebuild with -DTAPEGRAD_CUDA=ON)");
  return *rt;
}
template <class F>
size_t statistic(F read) {
  GpuRuntime* rt = gpu_runtime();
  return rt ? read(*rt) : 0;
}

}  // namespace

void bind_cuda(py::module_& m) {
  py::module_ c = m.def_submodule("_cuda", "CUDA runtime queries");
  c.def("is_built", [] { return gpu_runtime() != nullptr; }, "Whether this build includes the CUDA backend.");
  c.def("is_available", [] { return gpu_runtime() && gpu_runtime()->device_count() > 0; },
        "Whether a CUDA GPU can be used.");
  c.def("device_count", [] { return gpu_runtime() ? gpu_runtime()->device_count() : 0; });
  c.def("synchronize", [] {
    GpuRuntime& rt = runtime("cuda.synchronize");
    py::gil_scoped_release nogil;
    rt.synchronize();
  }, "Waits for all queued work on every device.");
  c.def("memory_allocated", [](int d) { return statistic([d](GpuRuntime& rt) { return rt.memory_allocated(d); }); },
        py::arg("device") = 0, "Bytes of device memory held by tensors (rounded up to the allocator's size classes).");
  c.def("max_memory_allocated", [](int d) { return statistic([d](GpuRuntime& rt) { return rt.max_memory_allocated(d); }); },
        py::arg("device") = 0, "Peak of memory_allocated() since the start or the last reset_peak_memory_stats().");
  c.def("reset_peak_memory_stats", [](int d) { if (gpu_runtime()) gpu_runtime()->reset_peak_memory_stats(d); },
        py::arg("device") = 0);
  c.def("memory_reserved", [](int d) { return statistic([d](GpuRuntime& rt) { return rt.memory_reserved(d); }); },
        py::arg("device") = 0, "Bytes held by the caching allocator: allocated plus cached free blocks.");
  c.def("empty_cache", [] {
    py::gil_scoped_release nogil;
    if (gpu_runtime()) gpu_runtime()->empty_cache();
  }, "Returns every cached free block to the driver (tensors in use keep theirs).");
  c.def("cublas_built", [] { return gpu_runtime() && gpu_runtime()->cublas_built(); },
        "Whether this build can run CUDA matmuls through cuBLAS.");
  c.def("matmul_backend", [] { return gpu_runtime() && gpu_runtime()->uses_cublas() ? "cublas" : "own"; });
  c.def("set_matmul_backend", [](const std::string& name) {
    TG_CHECK(name == "own" || name == "cublas", ValueError, "cuda.set_matmul_backend: expected 'own' or 'cublas', got '",
             name, "'");
    if (name == "cublas") runtime("set_gemm_backend").set_uses_cublas(true);
    else if (gpu_runtime()) gpu_runtime()->set_uses_cublas(false);
  });
  c.def("set_sync_debug_mode", &cuda::set_sync_debug_mode);
  c.def("sync_debug_mode", &cuda::sync_debug_mode);
  c.def("allow_tf32", [] { return gpu_runtime() && gpu_runtime()->allow_tf32(); });
  c.def("set_allow_tf32", [](bool allow) { if (gpu_runtime()) gpu_runtime()->set_allow_tf32(allow); });
  c.attr("OutOfMemoryError") = py::handle(cuda_out_of_memory_error());
}

}  // namespace tg
