// Autograd entry points: backward over several roots, tg.grad, grad mode.
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "bindings/convert.h"

namespace py = pybind11;

namespace tg {

namespace {
TensorList optional_list(const std::vector<std::optional<Tensor>>& xs) {
  TensorList out;
  for (const auto& x : xs) out.push_back(x ? *x : Tensor());
  return out;
}
}  // namespace

void bind_autograd(py::module_& m) {
  m.def("_backward", [](const TensorList& roots, const std::vector<std::optional<Tensor>>& grads, bool retain_graph,
                        bool create_graph) {
    py::gil_scoped_release nogil;
    backward(roots, optional_list(grads), retain_graph, create_graph);
  });
  m.def("_grad", [](const TensorList& roots, const std::vector<std::optional<Tensor>>& grads, const TensorList& inputs,
                    bool retain_graph, bool create_graph, bool allow_unused) {
    py::gil_scoped_release nogil;
    return grad(roots, optional_list(grads), inputs, retain_graph, create_graph, allow_unused);
  });
  m.def("is_grad_enabled", &GradMode::is_enabled, "Whether operations are recorded for backward (per thread).");
  m.def("_set_grad_enabled", &GradMode::set_enabled);
}

}  // namespace tg
