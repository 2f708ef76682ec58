// Recurrent-layer kernels used by tapegrad.nn.LSTM.
#include "bindings/convert.h"
#include "ops/ops.h"

namespace py = pybind11;

namespace tg {

void bind_lstm(py::module_& m) {
  m.def("_lstm_cell", [](const Tensor& gates, const Tensor& c) {
    TensorList out = lstm_cell(gates, c);
    return py::make_tuple(out[0], out[1]);
  }, py::arg("gates"), py::arg("c"), "One LSTM step: (B, 4H) gates and (B, H) cell -> (h, c).");
}

}  // namespace tg
