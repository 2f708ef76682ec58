// tapegrad.cuda: device queries (the CUDA backend itself arrives with the CUDA issue).
#include "bindings/convert.h"
#include "kernels/cuda/runtime.h"

namespace py = pybind11;

namespace tg {

void bind_cuda(py::module_& m) {
  py::module_ c = m.def_submodule("_cuda", "CUDA runtime queries");
  c.def("is_built", &cuda::built, "Whether this build includes the CUDA backend.");
  c.def("is_available", &cuda::is_available, "Whether a CUDA GPU can be used.");
  c.def("device_count", &cuda::device_count);
  c.def("synchronize", &cuda::synchronize);
}

}  // namespace tg
