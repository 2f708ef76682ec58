// Convolution, pooling and batch / group normalisation for tapegrad.nn.functional: the Python layer normalises the arguments
// (ints or pairs, 'same' / 'valid', ceil_mode) into one window of ten numbers,
// (kh, kw, sh, sw, ph, pw, ph_end, pw_end, dh, dw).
#include <array>

#include "bindings/convert.h"
#include "ops/ops.h"

namespace py = pybind11;

namespace tg {

namespace {
using WindowTuple = std::array<int64_t, 10>;
Window2d window_of(const WindowTuple& t) {
  Window2d w;
  w.kh = t[0], w.kw = t[1], w.sh = t[2], w.sw = t[3], w.ph = t[4], w.pw = t[5], w.ph_end = t[6], w.pw_end = t[7];
  w.dh = t[8], w.dw = t[9];
  return w;
}
}  // namespace

void bind_conv(py::module_& m) {
  m.def("_max_pool2d_with_indices", [](const Tensor& x, const WindowTuple& w) {
    const TensorList r = max_pool2d_with_indices(x, window_of(w));
    return py::make_tuple(r[0], r[1]);
  }, py::arg("input"), py::arg("window"));
  m.def("_interpolate", &interpolate, py::arg("input"), py::arg("size"), py::arg("scales"), py::arg("mode"),
        py::arg("align_corners"));
  m.def("_unfold", [](const Tensor& x, const WindowTuple& w) { return unfold(x, window_of(w)); }, py::arg("input"),
        py::arg("window"));
  m.def("_fold", [](const Tensor& cols, int64_t h, int64_t w, const WindowTuple& win) { return fold(cols, h, w, window_of(win)); },
        py::arg("input"), py::arg("height"), py::arg("width"), py::arg("window"));
  m.def("_conv2d", [](const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, const WindowTuple& w,
                      int64_t groups) { return conv2d(x, weight, bias.value_or(Tensor()), window_of(w), groups); },
        py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("window"), py::arg("groups"));
  m.def("_conv_transpose2d", [](const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, const WindowTuple& w,
                                int64_t groups, int64_t out_h, int64_t out_w) {
    return conv_transpose2d(x, weight, bias.value_or(Tensor()), window_of(w), groups, out_h, out_w);
  }, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("window"), py::arg("groups"), py::arg("out_h"),
        py::arg("out_w"));
  m.def("_max_pool2d", [](const Tensor& x, const WindowTuple& w) { return max_pool2d(x, window_of(w)); }, py::arg("input"),
        py::arg("window"));
  m.def("_avg_pool2d", [](const Tensor& x, const WindowTuple& w, bool count_include_pad) {
    return avg_pool2d(x, window_of(w), count_include_pad);
  }, py::arg("input"), py::arg("window"), py::arg("count_include_pad"));
  m.def("_adaptive_avg_pool2d", &adaptive_avg_pool2d, py::arg("input"), py::arg("out_h"), py::arg("out_w"));
  auto defined = [](const std::optional<Tensor>& t) { return t.value_or(Tensor()); };
  m.def("_batch_norm", [defined](const Tensor& x, const std::optional<Tensor>& running_mean, const std::optional<Tensor>& running_var,
                                 const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, bool training,
                                 double momentum, double eps) {
    return batch_norm(x, defined(running_mean), defined(running_var), defined(weight), defined(bias), training, momentum, eps);
  }, py::arg("input"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight"), py::arg("bias"),
        py::arg("training"), py::arg("momentum"), py::arg("eps"));
  m.def("_group_norm", [defined](const Tensor& x, int64_t groups, const std::optional<Tensor>& weight,
                                 const std::optional<Tensor>& bias, double eps) {
    return group_norm(x, groups, defined(weight), defined(bias), eps);
  }, py::arg("input"), py::arg("num_groups"), py::arg("weight"), py::arg("bias"), py::arg("eps"));
}

}  // namespace tg
