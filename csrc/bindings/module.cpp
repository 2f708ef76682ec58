// tapegrad._C: the compiled core.
#include "bindings/convert.h"
#include "kernels/cpu/cpu_backend.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "tapegrad's C++ core: tensors, kernels and the autograd engine";
  tg::bind_errors(m);
  tg::bind_tensor(m);
  tg::bind_functions(m);
  tg::bind_autograd(m);
  tg::bind_optim(m);
  tg::bind_cuda(m);
  tg::bind_lstm(m);
  tg::bind_conv(m);
  tg::bind_ordering(m);
  tg::bind_dlpack(m);
  m.def("_gemm_isa", &tg::cpu::gemm_isa, "The GEMM micro-kernel chosen for this CPU.");
  // The CPU threads of every parallel kernel (OpenMP's team size), as torch.set_num_threads.
  m.def("set_num_threads", [](int n) {
    TG_CHECK(n >= 1, ValueError, "set_num_threads: the number of threads must be at least 1, got ", n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
  }, py::arg("n"));
  m.def("get_num_threads", [] {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
  });
  m.def("_host_cache_bytes", &tg::cpu::cached_host_bytes, "Bytes of large host blocks kept for reuse.");
  m.def("_empty_host_cache", &tg::cpu::empty_host_cache, "Gives the cached host blocks back to the system.");
  m.def("_peak_fma_flops", &tg::cpu::peak_fma_flops, py::arg("seconds") = 0.2,
        "Measured float32 FLOP/s of fused multiply-adds on every thread (the benchmarks' limit).");
}
