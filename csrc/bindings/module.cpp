// tapegrad._C: the compiled core.
#include "bindings/convert.h"
#include "kernels/cpu/cpu_backend.h"

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
  m.def("_gemm_isa", &tg::cpu::gemm_isa, "The GEMM micro-kernel chosen for this CPU.");
}
