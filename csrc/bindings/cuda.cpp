// tapegrad.cuda: device queries, the caching allocator's statistics, and its OOM error type.
// Without a GPU (or without CUDA in the build) the statistics are 0 and empty_cache does nothing.
#include "bindings/convert.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"

namespace py = pybind11;

namespace tg {

void bind_cuda(py::module_& m) {
  py::module_ c = m.def_submodule("_cuda", "CUDA runtime queries");
  c.def("is_built", &cuda::built, "Whether this build includes the CUDA backend.");
  c.def("is_available", &cuda::is_available, "Whether a CUDA GPU can be used.");
  c.def("device_count", &cuda::device_count);
  c.def("synchronize", [] {
    py::gil_scoped_release nogil;
    cuda::synchronize();
  }, "Waits for all queued work on every device.");
  c.def("memory_allocated", &cuda::memory_allocated, py::arg("device") = 0,
        "Bytes of device memory held by tensors (rounded up to the allocator's size classes).");
  c.def("max_memory_allocated", &cuda::max_memory_allocated, py::arg("device") = 0,
        "Peak of memory_allocated() since the start or the last reset_peak_memory_stats().");
  c.def("reset_peak_memory_stats", &cuda::reset_peak_memory_stats, py::arg("device") = 0);
  c.def("memory_reserved", &cuda::memory_reserved, py::arg("device") = 0,
        "Bytes held by the caching allocator: allocated plus cached free blocks.");
  c.def("empty_cache", [] {
    py::gil_scoped_release nogil;
    cuda::empty_cache();
  }, "Returns every cached free block to the driver (tensors in use keep theirs).");
  c.def("cublas_built", &cuda::cublas_built, "Whether this build can run CUDA matmuls through cuBLAS.");
  c.def("matmul_backend", [] { return cuda::gemm_backend() == cuda::GemmBackend::Cublas ? "cublas" : "own"; });
  c.def("set_matmul_backend", [](const std::string& name) {
    TG_CHECK(name == "own" || name == "cublas", ValueError, "cuda.set_matmul_backend: expected 'own' or 'cublas', got '",
             name, "'");
    cuda::set_gemm_backend(name == "cublas" ? cuda::GemmBackend::Cublas : cuda::GemmBackend::Own);
  });
  c.def("set_sync_debug_mode", &cuda::set_sync_debug_mode);
  c.def("sync_debug_mode", &cuda::sync_debug_mode);
  c.def("allow_tf32", &cuda::allow_tf32);
  c.def("set_allow_tf32", &cuda::set_allow_tf32);
  c.attr("OutOfMemoryError") = py::handle(cuda_out_of_memory_error());
}

}  // namespace tg
