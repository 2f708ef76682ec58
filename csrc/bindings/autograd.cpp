// Autograd entry points: backward over several roots, tg.grad, grad mode, hooks, anomaly detection.
#include <algorithm>

#include "autograd/anomaly_mode.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "bindings/convert.h"

namespace py = pybind11;

namespace tg {

namespace {
TensorList optional_list(const std::vector<std::optional<Tensor>>& xs) {
  TensorList out;
  for (const auto& x : xs) out.push_back(x ? *x : Tensor());
  return out;
}

// A Python callable kept by C++ objects that may die on any thread, with or without the GIL: it is
// released under the GIL.
std::shared_ptr<py::function> keep(py::function fn) {
  return std::shared_ptr<py::function>(new py::function(std::move(fn)), [](py::function* f) {
    py::gil_scoped_acquire gil;
    delete f;
  });
}

// What register_hook returns: .remove() takes the hook off the node or leaf that holds it (if that
// still exists).
struct RemovableHandle {
  std::weak_ptr<Node> node;
  std::weak_ptr<TensorImpl> leaf;
  HookId id;

  void remove() const {
    auto drop = [this](auto& hooks) {
      hooks.erase(std::remove_if(hooks.begin(), hooks.end(), [this](const auto& h) { return hook_id(h) == id; }), hooks.end());
    };
    if (auto n = node.lock()) drop(n->output_hooks);
    if (auto t = leaf.lock()) drop(t->grad_hooks), drop(t->post_accumulate_hooks);
  }
  static HookId hook_id(const OutputHook& h) { return h.id; }
  template <class Pair> static HookId hook_id(const Pair& h) { return h.first; }
};

// Anomaly detection's answer to "where did this forward op run?": the Python stack, formatted by
// tapegrad.autograd._user_stack (frames inside tapegrad itself left out). Ops may run with the GIL
// released, so it is taken here.
std::string python_stack() {
  py::gil_scoped_acquire gil;
  try {
    return py::module_::import("tapegrad.autograd").attr("_user_stack")().cast<std::string>();
  } catch (py::error_already_set&) {
    return "(the Python stack could not be read)";
  }
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

  // ---- hooks, as PyTorch's: they run inside the C++ engine, holding the GIL only for the call ----
  py::class_<RemovableHandle>(m, "RemovableHandle", "Returned by register_hook: .remove() unregisters the hook.")
      .def("remove", &RemovableHandle::remove)
      .def("__enter__", [](const RemovableHandle& h) { return h; })
      .def("__exit__", [](const RemovableHandle& h, py::args) { h.remove(); });
  TensorClass cls = py::reinterpret_borrow<TensorClass>(m.attr("Tensor"));
  cls.def("register_hook", [](const Tensor& t, py::function fn) {
    TG_CHECK(t.requires_grad(), RuntimeError, "register_hook: cannot register a hook on a tensor that does not require ",
             "grad (shape ", shape_str(t.shape()), ")");
    auto f = keep(std::move(fn));
    GradHook hook = [f](const Tensor& g) -> Tensor {
      py::gil_scoped_acquire gil;
      py::object r = (*f)(g);
      if (r.is_none()) return Tensor();
      TG_CHECK(py::isinstance<TensorImpl>(r), TypeError, "register_hook: the hook must return None or a tensor, got ",
               python_type_name(r));
      const Tensor replaced = r.cast<Tensor>();
      TG_CHECK(replaced.shape() == g.shape(), ShapeError, "register_hook: the hook returned a gradient of shape ",
               shape_str(replaced.shape()), " for one of shape ", shape_str(g.shape()));
      return replaced;
    };
    RemovableHandle handle{{}, {}, next_hook_id()};
    if (t.grad_fn()) {
      t.grad_fn()->output_hooks.push_back({handle.id, t.impl()->output_nr, std::move(hook)});
      handle.node = t.grad_fn();
    } else {
      t.impl()->grad_hooks.emplace_back(handle.id, std::move(hook));
      handle.leaf = t.impl();
    }
    return handle;
  }, py::arg("hook"), "hook(grad) -> None or a replacement gradient, called when the gradient of this tensor is computed.");
  cls.def("register_post_accumulate_grad_hook", [](const Tensor& t, py::function fn) {
    TG_CHECK(t.requires_grad() && !t.grad_fn(), RuntimeError, "register_post_accumulate_grad_hook: only leaf tensors that ",
             "require grad accumulate a .grad (shape ", shape_str(t.shape()), ")");
    auto f = keep(std::move(fn));
    RemovableHandle handle{{}, t.impl(), next_hook_id()};
    t.impl()->post_accumulate_hooks.emplace_back(handle.id, [f](const Tensor& leaf) {
      py::gil_scoped_acquire gil;
      (*f)(leaf);
    });
    return handle;
  }, py::arg("hook"), "hook(tensor), called after this leaf's .grad has been updated by a backward.");
  m.def("_set_grad_enabled", &GradMode::set_enabled);

  AnomalyMode::set_trace_provider(&python_stack);
  m.def("_set_anomaly_enabled", &AnomalyMode::set_enabled, py::arg("enabled"), py::arg("check_nan") = true);
  m.def("_anomaly_state", [] { return py::make_tuple(AnomalyMode::is_enabled(), AnomalyMode::check_nan()); },
        "(enabled, check_nan) of anomaly detection in this thread.");
}

}  // namespace tg
