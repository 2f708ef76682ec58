// Fused optimizer steps. State lists go in and come back out (Python owns them between steps).
#include "bindings/convert.h"
#include "optim/optim.h"

namespace py = pybind11;

namespace tg {

namespace {
TensorList state_in(const std::vector<std::optional<Tensor>>& xs) {
  TensorList out;
  for (const auto& x : xs) out.push_back(x ? *x : Tensor());
  return out;
}
}  // namespace

void bind_optim(py::module_& m) {
  m.def("_sgd_step", [](const TensorList& params, const std::vector<std::optional<Tensor>>& bufs, double lr,
                        double momentum, double dampening, double weight_decay, bool nesterov) {
    TensorList b = state_in(bufs);
    {
      py::gil_scoped_release nogil;
      optim::sgd_step(params, b, lr, momentum, dampening, weight_decay, nesterov);
    }
    return b;
  });
  m.def("_adam_step", [](const TensorList& params, const std::vector<std::optional<Tensor>>& m1,
                         const std::vector<std::optional<Tensor>>& m2, std::vector<int64_t> steps, double lr, double beta1,
                         double beta2, double eps, double weight_decay, bool decoupled) {
    TensorList a = state_in(m1), b = state_in(m2);
    {
      py::gil_scoped_release nogil;
      optim::adam_step(params, a, b, steps, lr, beta1, beta2, eps, weight_decay, decoupled);
    }
    return py::make_tuple(a, b, steps);
  });
  m.def("_rmsprop_step", [](const TensorList& params, const std::vector<std::optional<Tensor>>& sq,
                            const std::vector<std::optional<Tensor>>& mom, double lr, double alpha, double eps,
                            double weight_decay, double momentum) {
    TensorList a = state_in(sq), b = state_in(mom);
    {
      py::gil_scoped_release nogil;
      optim::rmsprop_step(params, a, b, lr, alpha, eps, weight_decay, momentum);
    }
    return py::make_tuple(a, b);
  });
}

}  // namespace tg
